"""DRAW: a recurrent variational autoencoder that writes an image onto a canvas over T steps,
reading from the image and writing to the canvas through Gaussian-filterbank attention
(Gregor, Danihelka, Graves, Rezende & Wierstra 2015).

At each step t = 1..T (eqs. 3-8 of the paper):

    x_hat = x - sigmoid(c_{t-1})                          the error image
    r_t   = read(x, x_hat, h_dec_{t-1})                   attention: an N x N glimpse of each
    h_enc = LSTM_enc([r_t, h_dec_{t-1}])
    z_t   ~ q(z_t | h_enc) = N(mu_t, sigma_t^2)
    h_dec = LSTM_dec(z_t)
    c_t   = c_{t-1} + write(h_dec)                        attention: an N x N patch, placed

The loss is the negative ELBO in nats: -log p(x | sigmoid(c_T)) (Bernoulli) + sum_t KL(q(z_t) || N(0, I)).
Without attention, read is [x, x_hat] and write a linear map to the whole image.
"""

from __future__ import annotations

import math
import typing
from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from ..config import Between, Rate, Size, Validated
from ..data import Batch, DataFormat, DataSpec
from .base import GenerativeModel, ImportanceSampled, Metrics, Sampler
from .layers import adam, bernoulli_nll, gaussian_kl

LOG_2PI = math.log(2 * math.pi)


@dataclass(frozen=True)
class DRAWConfig(Validated):
    steps: typing.Annotated[int, Between(1, 1000)] = 16  # T; Gregor et al. use 64 on MNIST (4x the compute)
    encoder_size: Size = 256  # LSTM units (the paper's MNIST setting)
    decoder_size: Size = 256
    latent_dim: Size = 100  # z_t per step (the paper: 100)
    attention: bool = True  # Gaussian filterbank read and write; False: the whole image
    read_size: typing.Annotated[int, Between(1, 64)] = 2  # N of the read glimpse (the paper: 2 x 2 on MNIST)
    write_size: typing.Annotated[int, Between(1, 64)] = 5  # N of the write patch (the paper: 5 x 5)
    learning_rate: Rate = 1e-3  # Adam
    max_grad_norm: Rate = 10.0  # gradient clipping, for the LSTMs' occasional spikes
    binarize: Literal["dynamic", "static", "none"] = "dynamic"  # the paper's MNIST is binarised


def filterbank(params: torch.Tensor, size: int, height: int, width: int):
    """Attention parameters (B, 5) from a linear layer -> (F_y (B, N, H), F_x (B, N, W), gamma (B,),
    centre (B, 2), stride (B,)) by eqs. 19-25: centre g, stride delta, variance sigma^2, intensity gamma."""
    g_x_raw, g_y_raw, log_variance, log_stride, log_gamma = params.unbind(1)
    g_x = (width + 1) / 2 * (g_x_raw + 1)
    g_y = (height + 1) / 2 * (g_y_raw + 1)
    stride = (max(height, width) - 1) / max(size - 1, 1) * torch.exp(log_stride)
    variance = torch.exp(log_variance)
    offsets = torch.arange(size, device=params.device, dtype=params.dtype) - size / 2 + 0.5  # (N,)
    mu_x = g_x[:, None] + offsets * stride[:, None]  # (B, N)
    mu_y = g_y[:, None] + offsets * stride[:, None]
    a = torch.arange(width, device=params.device, dtype=params.dtype)
    b = torch.arange(height, device=params.device, dtype=params.dtype)
    f_x = torch.exp(-(a - mu_x[..., None]) ** 2 / (2 * variance[:, None, None]))  # (B, N, W)
    f_y = torch.exp(-(b - mu_y[..., None]) ** 2 / (2 * variance[:, None, None]))  # (B, N, H)
    f_x = f_x / f_x.sum(-1, keepdim=True).clamp(min=1e-8)
    f_y = f_y / f_y.sum(-1, keepdim=True).clamp(min=1e-8)
    return f_y, f_x, torch.exp(log_gamma), torch.stack([g_x, g_y], 1), stride


