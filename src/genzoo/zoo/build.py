"""Building the zoo from the runs of ``genzoo benchmark mnist`` (a maintainer's step).

    genzoo zoo build --runs-dir runs/benchmark-mnist

For every row of the protocol that has been trained and evaluated, writes ``models/ROW/`` (weights
in the row's zoo dtype, config, meta, eval.json, epoch records, a few per-epoch grids, a model card)
and ``index.json`` with the checksums. The eval.json is the row's evaluation, which the benchmark
makes on weights already rounded to that dtype, so the numbers are those of the shipped files.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import statistics
from pathlib import Path

import torch
from PIL import Image
from safetensors.torch import load_file
from safetensors.torch import save as safetensors_bytes

from ..config import to_toml
from ..errors import GenzooError
from ..fileio import atomic_write_bytes, atomic_write_text
from ..images import save_png, unenlarged
from ..runs import CONFIG, META, load_run, read_config, read_metrics
from ..trainer import METRICS, WEIGHTS
from . import INDEX, sha256

MAX_GRIDS = 5  # per-epoch grids kept per model: first, last and evenly spaced between (the zoo stays under ~60 MB)
MAX_STEP_RECORDS = 300  # step records kept for the loss plot (every n-th; 300 keep the zoo near 60 MB)


def headline(result: dict) -> dict:
    """The numbers `genzoo zoo` shows for a row, from its eval.json."""
    metrics, keys = result["metrics"], []
    # A Boltzmann machine's NLL comes with its interval (AIS's error bars; for a DBM, its estimates of
    # log Z from below and from above) and the spread over independent runs.
    keys += [k for k in ("nll", "nll_low", "nll_high", "nll_run_std") if k in metrics]
    keys += [k for k in ("fd", "classes_covered", "classifier_score", "conditional_accuracy", "reconstruction_bce",
                         "denoising_gain", "inpainting_gain") if k in metrics]
    return {key: metrics[key] for key in keys}


def cast_weights(state: dict[str, torch.Tensor], parameters: set[str], dtype: torch.dtype) -> dict[str, torch.Tensor]:
    """The state with its ``parameters`` in ``dtype``; buffers keep theirs (see ``round_weights``)."""
    return {name: (t.to(dtype) if name in parameters else t).contiguous() for name, t in state.items()}


def thin_metrics(run_dir: Path) -> str:
    steps, epochs = read_metrics(run_dir)
    every = max(1, -(-len(steps) // MAX_STEP_RECORDS))
    records = sorted(steps[::every] + epochs, key=lambda r: (r["step"], r["kind"] == "epoch"))
    return "".join(json.dumps(r) + "\n" for r in records)


def model_card(label: str, note: str, config, result: dict, epochs: list[dict]) -> str:
    # The sum of the epochs' wall times also counts any time the run was paused or shared the
    # machine; the median epoch does not, so the card gives both.
    minutes = sum(e["seconds"] for e in epochs) / 60
    median = statistics.median(e["seconds"] for e in epochs)
    source = config.train.init_from.removeprefix("zoo:")
    start = f", starting from `zoo:{source}`" if source else ""
    rows = f"{source},{label}" if source else label
    lines = [f"# zoo:{label}", "", note, "",
             f"- model: `{config.model}`, trained {epochs[-1]['epoch']} epochs on MNIST{start} "
             f"({minutes:.1f} min of training on a 2-core CPU, median epoch {median:.1f} s), seed {config.train.seed}",
             f"- reproduce: `genzoo benchmark mnist --rows {rows}` (trains into runs/benchmark-mnist/{label}), "
             f"or `genzoo train --config config.toml`",
             f"- weights: {result.get('weights_dtype', 'float32')}; evaluated as shipped", "",
             "| metric | value | real-vs-real floor |", "|---|---:|---:|"]
    for name, value in result["metrics"].items():
        floor = result["floors"].get(name)
        lines.append(f"| {name} | {value:.4g} | {'' if floor is None else f'{floor:.4g}'} |")
    lines += ["", "Protocol: `" + json.dumps(result["protocol"]) + "`", ""]
    return "\n".join(lines)


def build(rows, runs_dir: Path, root: Path) -> dict:
    """Write the zoo under ``root`` from ``rows`` (benchmark Rows) trained in ``runs_dir``."""
    models_dir = root / "models"
    index = json.loads((root / INDEX).read_text()) if (root / INDEX).exists() else {"models": {}}
    index["models"] = {name: item for name, item in index["models"].items() if (models_dir / name).is_dir()}
    for row in rows:
        run_dir = runs_dir / row.label
        if not (run_dir / "eval.json").exists():
            raise GenzooError(f"{run_dir} has no eval.json; run `genzoo benchmark mnist --rows {row.label}` first")
        result = json.loads((run_dir / "eval.json").read_text())
        dest = models_dir / row.label
        if dest.exists():
            shutil.rmtree(dest)
        (dest / "samples").mkdir(parents=True)
        config = read_config(run_dir / CONFIG)
        # A fine-tuned row starts from the shipped model of the row it started from.
        config = dataclasses.replace(config, data=dataclasses.replace(config.data, data_dir=""),
                                     train=dataclasses.replace(config.train, device="auto",
                                                               init_from=row.start_from and f"zoo:{row.start_from}"))
        atomic_write_text(dest / CONFIG, to_toml(config))
        shutil.copyfile(run_dir / META, dest / META)
        model = load_run(run_dir).model
        parameters = {name for name, _ in model.named_parameters()}
        state = model.shipped_state(load_file(str(run_dir / WEIGHTS)))  # e.g. a GAN's averaged generator, not the trained one
        state = cast_weights(state, parameters, getattr(torch, row.zoo_dtype))
        atomic_write_bytes(dest / WEIGHTS, safetensors_bytes(state))
        atomic_write_text(dest / "eval.json", json.dumps({**result, "run": f"zoo:{row.label}"}, indent=2) + "\n")
        atomic_write_text(dest / METRICS, thin_metrics(run_dir))
        grids = sorted((run_dir / "samples").glob("epoch_*.png"))
        picks = sorted({round(i * (len(grids) - 1) / max(1, min(MAX_GRIDS, len(grids)) - 1))
                        for i in range(min(MAX_GRIDS, len(grids)))})
        for i in picks:  # at 1x: the run's grids are 2x enlargements for viewing
            save_png(unenlarged(Image.open(grids[i])), dest / "samples" / grids[i].name)
        _, epochs = read_metrics(run_dir)
        atomic_write_text(dest / "MODEL_CARD.md", model_card(row.label, row.note, config, result, epochs))
        files = sorted(p.relative_to(dest).as_posix() for p in dest.rglob("*") if p.is_file())
        index["models"][row.label] = {
            "model": row.model, "summary": row.note, "headline": headline(result),
            "train_seconds": round(sum(e["seconds"] for e in epochs), 1),
            "files": {name: sha256(dest / name) for name in files},
        }
    atomic_write_text(root / INDEX, json.dumps(index, indent=2) + "\n")
    return index


def size_bytes(root: Path) -> int:
    return sum(p.stat().st_size for p in (root / "models").rglob("*") if p.is_file())
