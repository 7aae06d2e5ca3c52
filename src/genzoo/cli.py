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
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

from . import __version__, distributed
from .config import RunConfig, apply_overrides, replace_fields
from .data.datasets import dataset_names
from .errors import GenzooError, Stopped
from .evaluation.benchmark import PROTOCOLS
from .evaluation.suite import METRICS as EVAL_METRICS
from .fileio import atomic_write_bytes, atomic_write_text, ensure_directory
from .images import PREVIEW_COLUMNS, save_grid
from .models.base import Sampler
from .registry import MODELS
from .runs import (
    CONFIG,
    config_changes,
    default_config,
    default_run_dir,
    load_run,
    memory_bytes,
    read_config,
    require_run_dir,
    resumable,
    select_device,
    train,
)

SAMPLE_CHUNK = 1000  # images decoded at once by `genzoo sample`
MAX_GRID = 10_000  # images in one PNG grid (100 x 100); more is for .npy
MAX_PLOT_NUM = 100  # the side, rows or count a plot's --num may ask for


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
    p.add_argument("--device", help="auto (default) | cpu | cuda | cuda:K | mps")
    p.add_argument("--precision", choices=["float32", "bf16"], help="bf16: autocast to bfloat16 (default float32)")
    p.add_argument("--compile", action="store_true", help="torch.compile the model's networks")
    p.add_argument("--tensorboard", action="store_true",
                   help="also log metrics and preview grids to RUN/tensorboard (pip install 'genzoo[tensorboard]')")
    p.add_argument("--nproc", type=int, help="train with N processes (torchrun; one per GPU, or CPU processes)")
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
    p.add_argument("--device", default="cpu", help="cpu (default) | auto | cuda | cuda:K | mps")

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
    p.add_argument("--full", action="store_true",
                   help="the benchmark's protocol: 10000 samples, K = 5000 on every test image, 5 AIS runs "
                        "(minutes to an hour); the default is a quick one (about a minute)")
    p.add_argument("--row", help="the options of this row of `genzoo benchmark mnist` (the zoo's and README's "
                                 "figures; e.g. --row draw for zoo:draw, whose K is 100 and IWAE k 10)")
    p.add_argument("--num-samples", type=int, help="generated images (quick 2000, full 10000)")
    p.add_argument("--split", choices=["test", "train"], default="test", help="reference split")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--importance-samples", type=int, help="K of the importance-sampled NLL (quick 500, full 5000)")
    p.add_argument("--likelihood-images", type=int, help="test images used for likelihoods (quick 1000, full 0 = all); "
                                                           "a DBM's log Z mixture is built from the same images")
    p.add_argument("--ais-chains", type=int, help="AIS chains for log Z (Boltzmann machines; 100)")
    p.add_argument("--ais-steps", type=int, help="AIS intermediate distributions (14500)")
    p.add_argument("--ais-runs", type=int, help="independent AIS runs (quick 1, full 5)")
    p.add_argument("--evaluator", help="a .safetensors evaluator (default: the one genzoo ships for the dataset)")
    p.add_argument("--device", default="cpu", help="cpu (default) | auto | cuda | cuda:K | mps")

    p = commands.add_parser("benchmark", help="train and evaluate a named protocol; writes a Markdown table")
    p.add_argument("protocol", help="one of: " + ", ".join(PROTOCOLS) + ", speed")
    p.add_argument("--runs-dir", type=Path, help="where the runs go (default runs/benchmark-PROTOCOL)")
    p.add_argument("--out", type=Path, help="Markdown file (default RUNS_DIR/results.md)")
    p.add_argument("--data-dir", help="folder holding mnist/*-ubyte.gz (default $GENZOO_DATA or ~/.cache/genzoo)")
    p.add_argument("--rows", help="comma-separated subset of the protocol's rows (speed: MODEL or MODEL:PRESET)")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--steps", type=int, default=40, help="speed: timed training steps per row (default 40)")
    p.add_argument("--keras-python", help="speed: the Python of a venv with keras, jax and tensorflow-cpu; "
                   "runs the seed models' Keras code beside genzoo's (see ../shared/peers/README.md)")
    p.add_argument("--keras-script", type=Path, help="speed: keras_ref.py (default ../shared/peers/keras_ref.py)")

    p = commands.add_parser("report", help="one self-contained HTML page on one or more runs")
    p.add_argument("run_dirs", type=Path, nargs="+", metavar="RUN", help="run directories or zoo:NAME")
    p.add_argument("--out", type=Path, required=True, help="FILE.html")
    p.add_argument("--seed", type=int, default=0)

    p = commands.add_parser("explore", help="an interactive explorer of a run in the browser (pip install genzoo[explore])")
    p.add_argument("run_dir", type=Path)
    p.add_argument("--port", type=int, default=7860)
    p.add_argument("--no-browser", action="store_true", help="serve without opening a browser")

    p = commands.add_parser("prepare", help="convert an image folder once for training from a memory map")
    p.add_argument("folder", type=Path, help="an image folder (class subfolders become labels)")
    p.add_argument("--out", type=Path, required=True, help="the prepared dataset (then --dataset OUT)")
    p.add_argument("--image-size", type=int, default=28)
    p.add_argument("--channels", type=int, choices=[1, 3], default=1)

    p = commands.add_parser("zoo", help="list the trained models shipped with genzoo (use them as zoo:NAME)")
    p.add_argument("action", nargs="?", choices=["list", "build", "table"], default="list",
                   help="list (default); build: pack trained benchmark rows into the zoo (maintainers); "
                        "table: the results tables from the zoo's eval.json files")
    p.add_argument("--runs-dir", type=Path, default=Path("runs/benchmark-mnist"), help="build: the benchmark's runs")
    p.add_argument("--rows", help="build: comma-separated rows (default: every trained row)")
    p.add_argument("--out", type=Path, help="table: write the Markdown here too")

    p = commands.add_parser("models", help="list the models")
    p.add_argument("--verbose", "-v", action="store_true", help="show config fields and presets")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    handlers = {"train": cmd_train, "sample": cmd_sample, "plot": cmd_plot, "evaluate": cmd_evaluate, "inpaint": cmd_inpaint,
                "benchmark": cmd_benchmark, "models": cmd_models, "zoo": cmd_zoo,
                "prepare": cmd_prepare, "report": cmd_report, "explore": cmd_explore}
    try:
        return handlers[args.command](args)
    except Stopped as exc:
        print(f"genzoo: {exc}", file=sys.stderr)
        return 130
    except GenzooError as exc:
        print(f"genzoo: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("genzoo: aborted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader of stdout went away (`genzoo zoo | head -3`): nothing left to say to it. Point
        # stdout at /dev/null so that the interpreter's final flush does not fail again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141  # 128 + SIGPIPE, as a shell reports a command killed by it


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
                                      ("seed", args.seed), ("device", args.device), ("precision", args.precision))
                    if v is not None}
    if args.compile:
        train_fields["compile"] = True
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
    if args.model or args.config or args.preset or args.dry_run or args.dataset or args.batch_size or args.seed is not None:
        raise GenzooError("--resume continues a run as configured; only --epochs, --data-dir, --device and "
                          "--set of learning rates may change")
    config = read_config(run_dir / CONFIG)
    data = {"data_dir": args.data_dir} if args.data_dir else {}
    train_fields = {k: v for k, v in (("epochs", args.epochs), ("device", args.device)) if v is not None}
    config = dataclasses.replace(
        config, data=replace_fields(config.data, data, "data"), train=replace_fields(config.train, train_fields, "train")
    )
    changed = apply_overrides(config, args.set)
    for name in config_changes(config, changed):
        if not resumable(*name.split(".")):
            raise GenzooError(f"--set {name}: a resumed run may change only its epochs, device, data_dir, learning "
                              "rates and schedule; start a new run to change the rest")
    if args.set:
        print(f"genzoo: resuming {run_dir} with {', '.join(args.set)} (recorded in its config.toml)", file=sys.stderr)
    return changed


