"""The ``genzoo`` command line. The only module that parses arguments.

    genzoo train MODEL [--dataset D] [--data-dir DIR] [--epochs N] [--batch-size B] [--seed S]
                       [--run-dir DIR] [--set key=value ...] [--config FILE.toml] [--preset P]
                       [--device auto|cpu|cuda|mps] [--dry-run]
    genzoo train --resume RUN_DIR [--epochs N]
    genzoo sample RUN_DIR --num N --out FILE.png|FILE.npy [--label K] [--seed S]
    genzoo plot RUN_DIR KIND [--out FILE.png] [--num N] [--seed S]
    genzoo models [--verbose]
"""

from __future__ import annotations

import argparse
import dataclasses
import io
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

from . import __version__
from .config import RunConfig, apply_overrides, replace_fields
from .data.datasets import dataset_names
from .errors import GenzooError
from .evaluation.benchmark import PROTOCOLS
from .evaluation.suite import METRICS as EVAL_METRICS
from .fileio import atomic_write_bytes
from .images import PREVIEW_COLUMNS, save_grid
from .models.base import Sampler
from .registry import MODELS
from .runs import (
    CONFIG,
    default_config,
    load_run,
    read_config,
    require_run_dir,
    select_device,
    train,
)

SAMPLE_CHUNK = 1000  # images decoded at once by `genzoo sample`


