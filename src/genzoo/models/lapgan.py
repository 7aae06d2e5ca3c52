"""Laplacian pyramid of adversarial networks (Denton, Chintala, Szlam & Fergus 2015).

An image I_0 is decomposed into a pyramid: I_{k+1} = downsample(I_k) (2x2 average), and band-pass
residuals h_k = I_k - upsample(I_{k+1}) (bilinear). A GAN generates the coarsest image I_K from
noise; at every finer level a conditional GAN generates the residual h_k from noise and the
upsampled coarser image l_k = upsample(I_{k+1}), and I_k = l_k + h_k. Levels are trained
independently on real pyramids (each level's generator is conditioned on the real coarser image);
sampling runs the cascade from coarse to fine.

For 28x28 MNIST with 3 levels: 7x7 (an MLP GAN as in the paper, or a convolutional one), 14x14 and
28x28 (convolutional residual GANs); with 2 levels a DCGAN-style 14x14 GAN and one 28x28
residual GAN.
All levels are played as one game: the discriminators' logits are stacked (B, levels), so one
pair of optimizers covers every level's networks (their parameters are disjoint).
"""

from __future__ import annotations

import typing
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..config import Between, Channels, Fraction, Size
from ..data import Batch, DataFormat, DataSpec, to_unit_range
from .adversarial import (
    AdversarialTraining,
    AveragedGenerator,
    adam_pair,
    adversarial_evaluation,
    adversarial_iteration,
    average_of,
    mixes_batch,
)
from .base import Metrics, Sampler
from .dcgan import DCGANConfig, init_weights, radford_discriminator, radford_generator
from .layers import leaky_relu, mlp


@dataclass(frozen=True)
class LAPGANConfig(AdversarialTraining):
    levels: typing.Annotated[int, Between(2, 8)] = 3  # pyramid levels; the coarsest side is the image side / 2^(levels - 1)
    latent_dim: Size = 100  # noise of the coarsest GAN
    # the coarsest GAN: "mlp" (the paper's fully connected networks, coarse_dims and dropout) or
    # "conv" (coarse_convolutional_gan: 3x3 convolutions, coarse_channels wide). Measured on MNIST
    # (benchmarks/lapgan_coarse.py): trained alone and run up the same residual levels, the 7x7 MLP
    # GAN topped out near a classifier score of 8.3 with every recipe tried; the convolutional one
    # reached 8.40 after 10 epochs. "radford" (coarse_radford_gan: dcgan's networks with one
    # strided layer, coarse_channels wide, extra_convs deep; even coarsest sides, so levels=2 for
    # MNIST): trained alone at 14x14 (128 channels, extra_convs 2, R1 gamma 1) and run up the
    # shipped 3-level row's finest level, 8.67 after 10 epochs with FD 4.49 (5,000 samples), where
    # that row scores 8.63 with FD 7.23 (10,000); trained whole (2 levels, R1 on both, 16 epochs) its
    # 28x28 level broke in the last epoch (docs/zoo-notebook.md#lapgan).
    coarse_architecture: typing.Literal["mlp", "conv", "radford"] = "mlp"
    coarse_dims: tuple[Size, ...] = (512, 512)  # hidden layers of the coarsest G and D (mlp)
    coarse_channels: Channels = 64  # width of the coarsest G and D (conv, radford)
    # radford: > 0 gives both coarsest networks features at the coarsest level's own size (dcgan's
    # at 28x28 have them at 7x7 and 14x14; these have 7x7 only): G's transposed convolution goes to
    # coarse_channels / 2 planes (batch norm, ReLU) and this many 3x3 convolutions follow, the last
    # to the image (tanh); D starts with this many 3x3 convolutions of coarse_channels / 2 (LeakyReLU)
    # before its strided one. 0 = the networks above. Measured in the 2-level row with 1
    # (docs/zoo-notebook.md#lapgan): at a constant rate ahead per epoch (8.66 at epoch 11 against
    # 8.49), then falling to 8.02 by epoch 16 (FD 8.68, score 8.06, against 4.52 and 8.60
    # without); with the rate cosine-annealed to 10 % (the row since 2026-12-05) rising to the
    # end, FD 2.60, score 8.94.
    coarse_full_size_convs: typing.Annotated[int, Between(0, 4)] = 0
    residual_channels: Channels = 32  # width of the residual generators and discriminators
    # this many 3x3 stride-1 convolutions (batch norm and ReLU in a generator, LeakyReLU in a
    # discriminator) added to every residual generator and after each of every residual
    # discriminator's strided convolutions, for depth at every level (as dcgan's extra_convs, which
    # it is for a radford coarsest GAN); 0 = none.
    extra_convs: typing.Annotated[int, Between(0, 4)] = 0
    dropout: Fraction = 0.3  # coarsest discriminator (mlp)
    # which levels' discriminators the R1 penalty (r1_weight) applies to: "all", or "coarsest" (the
    # coarsest GAN's only, the residual levels' trained without it, as in the shipped 3-level row).
    # R1 sums over the discriminators, each one's gradient taken on its own inputs. Measured on the
    # 2-level radford row (docs/zoo-notebook.md#lapgan): with "all" its 28x28 level broke in epoch 16
    # (FD 36.5); with "coarsest" it trained through (FD 4.52, score 8.60).
    r1_levels: typing.Literal["all", "coarsest"] = "all"
    # > 0: samples come from a running average of every level's generator with this decay (as the
    # GAN's generator_average); 0 = off.
    generator_average: Fraction = 0.0


