"""Context encoder for inpainting (Pathak et al. 2016): an encoder-decoder sees an image with a
region removed and fills it in, trained with a masked L2 reconstruction loss plus an adversarial
loss, weighted 0.999 / 0.001 as in the paper (sec. 3.3).

Differences from the paper, for 28x28 images: the hole is a 14x14 square (half the side, as the
paper's 64 of 128) in the centre or at a random place; the mask is given to the encoder as an
extra channel, so that random holes can be found; the discriminator judges the whole composite
image (the input outside the hole, the prediction inside), which works for both kinds of hole.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from ..config import Channels, NonNegative, Size
from ..data import Batch, DataFormat, DataSpec, to_unit_range
from ..images import PREVIEW_COLUMNS, interleave_rows
from .adversarial import (
    AdversarialTraining,
    adam_pair,
    adversarial_evaluation,
    adversarial_iteration,
)
from .base import GenerativeModel, Inpainter, Metrics
from .dcgan import init_weights, radford_discriminator
from .layers import leaky_relu


@dataclass(frozen=True)
class ContextEncoderConfig(AdversarialTraining):
    mask: Literal["centre", "random"] = "centre"  # where the hole is during training
    mask_size: Size = 14  # side of the square hole, in pixels
    channels: tuple[Channels, Channels] = (64, 128)  # the encoder's two stride-2 convs; the decoder mirrors them
    bottleneck: Size = 512  # the code between encoder and decoder
    discriminator_channels: Channels = 64
    reconstruction_weight: NonNegative = 0.999  # Pathak et al. 2016
    adversarial_weight: NonNegative = 0.001


def square_masks(num: int, height: int, width: int, size: int, kind: str, generator, device) -> torch.Tensor:
    """(num, 1, H, W) masks with a ``size`` x ``size`` square of ones, centred or at random."""
    if kind == "centre":
        top = torch.full((num,), (height - size) // 2, device=device)
        left = torch.full((num,), (width - size) // 2, device=device)
    elif kind == "random":
        top = torch.randint(0, height - size + 1, (num,), generator=generator, device=device)
        left = torch.randint(0, width - size + 1, (num,), generator=generator, device=device)
    else:
        raise ValueError(f"unknown mask kind {kind!r}; expected centre or random")
    rows = torch.arange(height, device=device).view(1, height, 1)
    cols = torch.arange(width, device=device).view(1, 1, width)
    inside = ((rows >= top.view(-1, 1, 1)) & (rows < top.view(-1, 1, 1) + size)
              & (cols >= left.view(-1, 1, 1)) & (cols < left.view(-1, 1, 1) + size))  # (N, H, W)
    return inside.unsqueeze(1).float()


def mean_fill(images: torch.Tensor, mask: torch.Tensor, ring: int = 2) -> torch.Tensor:
    """The baseline: fill the hole with the mean of the pixels within ``ring`` pixels around it."""
    grown = nn.functional.max_pool2d(mask, kernel_size=2 * ring + 1, stride=1, padding=ring)
    border = grown - mask  # (B, 1, H, W), 1 on the ring
    mean = (images * border).sum((2, 3), keepdim=True) / border.sum((2, 3), keepdim=True).clamp(min=1)
    return images * (1 - mask) + mean * mask


class ContextEncoder(GenerativeModel, Inpainter):
    def __init__(self, config: ContextEncoderConfig, spec: DataSpec):
        super().__init__(config, spec)
        if spec.height % 4 or spec.width % 4:
            raise ValueError(f"context-encoder needs image sides that are multiples of 4, not {spec.height}x{spec.width}")
        if not 0 < config.mask_size < min(spec.height, spec.width):
            raise ValueError(f"mask_size must be between 1 and {min(spec.height, spec.width) - 1}")
        c1, c2 = config.channels
        h, w = spec.height // 4, spec.width // 4
        self.encoder = nn.Sequential(
            nn.Conv2d(spec.channels + 1, c1, kernel_size=4, stride=2, padding=1),  # image + mask channel
            leaky_relu(),
            nn.Conv2d(c1, c2, kernel_size=4, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(c2, momentum=0.1),
            leaky_relu(),
            nn.Flatten(),
            nn.Linear(c2 * h * w, config.bottleneck),
            leaky_relu(),
        )
        self.decoder = nn.Sequential(
            nn.Linear(config.bottleneck, c2 * h * w, bias=False),
            nn.Unflatten(1, (c2, h, w)),  # (B, c2*h*w) -> (B, c2, h, w)
            nn.BatchNorm2d(c2, momentum=0.1),
            nn.ReLU(),
            nn.ConvTranspose2d(c2, c1, kernel_size=4, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(c1, momentum=0.1),
            nn.ReLU(),
            nn.ConvTranspose2d(c1, spec.channels, kernel_size=4, stride=2, padding=1),
            nn.Tanh(),
        )
        self.discriminator = radford_discriminator(spec, config.discriminator_channels)
        self.apply(init_weights)

    @property
    def data_format(self) -> DataFormat:
        return DataFormat(value_range="symmetric")

    def make_mask(self, num: int, kind: str, generator: torch.Generator | None = None) -> torch.Tensor:
        device = next(self.parameters()).device
        return square_masks(num, self.spec.height, self.spec.width, self.config.mask_size, kind, generator, device)

    def fill(self, images: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Model-format images -> the composite in [-1, 1]: the input outside the hole, the
        decoder's prediction inside. The hole is blanked (0, mid-grey) before encoding."""
        blanked = images * (1 - mask)
        prediction = self.decoder(self.encoder(torch.cat([blanked, mask], dim=1)))
        return blanked + prediction * mask

    @torch.no_grad()
    def inpaint(self, images: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return to_unit_range(self.fill(images, mask), self.data_format)

    def discriminate(self, images: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return self.discriminator(images).squeeze(1)

    def reconstruction_loss(self, composite: torch.Tensor, images: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Mean squared error over the missing pixels."""
        return ((composite - images).pow(2) * mask).sum() / (mask.sum() * images.shape[1])

    def configure_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        generator_params = [*self.encoder.parameters(), *self.decoder.parameters()]
        return adam_pair(self.config, generator_params, self.discriminator.parameters())

    def train_step(self, batch: Batch, optimizers, *, generator: torch.Generator) -> Metrics:
        mask = self.make_mask(len(batch), self.config.mask, generator)
        composite = self.fill(batch.images, mask)
        reconstruction = self.reconstruction_loss(composite, batch.images, mask)
        metrics = adversarial_iteration(
            self.config, self.discriminate, optimizers, real=batch.images, fake=composite,
            extra_generator_loss=self.config.reconstruction_weight * reconstruction,
            adversarial_weight=self.config.adversarial_weight,
        )
        return {**metrics, "reconstruction": reconstruction.detach()}

    def evaluate_step(self, batch: Batch, *, generator: torch.Generator) -> Metrics:
        mask = self.make_mask(len(batch), self.config.mask, generator)
        composite = self.fill(batch.images, mask)
        reconstruction = self.reconstruction_loss(composite, batch.images, mask)
        metrics = adversarial_evaluation(self.config, self.discriminate, self.discriminator, real=batch.images,
                                         fake=composite,
                                         extra_generator_loss=self.config.reconstruction_weight * reconstruction,
                                         adversarial_weight=self.config.adversarial_weight)
        return {**metrics, "reconstruction": reconstruction}

    def preview(self, batch: Batch, *, generator: torch.Generator) -> torch.Tensor:
        """Rows of masked inputs, their inpainting, and the originals."""
        images = batch.images[: (len(batch) // 3 // PREVIEW_COLUMNS) * PREVIEW_COLUMNS]
        mask = self.make_mask(len(images), self.config.mask, generator)
        masked = to_unit_range(images * (1 - mask), self.data_format)
        return interleave_rows(masked, self.inpaint(images, mask), to_unit_range(images, self.data_format),
                               row_length=PREVIEW_COLUMNS)
