"""Generative adversarial network with MLPs (Goodfellow et al. 2014), the lectures' architecture,
and its conditional form (Mirza & Osindero 2014), where the one-hot label is concatenated to the
generator's noise and to the discriminator's input.

Generator 100 -> 256 -> 512 -> 1024 -> 784, LeakyReLU(0.2), tanh output; discriminator
784 -> 1024 -> 512 -> 256 -> 1, LeakyReLU(0.2) and dropout. Pixels in [-1, 1].
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from ..config import Fraction, NonNegativeCount, Size
from ..data import DataSpec
from .adversarial import AdversarialTraining, LatentGAN, MinibatchStd, average_of
from .layers import leaky_relu, mlp, one_hot


@dataclass(frozen=True)
class GANConfig(AdversarialTraining):
    latent_dim: Size = 100  # z ~ N(0, I)
    generator_dims: tuple[Size, ...] = (256, 512, 1024)
    discriminator_dims: tuple[Size, ...] = (1024, 512, 256)
    dropout: Fraction = 0.3  # in the discriminator, after every hidden layer
    conditional: bool = False  # condition both networks on the label (CGAN)
    # How the discriminator sees the label: "concat" appends the one-hot label to the image
    # (Mirza & Osindero 2014); "projection" adds embed(y) . phi(x) to the logit (Miyato & Koyama
    # 2018). With concat, the lectures' MLPs ignored the label for 6 epochs on MNIST (conditional
    # accuracy 0.10); projection makes every update use it.
    discriminator_conditioning: Literal["concat", "projection"] = "projection"
    # > 0: the discriminator's last hidden layer also sees the feature spread over groups of this
    # many images (minibatch standard deviation, Karras et al. 2018), against mode collapse; 0 = off.
    minibatch_std_group: NonNegativeCount = 0
    # > 0: samples come from a running average of the generator's weights with this decay
    # (Yazici et al. 2019; e.g. 0.999, about the last 1000 steps), not from the last step's; 0 = off.
    generator_average: Fraction = 0.0


class GAN(LatentGAN):
    """MLP GAN; ``config.conditional`` makes it a conditional GAN."""

    def __init__(self, config: GANConfig, spec: DataSpec):
        super().__init__(config, spec)
        if config.conditional and spec.num_classes < 2:
            raise ValueError("a conditional GAN needs a labelled dataset (2 classes or more)")
        self.conditional = config.conditional
        condition_dim = spec.num_classes if config.conditional else 0
        g_sizes = (config.latent_dim + condition_dim, *config.generator_dims)
        self.generator = nn.Sequential(
            mlp(g_sizes, activation=leaky_relu), nn.Linear(g_sizes[-1], spec.num_pixels), nn.Tanh()
        )
        self.projection = config.conditional and config.discriminator_conditioning == "projection"
        d_sizes = (spec.num_pixels + (0 if self.projection else condition_dim), *config.discriminator_dims)
        group = config.minibatch_std_group
        head = nn.Sequential(MinibatchStd(group), nn.Linear(d_sizes[-1] + 1, 1)) if group else nn.Linear(d_sizes[-1], 1)
        self.discriminator = nn.Sequential(mlp(d_sizes, activation=leaky_relu, dropout=config.dropout), head)
        if self.projection:
            self.label_embedding = nn.Embedding(spec.num_classes, d_sizes[-1])
        self.generator_average = average_of(self.trained_generators(), config.generator_average)

    def discriminator_parameters(self) -> list[nn.Parameter]:
        extra = list(self.label_embedding.parameters()) if self.projection else []
        return [*self.discriminator.parameters(), *extra]

    def _condition(self, features: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        condition = one_hot(self.check_labels(labels, len(features)), self.spec.num_classes)
        return features if condition is None else torch.cat([features, condition], dim=1)

    def generate(self, latents: torch.Tensor, labels: torch.Tensor | None = None, *, training: bool = False) -> torch.Tensor:
        return self.generators(training)(self._condition(latents, labels)).view(-1, *self.spec.shape)

    def discriminate(self, images: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        if not self.projection:
            return self.discriminator(self._condition(images.flatten(1), labels)).squeeze(1)
        features = self.discriminator[0](images.flatten(1))  # phi(x), (B, last hidden)
        labels = self.check_labels(labels, len(images))
        return (self.discriminator[1](features).squeeze(1)
                + (self.label_embedding(labels) * features).sum(1))  # psi(phi(x)) + embed(y) . phi(x)
