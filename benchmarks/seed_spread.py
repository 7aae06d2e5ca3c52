"""How far the training seed alone moves a benchmark row's figures: the row retrained with other
values of ``train.seed`` (the rows use 0 unless they set it), each evaluated as the benchmark
evaluates the row (its weights rounded to the zoo's dtype), printed beside the zoo's model.

    python benchmarks/seed_spread.py lapgan --seeds 0,2 --runs-dir runs/seeds
        (needs MNIST: GENZOO_DATA or ../shared/data; a 16-epoch lapgan is 75-120 min a seed on 2 cores)

Each seed trains in RUNS_DIR/ROW-seedS and resumes there when stopped (Ctrl-C saves) and started
again; a seed already trained and evaluated is only read. Use it before tuning a recipe whose gap to
its target is small: a gap inside the seeds' spread is not a recipe's to close."""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

from shared_data import mnist_root

from genzoo.errors import GenzooError
from genzoo.evaluation.benchmark import row_named, run_row
from genzoo.zoo import zoo_root

COLUMNS = {"fd": "FD", "kid_x1000": "KID x 1000", "precision": "precision", "recall": "recall",
           "classifier_score": "score", "classes_covered": "classes", "nll": "NLL"}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("row", help="a row of `genzoo benchmark mnist`, e.g. lapgan")
    parser.add_argument("--seeds", help="comma-separated training seeds (default: the first two the row does not"
                        " set; the zoo's model has the row's)")
    parser.add_argument("--runs-dir", type=Path, default=Path("runs/seeds"))
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    try:
        row = row_named(args.row)
        row_seed = row.config("").train.seed
        seeds = [int(s) for s in args.seeds.split(",")] if args.seeds else [s for s in range(3) if s != row_seed][:2]
        rows = [row.with_seed(s) for s in seeds]
    except ValueError:
        parser.error(f"--seeds takes comma-separated integers, not {args.seeds!r}")
    except GenzooError as error:
        parser.error(str(error))
    data_dir = mnist_root()
    results = []
    shipped = zoo_root() / "models" / args.row / "eval.json"
    if shipped.exists() and row_seed not in seeds:  # the zoo's model, unless it is retrained here
        results.append((f"{row_seed} (zoo)", json.loads(shipped.read_text())["metrics"], None))
    for seed, seeded in zip(seeds, rows, strict=True):
        try:
            _, result, seconds = run_row(seeded, args.runs_dir, data_dir=data_dir, progress=not args.no_progress)
        except GenzooError as error:
            sys.exit(f"seed_spread: {error}")
        results.append((str(seed), result["metrics"], seconds))
    present = [k for k in COLUMNS if all(k in m for _, m, _ in results)]
    print(f"| {args.row} seed | train min | " + " | ".join(COLUMNS[k] for k in present) + " |")
    print("|---" * (len(present) + 2) + "|")
    for seed, metrics, seconds in results:
        minutes = "-" if seconds is None else f"{seconds / 60:.1f}"
        print(f"| {seed} | {minutes} | " + " | ".join(f"{metrics[k]:.4g}" for k in present) + " |")
    if len(results) > 1:
        print("| sd | | " + " | ".join(f"{statistics.stdev(m[k] for _, m, _ in results):.3g}" for k in present) + " |")


if __name__ == "__main__":
    main()