def cmd_train(args) -> int:
    if args.nproc is not None:
        if args.nproc < 1:
            raise GenzooError("--nproc must be at least 1")
        if args.nproc > 1 and distributed.launched_world() == 1:
            return launch_processes(args)
    with distributed.process_group_closed_at_exit():
        return train_here(args)


def launch_processes(args) -> int:
    """``genzoo train ... --nproc N``: the same command under torchrun, N processes on this machine,
    into one run directory chosen here (each process would otherwise pick its own default)."""
    argv = sys.argv[1:]
    at = argv.index("--nproc")
    argv = argv[:at] + argv[at + 2:]
    run_dir = args.run_dir
    if run_dir is None and not args.resume:
        run_dir = (Path(tempfile.mkdtemp(prefix="genzoo-dry-run-")) / "run" if args.dry_run
                   else default_run_dir(resolve_train_config(args)))
        argv += ["--run-dir", str(run_dir)]
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={args.nproc}",
               "-m", "genzoo.cli", *argv]
    print(f"genzoo: {args.nproc} processes: torchrun --standalone --nproc-per-node={args.nproc} "
          f"-m genzoo.cli {' '.join(argv)}", file=sys.stderr)
    try:
        return subprocess.run(command, check=False).returncode
    except KeyboardInterrupt:
        return 130


