"""Variational autoencoder (Kingma & Welling 2014), MLP or convolutional, and its conditional form
(Sohn et al. 2015): the label conditions both encoder and decoder.

The encoder outputs the mean and log-variance of q(z|x); a sample z = mu + sigma * eps is decoded
into the parameters of p(x|z) (Bernoulli logits, or a Gaussian mean of fixed variance). Training
minimises the negative ELBO, -E_q[log p(x|z)] + kl_weight * KL(q(z|x) || N(0, I)), in nats per image.
"""

from __future__ import annotations

import math
import typing
from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from ..config import Between, Channels, NonNegative, NonNegativeCount, Rate, Size, Validated
from ..data import Batch, DataFormat, DataSpec
from .base import GenerativeModel, ImportanceSampled, LatentCodec, Metrics, Sampler
from .layers import (
    ImageDecoder,
    ImageEncoder,
    adam,
    bernoulli_log_likelihood,
    bernoulli_nll,
    gaussian_kl,
    gaussian_nll,
    one_hot,
    reparameterize,
)


@dataclass(frozen=True)
class VAEConfig(Validated):
    architecture: Literal["conv", "mlp"] = "conv"
    conv_channels: tuple[Channels, ...] = (32, 64)  # one stride-2 3x3 conv per entry (conv only)
    hidden_dims: tuple[Size, ...] = (16,)  # encoder: dense layers between image features and q(z|x)
    # Decoder: dense layers from z to the first feature map (conv) or the pixels (MLP). Keras' conv
    # VAE has none (Dense(7*7*64) straight from z); a 16-unit bottleneck here slows learning a lot
    # (test loss 170.9 vs 160.6 nats after 3 epochs on MNIST).
    decoder_hidden_dims: tuple[Size, ...] = ()
    batch_norm: bool = False  # batch norm after every conv / dense layer but the heads
    latent_dim: Size = 2  # 2 gives the lectures' latent maps and manifold grids
    conditional: bool = False  # condition encoder and decoder on the one-hot label (CVAE)
    likelihood: Literal["bernoulli", "gaussian"] = "bernoulli"  # BCE or MSE reconstruction term
    gaussian_std: Rate = 0.7071  # fixed std of p(x|z) when gaussian; 1/sqrt(2) = Keras' 'mse * 784'
    kl_weight: NonNegative = 1.0  # beta in front of the KL term (1 is the true ELBO)
    # KL warm-up: the KL weight rises linearly from 0 to kl_weight over this many training steps
    # (Sonderby et al. 2016), so that fewer latent units collapse onto the prior early; 0 = off.
    kl_warmup_steps: NonNegativeCount = 0
    epsilon_sigma: NonNegative = 1.0  # std of eps in the reparameterisation (Keras 'epsilon_std')
    binarize: Literal["none", "dynamic", "static"] = "none"  # grey levels, as the Keras examples
    learning_rate: Rate = 1e-3  # Adam; the Keras examples' default
    # Training bound: the ELBO, or the importance-weighted bound IWAE_k (Burda et al. 2016) with
    # k = importance_samples, which is tighter and is how the published VAE figures are beaten.
    objective: Literal["elbo", "iwae"] = "elbo"
    importance_samples: typing.Annotated[int, Between(1, 100_000)] = 50  # k of the IWAE objective (Burda et al.'s best: 50)


PRESETS = {
    # keras.io "Variational AutoEncoder": Conv(32, s2) -> Conv(64, s2) -> Dense(16) -> z (2-D).
    "keras-strided": VAEConfig(),
    # The lectures' Keras conv VAE: filters [8, 16], batch norm, Dense(16), 2-D latent.
    "lecture-bn": VAEConfig(conv_channels=(8, 16), batch_norm=True),
    # For 64x64 RGB folders (the seeds' face examples): four stride-2 convolutions 64 -> 4, a
    # 128-D latent. Use with --set data.image_size=64 --set data.channels=3.
    "conv-64": VAEConfig(conv_channels=(32, 64, 128, 256), hidden_dims=(256,), latent_dim=128),
    # The lectures' MLP VAE 784-64-2.
    "mlp-64": VAEConfig(architecture="mlp", hidden_dims=(64,), decoder_hidden_dims=(64,)),
}


LOG_2PI = math.log(2 * math.pi)


