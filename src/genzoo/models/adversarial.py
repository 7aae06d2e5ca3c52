"""The two-player game shared by every adversarial model (GAN, DCGAN, CGAN, LAPGAN levels, the
context encoder): the losses, and one iteration of Goodfellow et al. (2014), Algorithm 1.

One generator forward pass serves the whole iteration: its output, detached, is the fake half of
the ``k`` discriminator steps, and with its graph it feeds the generator step (through the updated
discriminator). Nothing is generated twice.
"""

from __future__ import annotations

import abc
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from ..data import Batch, DataFormat, to_unit_range
from .base import GenerativeModel, Metrics, Sampler


@dataclass(frozen=True)
class AdversarialTraining:
    """Fields every adversarial model's config shares (model configs inherit them)."""

    generator_loss: Literal["non-saturating", "minimax"] = "non-saturating"  # -log D(G(z)) or log(1 - D(G(z)))
    label_smoothing: float = 0.0  # one-sided: real targets 1 - label_smoothing (Salimans et al. 2016: 0.1)
    discriminator_steps: int = 1  # k discriminator steps per generator step; the batch is split into k
    learning_rate: float = 2e-4  # Adam for both players (Radford et al. 2016)
    generator_rate_ratio: float = 1.0  # the generator's rate as a multiple of learning_rate (Heusel et al. 2017: two rates)
    beta1: float = 0.5  # Adam's beta1; Radford et al.: 0.9 oscillates and is unstable, 0.5 trains


def adam_pair(config: AdversarialTraining, generator_params, discriminator_params) -> dict[str, torch.optim.Optimizer]:
    betas = (config.beta1, 0.999)
    return {
        "generator": torch.optim.Adam(generator_params, lr=config.learning_rate * config.generator_rate_ratio, betas=betas),
        "discriminator": torch.optim.Adam(discriminator_params, lr=config.learning_rate, betas=betas),
    }


def validate(config: AdversarialTraining) -> None:
    if not 0 <= config.label_smoothing < 1:
        raise ValueError(f"label_smoothing must be in [0, 1), not {config.label_smoothing}")
    if config.discriminator_steps < 1:
        raise ValueError(f"discriminator_steps must be at least 1, not {config.discriminator_steps}")
    if config.generator_rate_ratio <= 0:
        raise ValueError(f"generator_rate_ratio must be positive, not {config.generator_rate_ratio}")


def discriminator_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor, *, label_smoothing: float) -> torch.Tensor:
    """-[log D(x) + log(1 - D(G(z)))], with one-sided smoothing of the real targets."""
    real_targets = torch.full_like(real_logits, 1.0 - label_smoothing)
    return (F.binary_cross_entropy_with_logits(real_logits, real_targets)
            + F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits)))


def generator_loss(fake_logits: torch.Tensor, kind: str) -> torch.Tensor:
    """Non-saturating: -log D(G(z)) (strong gradients early, Goodfellow et al. 2014, sec. 3).
    Minimax: log(1 - D(G(z))), the value function's own term, which saturates when D wins."""
    if kind == "non-saturating":
        return F.binary_cross_entropy_with_logits(fake_logits, torch.ones_like(fake_logits))
    return -F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits))


Discriminate = Callable[[torch.Tensor, torch.Tensor | None], torch.Tensor]  # (images, labels) -> logits (B,)


def _chunk(tensor: torch.Tensor | None, k: int):
    return [None] * k if tensor is None else list(tensor.chunk(k))