def train_here(args) -> int:
    progress = not args.no_progress
    callbacks = ()
    if args.tensorboard:
        from .tensorboard_log import TensorBoardLogger

        callbacks = (TensorBoardLogger(),)
    if args.resume:
        config = resolve_resume_config(args)
        trainer = train(config, args.resume, resume=True, progress=progress, callbacks=callbacks)
        run_dir = args.resume
    elif args.dry_run and args.run_dir is None:
        config = resolve_train_config(args)
        with tempfile.TemporaryDirectory(prefix="genzoo-dry-run-") as tmp:
            trainer = train(config, Path(tmp) / "run", progress=progress, callbacks=callbacks)
            if not trainer.group.is_main:
                return 0
            _write_loss_plot(trainer.run_dir, config.model)
            final_loss = _last_loss(trainer)
        print(f"genzoo: dry run of {config.model} on {config.data.dataset} passed "
              f"({trainer.global_step} steps, final loss {final_loss:.4g})")
        return 0
    else:
        config = resolve_train_config(args)
        trainer = train(config, args.run_dir, progress=progress, callbacks=callbacks)
        run_dir = trainer.run_dir
    if not trainer.group.is_main:  # rank 0 reports and draws for the run
        return 130 if trainer.stop_requested else 0
    _write_loss_plot(run_dir, config.model)
    if trainer.stop_requested:
        print(f"genzoo: interrupted at epoch {trainer.epoch + 1}, step {trainer.global_step}; saved. "
              f"Continue with: genzoo train --resume {run_dir}", file=sys.stderr)
        return 130
    print(f"genzoo: trained {config.model} for {config.train.epochs} epochs into {run_dir}")
    print(f"  next: {next_steps(trainer.model, run_dir)}")
    return 0


def next_steps(model, run_dir) -> str:
    """What a user can do with a trained model, by what it can do."""
    from .models.base import Inpainter

    steps = []
    if isinstance(model, Sampler):
        steps.append(f"genzoo sample {run_dir} --num 64 --out samples.png")
    if isinstance(model, Inpainter):
        steps.append(f"genzoo inpaint {run_dir} --input IMAGE.png --out filled.png")
    steps += [f"genzoo plot {run_dir} all", f"genzoo evaluate {run_dir}"]
    return "   |   ".join(steps)


def _last_loss(trainer) -> float:
    from .runs import read_metrics

    steps, _ = read_metrics(trainer.run_dir)
    return steps[-1]["loss"] if steps else float("nan")