class ArgumentParser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (and exit status 2)."""

    def error(self, message: str):
        self.exit(2, f"genzoo: error: {message} (see `{self.prog} --help`)\n")


def build_parser() -> ArgumentParser:
    parser = ArgumentParser(prog="genzoo", description="The classic generative image models: train, sample, plot.")
    parser.add_argument("--version", action="version", version=f"genzoo {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=ArgumentParser)

    p = commands.add_parser("train", help="train a model into a run directory")
    p.add_argument("model", nargs="?", help=f"one of: {', '.join(MODELS)}")
    p.add_argument("--dataset", help=f"{' | '.join(dataset_names())} | path of an image folder (default mnist)")
    p.add_argument("--data-dir", help="folder holding <dataset>/*-ubyte.gz (default $GENZOO_DATA or ~/.cache/genzoo)")
    p.add_argument("--epochs", type=int)
    p.add_argument("--batch-size", type=int)
    p.add_argument("--seed", type=int)
    p.add_argument("--device", choices=["auto", "cpu", "cuda", "mps"])
    p.add_argument("--run-dir", type=Path, help="where the run is written (default runs/MODEL-DATASET-TIME)")
    p.add_argument("--config", type=Path, help="a config.toml (a run's reproduces that run)")
    p.add_argument("--preset", help="a named architecture of the model (see `genzoo models --verbose`)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override any config field by name, e.g. --set latent_dim=8")
    p.add_argument("--resume", type=Path, metavar="RUN_DIR", help="continue an interrupted or finished run")
    p.add_argument("--dry-run", action="store_true",
                   help="2 batches of 1 epoch on fake data (unless --dataset) into a temporary run directory")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")

    p = commands.add_parser("sample", help="draw images from a trained model")
    p.add_argument("run_dir", type=Path)
    p.add_argument("--num", type=int, required=True)
    p.add_argument("--out", type=Path, required=True, help="FILE.png (a grid) or FILE.npy (float32 N,C,H,W in [0,1])")
    p.add_argument("--label", type=int, help="class to draw (conditional models)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", choices=["auto", "cpu", "cuda", "mps"], default="cpu")

    from .plots import PLOTS

    p = commands.add_parser("plot", help="draw a picture of what a model learned")
    p.add_argument("run_dir", type=Path)
    p.add_argument("kind", help=f"{' | '.join(PLOTS)} | all")
    p.add_argument("--out", type=Path, help="FILE.png (default RUN_DIR/plots/KIND.png)")
    p.add_argument("--num", type=int, default=0, help="grid side / rows / samples (kind-specific)")
    p.add_argument("--seed", type=int, default=0)

    p = commands.add_parser("inpaint", help="fill a masked region of an image with an inpainting model")
    p.add_argument("run_dir", type=Path)
    p.add_argument("--input", type=Path, required=True, help="a PNG or JPEG image (resized to the model's size)")
    p.add_argument("--mask", choices=["centre", "center", "random"], default="centre")
    p.add_argument("--out", type=Path, required=True, help="FILE.png: the inpainted image")
    p.add_argument("--seed", type=int, default=0, help="where a random hole goes")

    p = commands.add_parser("evaluate", help="score a run with every metric that applies; writes eval.json")
    p.add_argument("run_dir", type=Path)
    p.add_argument("--metrics", help="comma-separated subset of: " + ", ".join(EVAL_METRICS))
    p.add_argument("--num-samples", type=int, default=10_000, help="generated images (default 10000)")
    p.add_argument("--split", choices=["test", "train"], default="test", help="reference split")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--importance-samples", type=int, default=1000,
                   help="K of the importance-sampled NLL (default 1000; the README's figures use 5000)")
    p.add_argument("--likelihood-images", type=int, default=0, help="images used for likelihoods (default all)")
    p.add_argument("--ais-chains", type=int, default=100, help="AIS chains for log Z (Boltzmann machines)")
    p.add_argument("--ais-steps", type=int, default=14_500, help="AIS intermediate distributions")
    p.add_argument("--evaluator", help="a .safetensors evaluator (default: the one genzoo ships for the dataset)")
    p.add_argument("--device", choices=["auto", "cpu", "cuda", "mps"], default="cpu")

    p = commands.add_parser("benchmark", help="train and evaluate a named protocol; writes a Markdown table")
    p.add_argument("protocol", help="one of: " + ", ".join(PROTOCOLS))
    p.add_argument("--runs-dir", type=Path, help="where the runs go (default runs/benchmark-PROTOCOL)")
    p.add_argument("--out", type=Path, help="Markdown file (default RUNS_DIR/results.md)")
    p.add_argument("--data-dir", help="folder holding mnist/*-ubyte.gz (default $GENZOO_DATA or ~/.cache/genzoo)")
    p.add_argument("--rows", help="comma-separated subset of the protocol's rows")
    p.add_argument("--no-progress", action="store_true")

    p = commands.add_parser("models", help="list the models")
    p.add_argument("--verbose", "-v", action="store_true", help="show config fields and presets")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    handlers = {"train": cmd_train, "sample": cmd_sample, "plot": cmd_plot, "evaluate": cmd_evaluate, "inpaint": cmd_inpaint,
                "benchmark": cmd_benchmark, "models": cmd_models}
    try:
        return handlers[args.command](args)
    except GenzooError as exc:
        print(f"genzoo: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("genzoo: aborted", file=sys.stderr)
        return 130


# -- train ----------------------------------------------------------------------------------
def resolve_train_config(args) -> RunConfig:
    """Defaults (or --config, or --preset), then the named flags, then --set."""
    for flag in ("epochs", "batch_size"):
        if getattr(args, flag) is not None and getattr(args, flag) < 1:
            raise GenzooError(f"--{flag.replace('_', '-')} must be at least 1")
    if args.config:
        config = read_config(args.config)
        if args.model and args.model != config.model:
            raise GenzooError(f"--config {args.config} is for model {config.model!r}, not {args.model!r}")
        if args.preset:
            raise GenzooError("--preset and --config cannot be combined")
    elif args.model:
        config = default_config(args.model, preset=args.preset)
    else:
        raise GenzooError("name a model to train (see `genzoo models`), or give --config or --resume")
    data = {k: v for k, v in (("dataset", args.dataset), ("data_dir", args.data_dir)) if v is not None}
    train_fields = {k: v for k, v in (("epochs", args.epochs), ("batch_size", args.batch_size),
                                      ("seed", args.seed), ("device", args.device)) if v is not None}
    if args.dry_run:
        data.setdefault("dataset", "fake")
        train_fields.update(epochs=1, max_batches=2, eval_batches=2)
    config = dataclasses.replace(
        config, data=replace_fields(config.data, data, "data"), train=replace_fields(config.train, train_fields, "train")
    )
    config = apply_overrides(config, args.set)
    for name in ("epochs", "batch_size"):
        if getattr(config.train, name) < 1:
            raise GenzooError(f"train.{name} must be at least 1")
    return config


def resolve_resume_config(args) -> RunConfig:
    run_dir = require_run_dir(args.resume, CONFIG)
    if args.model or args.config or args.preset or args.set or args.dry_run or args.dataset or args.batch_size or args.seed is not None:
        raise GenzooError("--resume continues a run as configured; only --epochs, --data-dir and --device may change")
    config = read_config(run_dir / CONFIG)
    data = {"data_dir": args.data_dir} if args.data_dir else {}
    train_fields = {k: v for k, v in (("epochs", args.epochs), ("device", args.device)) if v is not None}
    config = dataclasses.replace(
        config, data=replace_fields(config.data, data, "data"), train=replace_fields(config.train, train_fields, "train")
    )
    return config


def cmd_train(args) -> int:
    progress = not args.no_progress
    if args.resume:
        config = resolve_resume_config(args)
        trainer = train(config, args.resume, resume=True, progress=progress)
        run_dir = args.resume
    elif args.dry_run and args.run_dir is None:
        config = resolve_train_config(args)
        with tempfile.TemporaryDirectory(prefix="genzoo-dry-run-") as tmp:
            trainer = train(config, Path(tmp) / "run", progress=progress)
            _write_loss_plot(trainer.run_dir, config.model)
            final_loss = _last_loss(trainer)
        print(f"genzoo: dry run of {config.model} on {config.data.dataset} passed "
              f"({trainer.global_step} steps, final loss {final_loss:.4g})")
        return 0
    else:
        config = resolve_train_config(args)
        trainer = train(config, args.run_dir, progress=progress)
        run_dir = trainer.run_dir
    _write_loss_plot(run_dir, config.model)
    if trainer.stop_requested:
        print(f"genzoo: interrupted at epoch {trainer.epoch + 1}, step {trainer.global_step}; saved. "
              f"Continue with: genzoo train --resume {run_dir}", file=sys.stderr)
        return 130
    print(f"genzoo: trained {config.model} for {config.train.epochs} epochs into {run_dir}")
    print(f"  next: genzoo sample {run_dir} --num 64 --out samples.png   |   genzoo plot {run_dir} all")
    return 0


def _last_loss(trainer) -> float:
    from .runs import read_metrics

    steps, _ = read_metrics(trainer.run_dir)
    return steps[-1]["loss"] if steps else float("nan")


def _write_loss_plot(run_dir: Path, model: str) -> None:
    from .plots import loss_figure, save_figure

    plots = Path(run_dir) / "plots"
    plots.mkdir(exist_ok=True)
    save_figure(loss_figure(Path(run_dir), model), plots / "losses.png")


# -- sample ---------------------------------------------------------------------------------
def cmd_sample(args) -> int:
    if args.num < 1:
        raise GenzooError("--num must be at least 1")
    suffix = args.out.suffix.lower()
    if suffix not in (".png", ".npy"):
        raise GenzooError(f"--out {args.out}: expected a .png or .npy file name")
    if not args.out.parent.is_dir():
        raise GenzooError(f"--out {args.out}: directory {args.out.parent} does not exist")
    run = load_run(args.run_dir, device=select_device(args.device))
    model = run.model
    if not isinstance(model, Sampler):
        raise GenzooError(f"model {run.config.model!r} has no prior to sample from; "
                          f"try `genzoo plot {args.run_dir} reconstructions`")
    labels = None
    if model.conditional:
        classes = len(run.class_names)
        if args.label is not None:
            if not 0 <= args.label < classes:
                raise GenzooError(f"--label must be in 0..{classes - 1}")
            labels = torch.full((args.num,), args.label, dtype=torch.int64)
        else:
            labels = torch.arange(args.num) % classes
    elif args.label is not None:
        raise GenzooError(f"model {run.config.model!r} is not conditional; --label does not apply")
    generator = torch.Generator(device=next(model.parameters()).device).manual_seed(args.seed)
    chunks = []
    with torch.no_grad():
        for start in range(0, args.num, SAMPLE_CHUNK):
            count = min(SAMPLE_CHUNK, args.num - start)
            chunk_labels = None if labels is None else labels[start : start + count].to(generator.device)
            chunks.append(model.sample(count, labels=chunk_labels, generator=generator).cpu())
    images = torch.cat(chunks)
    if suffix == ".npy":
        _save_npy(args.out, images.numpy().astype(np.float32))
        if labels is not None and args.label is None:
            _save_npy(args.out.with_suffix(".labels.npy"), labels.numpy())
    else:
        columns = len(run.class_names) if labels is not None and args.label is None else PREVIEW_COLUMNS
        save_grid(images, args.out, nrow=columns)
    print(f"genzoo: wrote {args.num} samples to {args.out}")
    return 0


def _save_npy(path: Path, array: np.ndarray) -> None:
    buffer = io.BytesIO()
    np.save(buffer, array)
    atomic_write_bytes(path, buffer.getvalue())


# -- plot -----------------------------------------------------------------------------------
def cmd_plot(args) -> int:
    from .plots import PLOTS, PlotOptions, kinds_for, make_plot

    run = load_run(args.run_dir)
    options = PlotOptions(num=args.num, seed=args.seed)
    if args.kind == "all":
        if args.out:
            raise GenzooError("plot all writes RUN_DIR/plots/KIND.png; --out does not apply")
        kinds = kinds_for(run.model)
    elif args.kind in PLOTS:
        kinds = [args.kind]
    else:
        raise GenzooError(f"unknown plot kind {args.kind!r}; kinds: {', '.join(PLOTS)}, all")
    for kind in kinds:
        out = args.out
        if out is None:
            out = run.path / "plots" / f"{kind}.png"
            out.parent.mkdir(exist_ok=True)
        make_plot(run, kind, out, options)
        print(f"genzoo: wrote {out}")
    return 0


# -- inpaint --------------------------------------------------------------------------------
def cmd_inpaint(args) -> int:
    from PIL import Image, UnidentifiedImageError

    from .data import to_model_input
    from .images import save_png, to_pil
    from .models.base import Inpainter

    if args.out.suffix.lower() != ".png":
        raise GenzooError(f"--out {args.out}: expected a .png file name")
    run = load_run(args.run_dir)
    model = run.model
    if not isinstance(model, Inpainter):
        raise GenzooError(f"model {run.config.model!r} does not inpaint; train `context-encoder`")
    spec = model.spec
    try:
        with Image.open(args.input) as image:
            image = image.convert("L" if spec.channels == 1 else "RGB").resize((spec.width, spec.height), Image.BILINEAR)
            array = np.asarray(image, dtype=np.uint8).reshape(spec.height, spec.width, spec.channels)
    except (OSError, UnidentifiedImageError) as exc:
        raise GenzooError(f"--input {args.input}: cannot read image ({exc})") from None
    pixels = torch.from_numpy(array.copy()).permute(2, 0, 1).unsqueeze(0)  # (H, W, C) -> (1, C, H, W)
    images = to_model_input(pixels, model.data_format, None)
    kind = "centre" if args.mask == "center" else args.mask
    mask = model.make_mask(1, kind, torch.Generator().manual_seed(args.seed))
    with torch.no_grad():
        filled = model.inpaint(images, mask)[0]  # (C, H, W) in [0, 1]
    out = (filled.permute(1, 2, 0).numpy() * 255 + 0.5).astype(np.uint8)
    save_png(to_pil(out), args.out)
    print(f"genzoo: wrote {args.out} ({kind} hole of {model.config.mask_size}x{model.config.mask_size} pixels filled)")
    return 0


# -- evaluate -------------------------------------------------------------------------------
def cmd_evaluate(args) -> int:
    from .evaluation.suite import EvaluationOptions, evaluate_run, format_table, write_result

    for flag in ("num_samples", "importance_samples", "ais_chains", "ais_steps"):
        if getattr(args, flag) < 1:
            raise GenzooError(f"--{flag.replace('_', '-')} must be at least 1")
    if args.likelihood_images < 0:
        raise GenzooError("--likelihood-images must be 0 (all) or more")
    run = load_run(args.run_dir, device=select_device(args.device))
    options = EvaluationOptions(
        metrics=tuple(m.strip() for m in args.metrics.split(",") if m.strip()) if args.metrics else (),
        num_samples=args.num_samples, split=args.split, seed=args.seed,
        importance_samples=args.importance_samples, likelihood_images=args.likelihood_images,
        ais_chains=args.ais_chains, ais_steps=args.ais_steps,
        evaluator=args.evaluator or "",
    )
    result = evaluate_run(run, options)
    write_result(result, run.path / "eval.json")
    print(format_table(result))
    print(f"genzoo: wrote {run.path / 'eval.json'} ({result['seconds']:.0f} s)")
    return 0


def cmd_benchmark(args) -> int:
    from .evaluation.benchmark import markdown, run_protocol, write_markdown

    runs_dir = args.runs_dir or Path("runs") / f"benchmark-{args.protocol}"
    rows = [r.strip() for r in args.rows.split(",")] if args.rows else None
    results = run_protocol(args.protocol, runs_dir, data_dir=args.data_dir or "", rows=rows,
                           progress=not args.no_progress)
    text = markdown(args.protocol, results)
    out = args.out or runs_dir / "results.md"
    write_markdown(text, out)
    print(text)
    print(f"genzoo: wrote {out}")
    return 0


# -- models ---------------------------------------------------------------------------------
def cmd_models(args) -> int:
    width = max(map(len, MODELS))
    for name, entry in MODELS.items():
        print(f"{name:<{width}}  {entry.summary}  [{entry.reference}]")
        if args.verbose:
            for field in dataclasses.fields(entry.config):
                print(f"{'':<{width}}    {field.name} = {getattr(entry.config, field.name)!r}")
            if entry.presets:
                print(f"{'':<{width}}    presets: {', '.join(entry.presets)}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
