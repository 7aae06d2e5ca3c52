"""Autoencoder and denoising autoencoder (Vincent et al. 2008).

A deterministic encoder to a ``latent_dim`` code and a decoder back, trained to reproduce the clean
image. With ``noise`` set (the ``dae`` preset) the encoder sees a corrupted image: salt noise sets
random pixels to the maximum intensity, as in the lectures; gaussian adds clipped N(0, level^2).
Reconstruction loss is summed over pixels per image (nats for ``bce``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from ..config import Channels, NonNegative, Rate, Size, Validated
from ..data import Batch, DataSpec, add_noise
from ..images import PREVIEW_COLUMNS, interleave_rows
from .base import Denoiser, GenerativeModel, LatentCodec, Metrics
from .layers import ImageDecoder, ImageEncoder, adam, bernoulli_nll


@dataclass(frozen=True)
class AutoencoderConfig(Validated):
    architecture: Literal["dense", "conv"] = "dense"
    conv_channels: tuple[Channels, ...] = (32, 64)  # one stride-2 3x3 conv per entry (conv only)
    hidden_dims: tuple[Size, ...] = (256,)  # dense layers between image features and the code
    batch_norm: bool = False
    latent_dim: Size = 32  # 2 for dimension reduction / the latent map
    reconstruction_loss: Literal["bce", "mse"] = "bce"  # summed over pixels
    noise: Literal["none", "salt", "gaussian"] = "none"  # input corruption (denoising)
    noise_level: NonNegative = 0.0  # salt: fraction of pixels set to 1; gaussian: std
    learning_rate: Rate = 1e-3  # Adam


PRESETS = {
    "dense": AutoencoderConfig(),
    # Two-dimensional code for dimension reduction (plot it with `genzoo plot RUN latent`).
    "dense-2d": AutoencoderConfig(hidden_dims=(512, 128), latent_dim=2),
    "conv": AutoencoderConfig(architecture="conv", hidden_dims=(), latent_dim=32),
}

DENOISING_PRESETS = {
    "salt": AutoencoderConfig(architecture="conv", hidden_dims=(), noise="salt", noise_level=0.2),
    "gaussian": AutoencoderConfig(architecture="conv", hidden_dims=(), noise="gaussian", noise_level=0.5),
}


class Autoencoder(GenerativeModel, LatentCodec, Denoiser):
    """Autoencoder; with ``config.noise`` a denoising autoencoder."""

    def __init__(self, config: AutoencoderConfig, spec: DataSpec):
        super().__init__(config, spec)
        if config.noise != "none" and config.noise_level <= 0:
            raise ValueError(f"noise={config.noise!r} needs a positive noise_level")
        self.latent_dim = config.latent_dim
        conv_channels = config.conv_channels if config.architecture == "conv" else ()
        shared = dict(conv_channels=conv_channels, batch_norm=config.batch_norm)
        self.encoder = ImageEncoder(spec, hidden_dims=config.hidden_dims, **shared)
        self.to_code = nn.Linear(self.encoder.out_features, config.latent_dim)
        # The decoder mirrors the encoder: its dense layers run in reverse order.
        self.decoder = ImageDecoder(
            spec, latent_dim=config.latent_dim, hidden_dims=tuple(reversed(config.hidden_dims)), **shared
        )

    @property
    def corruption(self) -> str:
        if self.config.noise == "none":
            return "none"
        return f"{self.config.noise} noise, level {self.config.noise_level:g}"

    def corrupt(self, images: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        return add_noise(images, self.config.noise, self.config.noise_level, generator)

    def reconstruction_loss(self, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Per-image loss of reconstructing ``targets`` from ``inputs``, summed over pixels."""
        logits = self.decoder(self.to_code(self.encoder(inputs)))
        if self.config.reconstruction_loss == "bce":
            return bernoulli_nll(logits, targets)
        return (torch.sigmoid(logits) - targets).pow(2).flatten(1).sum(1)

    def configure_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"model": adam(self.parameters(), lr=self.config.learning_rate)}

    def train_step(self, batch: Batch, optimizers, *, generator: torch.Generator) -> Metrics:
        optimizer = optimizers["model"]
        loss = self.reconstruction_loss(self.corrupt(batch.images, generator), batch.images).mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return {"loss": loss.detach()}

    def evaluate_step(self, batch: Batch, *, generator: torch.Generator) -> Metrics:
        return {"loss": self.reconstruction_loss(self.corrupt(batch.images, generator), batch.images).mean()}

    @torch.no_grad()
    def encode(self, images: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return self.to_code(self.encoder(images))

    @torch.no_grad()
    def decode(self, latents: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return torch.sigmoid(self.decoder(latents))

    def preview(self, batch: Batch, *, generator: torch.Generator) -> torch.Tensor:
        """Inputs (corrupted, for a denoiser) over their reconstructions, in alternating rows."""
        inputs = self.corrupt(batch.images[: len(batch) // 2], generator)
        return interleave_rows(inputs, self.reconstruct(inputs), row_length=PREVIEW_COLUMNS)