def _write_loss_plot(run_dir: Path, model: str) -> None:
    from .plots import loss_figure, save_figure

    plots = Path(run_dir) / "plots"
    ensure_directory(plots)
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
    if suffix == ".png" and args.num > MAX_GRID:
        raise GenzooError(f"--num {args.num}: a PNG grid holds at most {MAX_GRID} images; write FILE.npy for more")
    run = load_run(args.run_dir, device=select_device(args.device))
    model = run.model
    need = args.num * model.spec.num_pixels * 4
    if need > memory_bytes() // 2:
        raise GenzooError(f"--num {args.num}: the samples need {need / 2**30:.1f} GiB as float32; this machine has "
                          f"{memory_bytes() / 2**30:.1f} GiB (draw them in several files)")
    if not isinstance(model, Sampler):
        from .plots import kinds_for

        raise GenzooError(f"model {run.config.model!r} has no prior to sample from; "
                          f"try `genzoo plot {args.run_dir} {kinds_for(model)[0]}` (its plots: "
                          f"{', '.join(kinds_for(model))})")
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

    if not 0 <= args.num <= MAX_PLOT_NUM:
        raise GenzooError(f"--num must be between 0 (the plot's default) and {MAX_PLOT_NUM}")
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
            out = run.output_dir / "plots" / f"{kind}.png"
            ensure_directory(out.parent)
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
    from .evaluation.benchmark import row_named
    from .evaluation.suite import FULL, QUICK, evaluate_run, format_table, write_result

    if args.row and args.full:
        raise GenzooError("--row and --full each choose the protocol: give one")
    base = row_named(args.row).evaluation if args.row else FULL if args.full else QUICK
    chosen = {name: getattr(args, name) for name in ("num_samples", "importance_samples", "likelihood_images",
                                                      "ais_chains", "ais_steps", "ais_runs")
              if getattr(args, name) is not None}
    for flag, value in chosen.items():
        if value < (0 if flag == "likelihood_images" else 1):
            raise GenzooError(f"--{flag.replace('_', '-')} must be at least {0 if flag == 'likelihood_images' else 1}")
    run = load_run(args.run_dir, device=select_device(args.device))
    options = dataclasses.replace(
        base, **chosen, split=args.split, seed=args.seed, evaluator=args.evaluator or "",
        metrics=tuple(m.strip() for m in args.metrics.split(",") if m.strip()) if args.metrics else (),
    )
    result = evaluate_run(run, options, progress=True)
    ensure_directory(run.output_dir)
    write_result(result, run.output_dir / "eval.json")
    print(format_table(result))
    print(f"genzoo: wrote {run.output_dir / 'eval.json'} ({result['seconds']:.0f} s)")
    if not (args.full or args.row):
        print(f"genzoo: that was the quick protocol; `genzoo evaluate {args.run_dir} --full` runs the benchmark's "
              "(the README's figures)")
    return 0


def cmd_benchmark(args) -> int:
    from .evaluation.benchmark import markdown, run_protocol, write_markdown

    if args.protocol == "speed":
        return cmd_speed(args)
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


def cmd_speed(args) -> int:
    from .evaluation import speed

    if args.steps < 1:
        raise GenzooError("--steps must be at least 1")
    script = args.keras_script or Path("../shared/peers/keras_ref.py")
    if args.keras_python and not script.is_file():
        raise GenzooError(f"--keras-script {script}: no such file")
    rows = [r.strip() for r in args.rows.split(",")] if args.rows else None
    results = speed.run_speed(rows, steps=args.steps, keras_python=args.keras_python, keras_script=script)
    text = speed.markdown(results, speed.likelihood_speed(), threads=torch.get_num_threads())
    out = args.out or Path("runs") / "benchmark-speed" / "results.md"
    ensure_directory(out.parent)
    atomic_write_text(out, text)
    print(text)
    print(f"genzoo: wrote {out}")
    return 0


# -- report and explore ---------------------------------------------------------------------
def cmd_report(args) -> int:
    from .report import build_report

    if args.out.suffix.lower() not in (".html", ".htm"):
        raise GenzooError(f"--out {args.out}: expected an .html file name")
    if not args.out.parent.is_dir():
        raise GenzooError(f"--out {args.out}: directory {args.out.parent} does not exist")
    runs = [load_run(run_dir) for run_dir in args.run_dirs]
    atomic_write_text(args.out, build_report(runs, seed=args.seed))
    print(f"genzoo: wrote {args.out} ({len(runs)} run{'s' if len(runs) > 1 else ''}); open it in a browser")
    return 0


