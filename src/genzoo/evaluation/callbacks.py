"""Cheap evaluation while training: the evaluator's view of a fixed set of samples every epoch,
so that mode collapse shows up in ``metrics.jsonl`` (and as a warning) while a GAN trains; and a
warning when a latent-variable model's code carries next to nothing (posterior collapse)."""

from __future__ import annotations

import sys

import torch
from tqdm.auto import tqdm

from ..models.base import Sampler
from ..trainer import Callback, Trainer
from .evaluator import Evaluator
from .metrics import ClassCoverage, ClassifierScore, ConditionalAccuracy


class SampleQuality(Callback):
    """Per epoch: classifier score, class coverage (and conditional accuracy for conditional
    models) of ``num_samples`` samples drawn with a fixed seed, logged as ``eval/...``.
    Warns when the samples cover fewer than ``min_classes`` classes."""

    def __init__(self, evaluator: Evaluator, *, num_samples: int = 1000, seed: int = 0, min_classes: int | None = None):
        self.evaluator, self.num_samples, self.seed = evaluator, num_samples, seed
        classes = len(evaluator.class_names)
        self.min_classes = classes - 1 if min_classes is None else min_classes

    @torch.no_grad()
    def epoch_metrics(self, trainer: Trainer) -> dict[str, float]:
        model = trainer.model
        if not isinstance(model, Sampler):
            return {}
        model.eval()
        device = next(model.parameters()).device
        labels = torch.arange(self.num_samples, device=device) % model.spec.num_classes if model.conditional else None
        samples = model.sample(self.num_samples, labels=labels, generator=torch.Generator(device=device).manual_seed(self.seed))
        model.train()
        _, probabilities = self.evaluator.features_and_probabilities(samples.cpu())
        score, coverage = ClassifierScore(), ClassCoverage(len(self.evaluator.class_names))
        score.update(probabilities)
        coverage.update(probabilities)
        results = {**score.compute(), **coverage.compute()}
        results.pop("class_entropy_max_bits")
        if labels is not None:
            accuracy = ConditionalAccuracy()
            accuracy.update(probabilities, labels.cpu())
            results.update(accuracy.compute())
        if results["classes_covered"] < self.min_classes:
            tqdm.write(f"genzoo: warning: epoch {trainer.epoch + 1} samples cover only {results['classes_covered']} of "
                       f"{len(self.evaluator.class_names)} classes{model.few_classes_hint}", file=sys.stderr)
        return {f"eval/{name}": value for name, value in results.items()}


class UnusedLatent(Callback):
    """Warns after an epoch whose held-out KL(q(z|x) || p(z)) (``test/kl``, nats per image, logged by
    VAEs and DRAW) is below ``threshold``: the code then tells the decoder almost nothing about
    the image (posterior collapse, Bowman et al. 2016) and the model is a decoder of the mean
    image. The VAE's hint: KL warm-up (``kl_warmup_steps``) or a smaller ``kl_weight``."""

    def __init__(self, threshold: float = 0.5):
        self.threshold = threshold

    def on_epoch_end(self, trainer: Trainer, summary: dict[str, float]) -> None:
        kl = summary.get("test/kl")
        if trainer.group.is_main and kl is not None and kl < self.threshold:
            tqdm.write(f"genzoo: warning: epoch {summary['epoch']} test KL {kl:.3g} nats per image: the model "
                       f"ignores its latent code (posterior collapse); a VAE may need KL warm-up "
                       f"(kl_warmup_steps) or a smaller kl_weight", file=sys.stderr)