def downsample(images: torch.Tensor) -> torch.Tensor:
    return F.avg_pool2d(images, kernel_size=2)


def upsample(images: torch.Tensor) -> torch.Tensor:
    return F.interpolate(images, scale_factor=2, mode="bilinear", align_corners=False)


def laplacian_pyramid(images: torch.Tensor, levels: int) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """(coarsest image I_K, [residual h_{K-1}, ..., h_0] from coarse to fine)."""
    gaussian = [images]
    for _ in range(levels - 1):
        gaussian.append(downsample(gaussian[-1]))
    residuals = [gaussian[k] - upsample(gaussian[k + 1]) for k in range(levels - 2, -1, -1)]
    return gaussian[-1], residuals


class ResidualGenerator(nn.Module):
    """(upsampled coarse image l, noise plane) -> residual h, same height and width: 3x3
    convolutions keeping the size, 2 + ``extra_convs`` of them with batch norm and ReLU, then one
    to the image's channels."""

    def __init__(self, channels: int, width: int, extra_convs: int = 0):
        super().__init__()
        # Layers are created in network order: their default initialisation draws from the global
        # generator in that order, so a seed gives the weights it gave before extra_convs existed.
        layers: list[nn.Module] = []
        for c_in in (channels + 1, *[width] * (1 + extra_convs)):
            layers += [nn.Conv2d(c_in, width, kernel_size=3, padding=1), nn.BatchNorm2d(width, momentum=0.1), nn.ReLU()]
        self.net = nn.Sequential(*layers, nn.Conv2d(width, channels, kernel_size=3, padding=1))

    def forward(self, coarse: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([coarse, noise], dim=1))


def residual_discriminator(channels: int, width: int, size: tuple[int, int], extra_convs: int = 0) -> nn.Module:
    """(l, h) stacked on channels -> logit: two 4x4 stride-2 convolutions (width, 2 x width), each
    followed by ``extra_convs`` 3x3 stride-1 ones, LeakyReLU after every convolution, then a linear logit."""

    def extra(c: int) -> list[nn.Module]:
        return [module for _ in range(extra_convs) for module in (nn.Conv2d(c, c, kernel_size=3, padding=1), leaky_relu())]

    body = nn.Sequential(
        nn.Conv2d(2 * channels, width, kernel_size=4, stride=2, padding=1), leaky_relu(), *extra(width),
        nn.Conv2d(width, 2 * width, kernel_size=4, stride=2, padding=1), leaky_relu(), *extra(2 * width),
        nn.Flatten(),
    )
    with torch.no_grad():
        features = body(torch.zeros(1, 2 * channels, *size)).shape[1]
    return nn.Sequential(body, nn.Linear(features, 1))