class DRAW(GenerativeModel, Sampler, ImportanceSampled):
    few_classes_hint = ' (early in training the canvas stays near the mean image)'

    def __init__(self, config: DRAWConfig, spec: DataSpec):
        super().__init__(config, spec)
        c, self.image_size = spec.channels, spec.num_pixels
        read_dim = 2 * c * config.read_size**2 if config.attention else 2 * spec.num_pixels
        self.encoder = nn.LSTMCell(read_dim + config.decoder_size, config.encoder_size)
        self.decoder = nn.LSTMCell(config.latent_dim, config.decoder_size)
        self.to_posterior = nn.Linear(config.encoder_size, 2 * config.latent_dim)  # mu, log sigma
        write_dim = c * config.write_size**2 if config.attention else spec.num_pixels
        self.to_write = nn.Linear(config.decoder_size, write_dim)
        if config.attention:
            self.to_read_params = nn.Linear(config.decoder_size, 5)
            self.to_write_params = nn.Linear(config.decoder_size, 5)

    @property
    def data_format(self) -> DataFormat:
        return DataFormat(value_range="unit", binarize=self.config.binarize)

    # -- attention ----------------------------------------------------------------------------
    def read(self, images: torch.Tensor, error: torch.Tensor, h_dec: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) x 2 -> glimpse features (B, 2*C*N*N), or the images themselves."""
        if not self.config.attention:
            return torch.cat([images.flatten(1), error.flatten(1)], dim=1)
        f_y, f_x, gamma, _, _ = filterbank(self.to_read_params(h_dec), self.config.read_size, *images.shape[2:])
        both = torch.stack([images, error], 1)  # (B, 2, C, H, W)
        glimpse = torch.einsum("bnh,bkchw,bmw->bkcnm", f_y, both, f_x)  # F_y x F_x^T -> (B, 2, C, N, N)
        return gamma[:, None] * glimpse.flatten(1)

    def write(self, h_dec: torch.Tensor):
        """Decoder state -> canvas increment (B, C, H, W), and the write window (centre, stride)."""
        patch = self.to_write(h_dec)
        if not self.config.attention:
            return patch.view(-1, *self.spec.shape), None
        n = self.config.write_size
        f_y, f_x, gamma, centre, stride = filterbank(self.to_write_params(h_dec), n, self.spec.height, self.spec.width)
        patch = patch.view(-1, self.spec.channels, n, n)
        canvas = torch.einsum("bnh,bcnm,bmw->bchw", f_y, patch, f_x)  # F_y^T w F_x -> (B, C, H, W)
        return canvas / gamma[:, None, None, None], (centre, stride)

    # -- the recurrence -----------------------------------------------------------------------
    def _initial_state(self, batch: int, device):
        zeros = lambda size: torch.zeros(batch, size, device=device)  # noqa: E731
        c = self.config
        return (zeros(c.encoder_size), zeros(c.encoder_size)), (zeros(c.decoder_size), zeros(c.decoder_size))

    def encode_decode(self, images: torch.Tensor, generator: torch.Generator | None):
        """Run the T steps on ``images``; returns (canvas logits (B, C, H, W), per-step lists of
        (mu, log_sigma, z))."""
        encoder_state, decoder_state = self._initial_state(len(images), images.device)
        canvas = torch.zeros_like(images)
        steps = []
        for _ in range(self.config.steps):
            error = images - torch.sigmoid(canvas)
            glimpse = self.read(images, error, decoder_state[0])
            encoder_state = self.encoder(torch.cat([glimpse, decoder_state[0]], dim=1), encoder_state)
            mu, log_sigma = self.to_posterior(encoder_state[0]).chunk(2, dim=1)
            eps = torch.randn(mu.shape, generator=generator, device=mu.device)
            z = mu + torch.exp(log_sigma) * eps
            decoder_state = self.decoder(z, decoder_state)
            canvas = canvas + self.write(decoder_state[0])[0]
            steps.append((mu, log_sigma, z))
        return canvas, steps

    def loss_terms(self, images: torch.Tensor, generator: torch.Generator | None) -> Metrics:
        canvas, steps = self.encode_decode(images, generator)
        reconstruction = bernoulli_nll(canvas, images)
        kl = sum(gaussian_kl(mu, 2 * log_sigma) for mu, log_sigma, _ in steps)
        return {"loss": (reconstruction + kl).mean(), "reconstruction": reconstruction.mean(), "kl": kl.mean()}

    def configure_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"model": adam(self.parameters(), lr=self.config.learning_rate)}

    def train_step(self, batch: Batch, optimizers, *, generator: torch.Generator) -> Metrics:
        optimizer = optimizers["model"]
        terms = self.loss_terms(batch.images, generator)
        optimizer.zero_grad(set_to_none=True)
        terms["loss"].backward()
        nn.utils.clip_grad_norm_(self.parameters(), self.config.max_grad_norm)
        optimizer.step()
        return {name: value.detach() for name, value in terms.items()}

    def evaluate_step(self, batch: Batch, *, generator: torch.Generator) -> Metrics:
        return self.loss_terms(batch.images, generator)

    def log_importance_weights(self, images, labels, *, num_samples: int, generator) -> torch.Tensor:
        """log p(x | z_1..T) + sum_t [log p(z_t) - log q(z_t | ...)], (K, B) nats."""
        repeated = images.repeat(num_samples, *([1] * (images.dim() - 1)))  # (K*B, C, H, W), k-major
        canvas, steps = self.encode_decode(repeated, generator)
        log_weight = -bernoulli_nll(canvas, repeated)
        for mu, log_sigma, z in steps:
            eps = (z - mu) / torch.exp(log_sigma)
            log_q = -0.5 * (eps.pow(2) + LOG_2PI).sum(1) - log_sigma.sum(1)
            log_prior = -0.5 * (z.pow(2) + LOG_2PI).sum(1)
            log_weight = log_weight + log_prior - log_q
        return log_weight.view(num_samples, -1)

    # -- generation ---------------------------------------------------------------------------
    @torch.no_grad()
    def generate(self, num: int, generator: torch.Generator | None):
        """Canvases sigmoid(c_t) (T, num, C, H, W) and write windows [(centre (num, 2), stride (num,))]."""
        device = next(self.parameters()).device
        _, decoder_state = self._initial_state(num, device)
        canvas = torch.zeros(num, *self.spec.shape, device=device)
        canvases, windows = [], []
        for _ in range(self.config.steps):
            z = torch.randn(num, self.config.latent_dim, generator=generator, device=device)
            decoder_state = self.decoder(z, decoder_state)
            increment, window = self.write(decoder_state[0])
            canvas = canvas + increment
            canvases.append(torch.sigmoid(canvas))
            windows.append(window)
        return torch.stack(canvases), windows

    @torch.no_grad()
    def sample(self, num: int, *, labels: torch.Tensor | None = None, generator: torch.Generator | None = None):
        return self.generate(num, generator)[0][-1]

    def preview(self, batch: Batch, *, generator: torch.Generator) -> torch.Tensor:
        return self.sample(len(batch), generator=generator)