def adversarial_iteration(
    config: AdversarialTraining,
    discriminate: Discriminate,
    optimizers: dict[str, torch.optim.Optimizer],
    *,
    real: torch.Tensor,
    fake: torch.Tensor,
    labels: torch.Tensor | None = None,
    extra_generator_loss: torch.Tensor | None = None,
    adversarial_weight: float = 1.0,
) -> Metrics:
    """k discriminator steps on ``real`` vs ``fake.detach()`` (split into k chunks), then one
    generator step on ``adversarial_weight * generator_loss + extra_generator_loss``.

    ``fake`` must still carry the generator's graph. Returns detached scalars: both losses,
    D(x) and D(G(z)) (mean probabilities at the discriminator steps), and ``loss`` (their sum,
    watched for divergence).
    """
    k = config.discriminator_steps
    d_optimizer, g_optimizer = optimizers["discriminator"], optimizers["generator"]
    d_losses, d_real, d_fake = [], [], []
    for real_chunk, fake_chunk, label_chunk in zip(real.chunk(k), fake.detach().chunk(k), _chunk(labels, k), strict=True):
        real_logits = discriminate(real_chunk, label_chunk)
        fake_logits = discriminate(fake_chunk, label_chunk)
        loss = discriminator_loss(real_logits, fake_logits, label_smoothing=config.label_smoothing)
        d_optimizer.zero_grad(set_to_none=True)
        loss.backward()
        d_optimizer.step()
        d_losses.append(loss.detach())
        d_real.append(torch.sigmoid(real_logits).mean().detach())
        d_fake.append(torch.sigmoid(fake_logits).mean().detach())
    adversarial = generator_loss(discriminate(fake, labels), config.generator_loss)
    g_loss = adversarial_weight * adversarial
    if extra_generator_loss is not None:
        g_loss = g_loss + extra_generator_loss
    g_optimizer.zero_grad(set_to_none=True)
    g_loss.backward()
    g_optimizer.step()
    d_mean = torch.stack(d_losses).mean()
    return {
        "loss": d_mean + g_loss.detach(),
        "discriminator_loss": d_mean,
        "generator_loss": adversarial.detach(),
        "d_real": torch.stack(d_real).mean(),
        "d_fake": torch.stack(d_fake).mean(),
    }


@torch.no_grad()
def adversarial_evaluation(
    config: AdversarialTraining, discriminate: Discriminate, *, real: torch.Tensor, fake: torch.Tensor,
    labels: torch.Tensor | None = None,
) -> Metrics:
    """The same losses on held-out real images and fresh samples, without updates."""
    real_logits, fake_logits = discriminate(real, labels), discriminate(fake, labels)
    d_loss = discriminator_loss(real_logits, fake_logits, label_smoothing=0.0)
    g_loss = generator_loss(fake_logits, config.generator_loss)
    return {
        "loss": d_loss + g_loss,
        "discriminator_loss": d_loss,
        "generator_loss": g_loss,
        "d_real": torch.sigmoid(real_logits).mean(),
        "d_fake": torch.sigmoid(fake_logits).mean(),
    }


class LatentGAN(GenerativeModel, Sampler):
    """Abstract: a GAN whose generator maps z ~ N(0, I) (and, if conditional, a label) to an
    image in [-1, 1]. Subclasses build ``self.generator`` and ``self.discriminator`` networks and
    say how to call them; the game, sampling and previews are the same for all."""

    @property
    def data_format(self) -> DataFormat:
        return DataFormat(value_range="symmetric")

    @abc.abstractmethod
    def generate(self, latents: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """z (B, latent_dim) -> images (B, C, H, W) in [-1, 1]."""

    @abc.abstractmethod
    def discriminate(self, images: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """Images (B, C, H, W) in [-1, 1] -> discriminator logits (B,)."""

    def latents(self, num: int, generator: torch.Generator | None) -> torch.Tensor:
        device = next(self.parameters()).device
        return torch.randn(num, self.config.latent_dim, generator=generator, device=device)

    def _labels(self, batch: Batch) -> torch.Tensor | None:
        return batch.labels if self.conditional else None

    def discriminator_parameters(self) -> list[nn.Parameter]:
        """Everything the discriminator's optimizer updates."""
        return list(self.discriminator.parameters())

    def configure_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return adam_pair(self.config, self.generator.parameters(), self.discriminator_parameters())

    def train_step(self, batch: Batch, optimizers, *, generator: torch.Generator) -> Metrics:
        labels = self._labels(batch)
        fake = self.generate(self.latents(len(batch), generator), labels)
        return adversarial_iteration(self.config, self.discriminate, optimizers, real=batch.images, fake=fake,
                                     labels=labels)

    def evaluate_step(self, batch: Batch, *, generator: torch.Generator) -> Metrics:
        labels = self._labels(batch)
        fake = self.generate(self.latents(len(batch), generator), labels)
        return adversarial_evaluation(self.config, self.discriminate, real=batch.images, fake=fake, labels=labels)

    def sample(self, num: int, *, labels: torch.Tensor | None = None, generator: torch.Generator | None = None):
        return to_unit_range(self.generate(self.latents(num, generator), labels), self.data_format)

    def preview(self, batch: Batch, *, generator: torch.Generator) -> torch.Tensor:
        return self.sample(len(batch), labels=self._labels(batch), generator=generator)
