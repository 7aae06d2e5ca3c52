"""A Markdown table of finished runs: model, epochs, wall time, held-out test losses, and for
denoising models the error left after denoising.

    .venv/bin/python benchmarks/report_runs.py runs/docs/vae runs/docs/cvae ...

Everything is read from the run directories (``metrics.jsonl``) except the denoising figure, which
is computed here on the first 2000 test images with a fixed seed.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
import torch.nn.functional as F

import genzoo
from genzoo.data import to_model_input
from genzoo.models.base import Denoiser
from genzoo.runs import load_split, read_metrics


def denoising_ratio(run: genzoo.Run) -> float:
    """MSE(denoised, clean) / MSE(noisy, clean) on 2000 test images (lower is better)."""
    test = load_split(run.config.data, "test")
    clean = to_model_input(test.images[:2000], run.model.data_format, torch.Generator().manual_seed(0))
    noisy = run.model.corrupt(clean, torch.Generator().manual_seed(0))
    with torch.no_grad():
        denoised = run.model.reconstruct(noisy)
    return float(F.mse_loss(denoised, clean) / F.mse_loss(noisy, clean))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", type=Path)
    args = parser.parse_args()
    print("| run | model | epochs | wall time | test loss (nats/image) | other held-out metrics |")
    print("|---|---|---:|---:|---:|---|")
    for path in args.runs:
        run = genzoo.load_run(path)
        _, epochs = read_metrics(path)
        last = epochs[-1]
        seconds = sum(e["seconds"] for e in epochs)
        extra = [f"{k[5:]} {v:.1f}" for k, v in last.items() if k.startswith("test/") and k != "test/loss"]
        if isinstance(run.model, Denoiser) and run.model.corruption != "none":
            extra.append(f"denoised/noisy MSE {denoising_ratio(run):.3f} ({run.model.corruption})")
        print(f"| `{path.name}` | {run.config.model} | {last['epoch']} | {seconds / 60:.1f} min | "
              f"{last['test/loss']:.1f} | {', '.join(extra) or '-'} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