def coarse_convolutional_gan(latent_dim: int, shape: tuple[int, int, int], width: int) -> tuple[nn.Module, nn.Module]:
    """The coarsest level's (generator, discriminator), convolutional, at the coarsest size (c, h, w).
    G: noise -> a linear layer to 2 x width planes of h x w, then 3x3 convolutions to width, width
    and c channels (batch norm and ReLU between, tanh last). D: flat images -> 3x3 convolutions to
    width and 2 x width channels, a 4x4 stride-2 one, LeakyReLU after each, a linear logit."""
    c, h, w = shape
    generator = nn.Sequential(
        nn.Linear(latent_dim, 2 * width * h * w), nn.Unflatten(1, (2 * width, h, w)), nn.BatchNorm2d(2 * width), nn.ReLU(),
        nn.Conv2d(2 * width, width, kernel_size=3, padding=1), nn.BatchNorm2d(width), nn.ReLU(),
        nn.Conv2d(width, width, kernel_size=3, padding=1), nn.BatchNorm2d(width), nn.ReLU(),
        nn.Conv2d(width, c, kernel_size=3, padding=1), nn.Tanh(),
    )
    body = nn.Sequential(
        nn.Unflatten(1, shape), nn.Conv2d(c, width, kernel_size=3, padding=1), leaky_relu(),
        nn.Conv2d(width, 2 * width, kernel_size=3, padding=1), leaky_relu(),
        nn.Conv2d(2 * width, 2 * width, kernel_size=4, stride=2, padding=1), leaky_relu(), nn.Flatten(),
    )
    with torch.no_grad():
        features = body(torch.zeros(1, c * h * w)).shape[1]
    return generator, nn.Sequential(body, nn.Linear(features, 1))