class VAE(GenerativeModel, Sampler, LatentCodec, ImportanceSampled):
    """VAE / CVAE. ``config.conditional`` makes it a conditional VAE on the dataset's labels."""

    few_classes_hint = (" (decodings of the prior blend classes early in training and in small latent spaces; "
                        "more epochs or a larger latent_dim help)")

    def __init__(self, config: VAEConfig, spec: DataSpec):
        super().__init__(config, spec)
        if config.conditional and spec.num_classes < 2:
            raise ValueError("a conditional VAE needs a labelled dataset (2 classes or more)")
        if config.objective == "iwae" and (config.kl_weight != 1 or config.epsilon_sigma != 1):
            raise ValueError("objective=iwae is a bound on log p(x): it needs kl_weight=1 and epsilon_sigma=1")
        if config.kl_warmup_steps and config.objective == "iwae":
            raise ValueError("objective=iwae is a bound on log p(x): it needs kl_warmup_steps=0")
        self.conditional = config.conditional
        self.latent_dim = config.latent_dim
        conv_channels = config.conv_channels if config.architecture == "conv" else ()
        condition_dim = spec.num_classes if config.conditional else 0
        shared = dict(conv_channels=conv_channels, condition_dim=condition_dim, batch_norm=config.batch_norm)
        self.encoder = ImageEncoder(spec, hidden_dims=config.hidden_dims, **shared)
        self.to_mean = nn.Linear(self.encoder.out_features, config.latent_dim)
        self.to_log_var = nn.Linear(self.encoder.out_features, config.latent_dim)
        self.decoder = ImageDecoder(
            spec, latent_dim=config.latent_dim, hidden_dims=config.decoder_hidden_dims, **shared
        )
        self.register_buffer("updates", torch.zeros((), dtype=torch.int64))  # drives the KL warm-up

    @property
    def data_format(self) -> DataFormat:
        return DataFormat(value_range="unit", binarize=self.config.binarize)

    def _condition(self, labels: torch.Tensor | None, num: int) -> torch.Tensor | None:
        return one_hot(self.check_labels(labels, num), self.spec.num_classes)

    def posterior(self, images: torch.Tensor, labels: torch.Tensor | None = None):
        """q(z|x): returns ``(mean, log_var)``, each (B, latent_dim)."""
        hidden = self.encoder(images, self._condition(labels, len(images)))
        return self.to_mean(hidden), self.to_log_var(hidden)

    def decoder_logits(self, latents: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """The decoder's pre-sigmoid output (B, C, H, W) for codes (B, latent_dim)."""
        return self.decoder(latents, self._condition(labels, len(latents)))

    def reconstruction_nll(self, logits: torch.Tensor, images: torch.Tensor) -> torch.Tensor:
        """-log p(x|z) per image in nats."""
        if self.config.likelihood == "bernoulli":
            return bernoulli_nll(logits, images)
        return gaussian_nll(torch.sigmoid(logits), images, self.config.gaussian_std)

    def log_importance_weights(self, images, labels, *, num_samples: int, generator) -> torch.Tensor:
        """log p(x|z) + log p(z) - log q(z|x) for ``num_samples`` draws z ~ q(z|x): (K, B) nats."""
        mean, log_var = self.posterior(images, labels)  # (B, D) each
        eps = torch.randn((num_samples, *mean.shape), generator=generator, device=mean.device, dtype=mean.dtype)
        latents = mean + torch.exp(0.5 * log_var) * eps  # (K, B, D)
        log_q = -0.5 * (eps.pow(2) + log_var + LOG_2PI).sum(-1)  # (K, B)
        log_prior = -0.5 * (latents.pow(2) + LOG_2PI).sum(-1)  # (K, B)
        repeated_labels = None if labels is None else labels.repeat(num_samples)
        logits = self.decoder_logits(latents.flatten(0, 1), repeated_labels)  # (K*B, D) -> (K*B, C, H, W)
        if self.config.likelihood == "bernoulli":
            log_likelihood = bernoulli_log_likelihood(logits.view(num_samples, *images.shape), images)  # (K, B)
        else:
            repeated_images = images.repeat(num_samples, *([1] * (images.dim() - 1)))  # k-major, as latents
            log_likelihood = -self.reconstruction_nll(logits, repeated_images).view(num_samples, -1)  # (K, B)
        return log_likelihood + log_prior - log_q

    def loss_terms(self, batch: Batch, generator: torch.Generator | None) -> Metrics:
        """Per-batch means of the loss and its parts: the reconstruction and KL terms of the
        (weighted) ELBO, or the IWAE bound."""
        if self.config.objective == "iwae":
            k = self.config.importance_samples
            weights = self.log_importance_weights(batch.images, batch.labels, num_samples=k, generator=generator)
            loss = -(torch.logsumexp(weights, dim=0) - math.log(k)).mean()
            return {"loss": loss, "neg_elbo": -weights.mean()}
        mean, log_var = self.posterior(batch.images, batch.labels)
        latents = reparameterize(mean, log_var, generator=generator, epsilon_sigma=self.config.epsilon_sigma)
        reconstruction = self.reconstruction_nll(self.decoder_logits(latents, batch.labels), batch.images)
        kl = gaussian_kl(mean, log_var)
        loss = (reconstruction + self.kl_weight() * kl).mean()
        return {"loss": loss, "reconstruction": reconstruction.mean(), "kl": kl.mean()}

    def kl_weight(self) -> float:
        """The KL term's weight now: ``kl_weight``, ramped up from 0 during the warm-up (in
        training only; held-out losses are always the configured objective)."""
        warmup = self.config.kl_warmup_steps
        if not self.training or not warmup:
            return self.config.kl_weight
        return self.config.kl_weight * min(1.0, (int(self.updates) + 1) / warmup)

    def configure_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"model": adam(self.parameters(), lr=self.config.learning_rate)}

    def train_step(self, batch: Batch, optimizers, *, generator: torch.Generator) -> Metrics:
        optimizer = optimizers["model"]
        terms = self.loss_terms(batch, generator)
        optimizer.zero_grad(set_to_none=True)
        terms["loss"].backward()
        optimizer.step()
        self.updates += 1
        return {name: value.detach() for name, value in terms.items()}

    def evaluate_step(self, batch: Batch, *, generator: torch.Generator) -> Metrics:
        return self.loss_terms(batch, generator)

    @torch.no_grad()
    def encode(self, images: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return self.posterior(images, labels)[0]

    @torch.no_grad()
    def decode(self, latents: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return torch.sigmoid(self.decoder_logits(latents, labels))

    @torch.no_grad()
    def sample(self, num: int, *, labels: torch.Tensor | None = None, generator: torch.Generator | None = None):
        """Decode z ~ N(0, I): the decoder's mean image (B, C, H, W) in [0, 1]."""
        device = self.to_mean.weight.device
        latents = torch.randn(num, self.latent_dim, generator=generator, device=device)
        return self.decode(latents, labels)

    def preview(self, batch: Batch, *, generator: torch.Generator) -> torch.Tensor:
        return self.sample(len(batch), labels=batch.labels if self.conditional else None, generator=generator)