def cmd_explore(args) -> int:
    from .explore import serve

    run = load_run(args.run_dir)
    serve(run, port=args.port, open_browser=not args.no_browser)
    return 0


# -- prepare --------------------------------------------------------------------------------
def cmd_prepare(args) -> int:
    from .config import DataConfig
    from .data.datasets import prepare_folder

    if not args.folder.is_dir():
        raise GenzooError(f"{args.folder}: not a folder")
    DataConfig(image_size=args.image_size, channels=args.channels)  # the same limits as training
    manifest = prepare_folder(args.folder, args.out, image_size=args.image_size, channels=args.channels, log=sys.stderr)
    print(f"genzoo: prepared {manifest['counts']['train']} training and {manifest['counts']['test']} test images "
          f"({args.channels} x {args.image_size} x {args.image_size}) in {args.out}; train with --dataset {args.out}"
          + (f" --set data.image_size={args.image_size}" if args.image_size != 28 else "")
          + (f" --set data.channels={args.channels}" if args.channels != 1 else ""))
    return 0


# -- zoo ------------------------------------------------------------------------------------
def cmd_zoo(args) -> int:
    from . import zoo
    from .evaluation.benchmark import PROTOCOLS, markdown, row_named

    rows = {row.label: row for row in PROTOCOLS["mnist"]}
    if args.action == "build":
        from .zoo.build import build, size_bytes

        wanted = [r.strip() for r in args.rows.split(",")] if args.rows else [
            label for label in rows if (args.runs_dir / label / "eval.json").exists()]
        build([row_named(label) for label in wanted], args.runs_dir, zoo.zoo_root())
        print(f"genzoo: zoo built from {len(wanted)} rows; {size_bytes(zoo.zoo_root()) / 1e6:.1f} MB in all")
        return 0
    entries = zoo.entries()
    if not entries:
        print("genzoo: no zoo models are installed")
        return 0
    if args.action == "table":
        results = []
        for name, entry in entries.items():
            zoo.resolve(zoo.PREFIX + name)
            result = json.loads((entry.path / "eval.json").read_text(encoding="utf-8"))
            results.append((rows[name], result, entry.train_seconds))
        order = list(rows)
        text = markdown("mnist", sorted(results, key=lambda item: order.index(item[0].label)))
        if args.out:
            atomic_write_text(args.out, text)
        print(text)
        return 0
    width = max(map(len, entries)) + 4
    for name, entry in entries.items():
        numbers = ", ".join(f"{key} {value:.3g}" if isinstance(value, float) else f"{key} {value}"
                            for key, value in entry.headline.items())
        print(f"{'zoo:' + name:<{width}}  {entry.model:<16} {entry.train_seconds / 60:5.1f} min  {numbers}")
    print("use a name wherever a run directory goes: genzoo sample zoo:NAME --num 64 --out samples.png")
    return 0


# -- models ---------------------------------------------------------------------------------
def cmd_models(args) -> int:
    from .config import DataConfig, TrainConfig

    width = max(map(len, MODELS))
    for name, entry in MODELS.items():
        print(f"{name:<{width}}  {entry.summary}  [{entry.reference}]")
        if args.verbose:
            for field in dataclasses.fields(entry.config):
                print(f"{'':<{width}}    {field.name} = {getattr(entry.config, field.name)!r}")
            for preset, config in entry.presets.items():
                changed = [f"{f.name}={getattr(config, f.name)!r}" for f in dataclasses.fields(config)
                           if getattr(config, f.name) != getattr(entry.config, f.name)]
                print(f"{'':<{width}}    --preset {preset}: {', '.join(changed) or '(the default)'}")
            print(f"{'':<{width}}    train.batch_size = {entry.batch_size} (this model's default)")
    if args.verbose:
        for section, config in (("data", DataConfig()), ("train", TrainConfig())):
            print(f"{section} fields (every model; --set {section}.NAME=VALUE):")
            for field in dataclasses.fields(config):
                print(f"    {section}.{field.name} = {getattr(config, field.name)!r}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    code = main()
    if distributed.launched_world() > 1:
        distributed.exit_skipping_finalization(code)  # a torchrun worker
    raise SystemExit(code)