def coarse_radford_gan(latent_dim: int, shape: tuple[int, int, int], width: int,
                       extra_convs: int, full_size_convs: int = 0) -> tuple[nn.Module, nn.Module]:
    """The coarsest level's (generator, discriminator) as dcgan's radford networks with one strided
    layer each (batch norm in both, N(0, 0.02) weights): G maps noise linearly to width planes of
    h/2 x w/2, ``extra_convs`` 3x3 convolutions, then one 4x4 stride-2 transposed convolution to
    (c, h, w); D takes flat images through one 4x4 stride-2 convolution, ``extra_convs`` 3x3 ones
    and a linear logit. The coarsest sides must be even.

    With ``full_size_convs`` = n > 0 both also work at (h, w): G's transposed convolution goes to
    width / 2 planes (batch norm, ReLU), then n - 1 3x3 convolutions of that width (batch norm, ReLU)
    and a 3x3 one to c channels (tanh); D starts with n 3x3 convolutions of width / 2 (LeakyReLU, batch
    norm on all but the first), then the strided one."""
    c, h, w = shape
    if h % 2 or w % 2:
        raise ValueError(f"a radford coarsest GAN needs even coarsest sides, not {h}x{w} (use fewer levels)")
    config = DCGANConfig(layers=1, latent_dim=latent_dim, generator_channels=width, extra_convs=extra_convs)
    spec = DataSpec(c, h, w, num_classes=0)
    if not full_size_convs:
        generator = radford_generator(config, spec)
        discriminator = nn.Sequential(nn.Unflatten(1, shape),
                                      radford_discriminator(spec, width, layers=1, extra_convs=extra_convs))
    else:
        half = max(width // 2, 1)

        def more(activation: typing.Callable[[], nn.Module]) -> list[nn.Module]:
            """The n - 1 full-size 3x3 convolutions after the first, with batch norm."""
            return [module for _ in range(full_size_convs - 1)
                    for module in (nn.Conv2d(half, half, kernel_size=3, padding=1, bias=False), nn.BatchNorm2d(half),
                                   activation())]

        *head, _tanh = radford_generator(config, DataSpec(half, h, w, num_classes=0))
        generator = nn.Sequential(*head, nn.BatchNorm2d(half), nn.ReLU(), *more(nn.ReLU),
                                  nn.Conv2d(half, c, kernel_size=3, padding=1), nn.Tanh())
        discriminator = nn.Sequential(nn.Unflatten(1, shape), nn.Conv2d(c, half, kernel_size=3, padding=1),
                                      leaky_relu(), *more(leaky_relu),
                                      radford_discriminator(DataSpec(half, h, w, num_classes=0), width, layers=1,
                                                            extra_convs=extra_convs))
    generator.apply(init_weights)
    discriminator.apply(init_weights)
    return generator, discriminator


class LAPGAN(AveragedGenerator, Sampler):
    few_classes_hint = ' (mode collapse? the generator may have settled on a few modes)'

    def __init__(self, config: LAPGANConfig, spec: DataSpec):
        super().__init__(config, spec)
        scale = 2 ** (config.levels - 1)
        if config.levels < 2 or spec.height % scale or spec.width % scale:
            raise ValueError(f"{config.levels} pyramid levels need image sides divisible by {scale} (and levels >= 2)")
        if config.r1_levels != "all" and not config.r1_weight:
            raise ValueError("r1_levels chooses where the R1 penalty applies: it needs r1_weight > 0")
        if config.coarse_full_size_convs and config.coarse_architecture != "radford":
            raise ValueError("coarse_full_size_convs applies to the radford coarsest GAN only")
        c = spec.channels
        self.coarse_shape = (c, spec.height // scale, spec.width // scale)
        coarse_pixels = c * self.coarse_shape[1] * self.coarse_shape[2]
        if config.coarse_architecture == "mlp":
            g_sizes = (config.latent_dim, *config.coarse_dims)
            self.coarse_generator = nn.Sequential(mlp(g_sizes, activation=leaky_relu),
                                                  nn.Linear(g_sizes[-1], coarse_pixels), nn.Tanh())
            d_sizes = (coarse_pixels, *config.coarse_dims)
            self.coarse_discriminator = nn.Sequential(mlp(d_sizes, activation=leaky_relu, dropout=config.dropout),
                                                      nn.Linear(d_sizes[-1], 1))
        else:
            if config.coarse_dims != LAPGANConfig.coarse_dims or config.dropout != LAPGANConfig.dropout:
                raise ValueError("coarse_dims and dropout apply to the mlp coarsest GAN only")
            if config.coarse_architecture == "conv":
                self.coarse_generator, self.coarse_discriminator = coarse_convolutional_gan(
                    config.latent_dim, self.coarse_shape, config.coarse_channels)
            else:
                self.coarse_generator, self.coarse_discriminator = coarse_radford_gan(
                    config.latent_dim, self.coarse_shape, config.coarse_channels, config.extra_convs,
                    config.coarse_full_size_convs)
        sizes = [(spec.height // 2**k, spec.width // 2**k) for k in range(config.levels - 2, -1, -1)]  # coarse -> fine
        self.sizes = sizes
        self.residual_generators = nn.ModuleList(ResidualGenerator(c, config.residual_channels, config.extra_convs)
                                                 for _ in sizes)
        self.residual_discriminators = nn.ModuleList(
            residual_discriminator(c, config.residual_channels, size, config.extra_convs) for size in sizes
        )
        self.generator_average = average_of(self.trained_generators(), config.generator_average)

    def trained_generators(self) -> nn.ModuleList:
        """The trained generators of every level, coarse to fine (a view, not a registered module)."""
        return nn.ModuleList([self.coarse_generator, *self.residual_generators])

    def discriminators(self) -> nn.ModuleList:
        """Every level's discriminator, coarse to fine (a view, not a registered module)."""
        return nn.ModuleList([self.coarse_discriminator, *self.residual_discriminators])

    @property
    def data_format(self) -> DataFormat:
        return DataFormat(value_range="symmetric")

    # A "pyramid sample" travels through the adversarial iteration packed into one tensor per image:
    # [I_K, (l, h) for each finer level], flattened and concatenated.
    def pack(self, coarse: torch.Tensor, pairs: list[tuple[torch.Tensor, torch.Tensor]]) -> torch.Tensor:
        parts = [coarse.flatten(1)] + [torch.cat([condition, residual], dim=1).flatten(1) for condition, residual in pairs]
        return torch.cat(parts, dim=1)

    def unpack(self, packed: torch.Tensor):
        c = self.spec.channels
        sizes = [self.coarse_shape[1] * self.coarse_shape[2] * c] + [2 * c * h * w for h, w in self.sizes]
        parts = packed.split(sizes, dim=1)
        coarse = parts[0].view(-1, *self.coarse_shape)
        pairs = [part.view(-1, 2 * c, h, w) for part, (h, w) in zip(parts[1:], self.sizes, strict=True)]
        return coarse, pairs

    def discriminate(self, packed: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """Packed pyramids -> logits (B, levels), one per level's discriminator."""
        coarse, pairs = self.unpack(packed)
        logits = [self.coarse_discriminator(coarse.flatten(1))]
        logits += [d(pair) for d, pair in zip(self.residual_discriminators, pairs, strict=True)]
        return torch.cat(logits, dim=1)

    def _noise(self, shape, generator):
        return torch.randn(shape, generator=generator, device=next(self.parameters()).device)

    def _real_and_fake(self, images: torch.Tensor, generator: torch.Generator, *, training: bool):
        coarse, residuals = laplacian_pyramid(images, self.config.levels)
        coarse_generator, *residual_generators = self.generators(training)
        real_pairs, fake_pairs, level = [], [], coarse
        for residual, g in zip(residuals, residual_generators, strict=True):
            condition = upsample(level)  # l_k from the real coarser image
            noise = self._noise((len(images), 1, *condition.shape[2:]), generator)
            real_pairs.append((condition, residual))
            fake_pairs.append((condition, g(condition, noise)))
            level = condition + residual
        fake_coarse = coarse_generator(self._noise((len(images), self.config.latent_dim), generator))
        return self.pack(coarse, real_pairs), self.pack(fake_coarse.view(-1, *self.coarse_shape), fake_pairs)

    def configure_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return adam_pair(
            self.config,
            [*self.coarse_generator.parameters(), *self.residual_generators.parameters()],
            [*self.coarse_discriminator.parameters(), *self.residual_discriminators.parameters()],
        )

    def train_step(self, batch: Batch, optimizers, *, generator: torch.Generator) -> Metrics:
        real, fake = self._real_and_fake(batch.images, generator, training=True)
        metrics = adversarial_iteration(self.config, self.discriminate, optimizers, real=real, fake=fake,
                                        joint_batch=not mixes_batch(self.discriminators()),
                                        r1_columns=slice(0, 1) if self.config.r1_levels == "coarsest" else None)
        self.update_generator_average()
        return metrics

    def evaluate_step(self, batch: Batch, *, generator: torch.Generator) -> Metrics:
        real, fake = self._real_and_fake(batch.images, generator, training=False)
        return adversarial_evaluation(self.config, self.discriminate, self.discriminators(), real=real, fake=fake)

    @torch.no_grad()
    def sample_pyramid(self, num: int, generator: torch.Generator | None = None) -> list[torch.Tensor]:
        """The cascade from coarse to fine: [I_K, I_{K-1}, ..., I_0], each in [-1, 1]."""
        coarse_generator, *residual_generators = self.generators(training=False)
        level = coarse_generator(self._noise((num, self.config.latent_dim), generator)).view(-1, *self.coarse_shape)
        steps = [level]
        for g in residual_generators:
            condition = upsample(level)
            level = condition + g(condition, self._noise((num, 1, *condition.shape[2:]), generator))
            steps.append(level)
        return steps

    @torch.no_grad()
    def sample(self, num: int, *, labels: torch.Tensor | None = None, generator: torch.Generator | None = None):
        return to_unit_range(self.sample_pyramid(num, generator)[-1], self.data_format)

    def preview(self, batch: Batch, *, generator: torch.Generator) -> torch.Tensor:
        return self.sample(len(batch), generator=generator)
