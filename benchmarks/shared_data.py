"""What the benchmark scripts share (imported by them as a sibling module): where they read MNIST,
and the benchmark's sample metrics as one printed line."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import torch

from genzoo.errors import GenzooError
from genzoo.evaluation.evaluator import bundled_evaluator
from genzoo.evaluation.suite import sample_set_metrics
from genzoo.runs import Run, load_run, load_split

SAMPLE_METRICS = ["fd", "prdc", "classifier-score", "class-coverage"]


def mnist_root() -> str:
    """``$GENZOO_DATA``, else the ``../shared/data`` beside the repository (this project's machines),
    exported as ``GENZOO_DATA`` so that zoo models, whose configs name no data directory, find it
    too. An empty string if neither: genzoo's own default then applies (no download here)."""
    if not os.environ.get("GENZOO_DATA"):
        shared = Path(__file__).resolve().parents[2] / "shared" / "data"
        if shared.is_dir():
            os.environ["GENZOO_DATA"] = str(shared)
    return os.environ.get("GENZOO_DATA", "")


def load_benchmark_run(parser: argparse.ArgumentParser, name: str, kind: type, what: str) -> Run:
    """The run (zoo name or directory) ``name``, MNIST found by :func:`mnist_root`; a one-line
    parser error (exit 2) if it cannot be loaded or its model is not a ``kind`` (``what``)."""
    mnist_root()
    try:
        run = load_run(name)
    except GenzooError as error:
        parser.error(str(error))
    if not isinstance(run.model, kind):
        parser.error(f"{name} is not {what}")
    return run


class SampleScores:
    """The benchmark's sample metrics (FD, precision and recall, classifier score, class coverage)
    of sample sets against the first ``num`` images of ``run``'s test split, seed 0."""

    def __init__(self, run: Run, num: int):
        self.evaluator = bundled_evaluator(run.config.data.dataset)
        self.real = load_split(run.config.data, "test").images[:num].float() / 255

    def line(self, fake: torch.Tensor, labels: torch.Tensor | None = None) -> str:
        """``fake`` ([0, 1] images) scored, as "name value, ..."."""
        metrics = sample_set_metrics(self.evaluator, self.real, fake, fake_labels=labels, seed=0, which=SAMPLE_METRICS)
        return ", ".join(f"{k} {v:.3g}" for k, v in metrics.items() if k != "class_entropy_max_bits")
