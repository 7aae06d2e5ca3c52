"""The contract every genzoo model follows, and the optional capabilities a model can declare.

The training loop knows only :class:`GenerativeModel`: it asks the model for its optimizers, hands
it batches, and records the scalar metrics it returns. A GAN returns two optimizers and plays both
players inside ``train_step``; an RBM returns an optimizer whose gradients it fills in by
contrastive divergence instead of backprop; DRAW is an ordinary single-loss model. Nothing in the
loop branches on which kind of model it trains.

Capabilities (sampling, encoding/decoding, denoising) are small abstract classes a model inherits
beside :class:`GenerativeModel`; plots and commands check for them with ``isinstance``.
"""

from __future__ import annotations

import abc
from typing import Any

import torch
from torch import nn

from ..data import Batch, DataFormat, DataSpec

Metrics = dict[str, torch.Tensor]  # scalar (0-d) tensors, detached


class GenerativeModel(nn.Module, abc.ABC):
    """Abstract base of every model.

    Subclasses take ``(config, spec)``: their frozen config dataclass and the :class:`DataSpec` of
    the data (image shape, number of classes). All state that must survive a save/load round
    trip lives in parameters and registered buffers.
    """

    conditional: bool = False  # True for models that need a label per image (set per instance)
    # Why samples may cover few classes, for the per-epoch warning (each family says its own).
    few_classes_hint: str = ""

    def __init__(self, config: Any, spec: DataSpec):
        super().__init__()
        self.config = config
        self.spec = spec

    @property
    def data_format(self) -> DataFormat:
        """How this model wants its pixels (value range, binarisation)."""
        return DataFormat()

    @abc.abstractmethod
    def configure_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        """The model's optimizers by name (``{"model": Adam(...)}``, or generator/discriminator)."""

    @abc.abstractmethod
    def train_step(
        self, batch: Batch, optimizers: dict[str, torch.optim.Optimizer], *, generator: torch.Generator
    ) -> Metrics:
        """One update on ``batch``. Returns detached scalar metrics; ``"loss"`` is required and is
        the quantity whose divergence (NaN/inf) stops training."""

    @abc.abstractmethod
    def evaluate_step(self, batch: Batch, *, generator: torch.Generator) -> Metrics:
        """Held-out metrics on ``batch`` (called under ``torch.no_grad()`` in eval mode); batch
        means, which the loop averages weighted by batch size. Must include ``"loss"``."""

    @abc.abstractmethod
    def preview(self, batch: Batch, *, generator: torch.Generator) -> torch.Tensor:
        """The images of the per-epoch progress grid, (N, C, H, W) in [0, 1]. ``batch`` is a fixed
        set of test images with balanced labels and ``generator`` is re-seeded identically every
        epoch, so the grids show one set of latents evolving."""

    def shipped_state(self, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """The part of ``state`` (this model's state dict) that a shipped model (the zoo) needs to
        sample and be evaluated: all of it, unless a model says otherwise."""
        return state

    def complete_state(self, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """A full state dict from a shipped one (the inverse of :meth:`shipped_state`)."""
        return state

    def check_labels(self, labels: torch.Tensor | None, num: int) -> torch.Tensor | None:
        """Validate the labels a conditional model needs (and an unconditional one ignores)."""
        if not self.conditional:
            return None
        if labels is None:
            raise ValueError(f"{type(self).__name__} is conditional: labels are required")
        if labels.shape != (num,):
            raise ValueError(f"expected {num} labels, got shape {tuple(labels.shape)}")
        if labels.numel() and (labels.min() < 0 or labels.max() >= self.spec.num_classes):
            raise ValueError(f"labels must lie in [0, {self.spec.num_classes - 1}]")
        return labels


class Sampler(abc.ABC):
    """A model that draws new images. Sampling, like encoding, decoding and inpainting, runs
    without autograd: its tensors are plain values (``.numpy()`` works)."""

    @abc.abstractmethod
    def sample(
        self, num: int, *, labels: torch.Tensor | None = None, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """Draw ``num`` images, (num, C, H, W) in [0, 1]. Conditional models need ``labels`` (num,)."""


class LatentCodec(abc.ABC):
    """A model with an encoder to a ``latent_dim``-dimensional code and a decoder back."""

    latent_dim: int

    @abc.abstractmethod
    def encode(self, images: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """Model-format images (B, C, H, W) -> codes (B, latent_dim) (the mean code for VAEs)."""

    @abc.abstractmethod
    def decode(self, latents: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """Codes (B, latent_dim) -> images (B, C, H, W) in [0, 1] (the decoder's mean)."""

    @torch.no_grad()
    def reconstruct(self, images: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return self.decode(self.encode(images, labels), labels)


class Denoiser(abc.ABC):
    """A model trained to undo a corruption of its input."""

    @property
    @abc.abstractmethod
    def corruption(self) -> str:
        """What the training corruption is ("salt noise, level 0.2"), or "none"."""

    @abc.abstractmethod
    def corrupt(self, images: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        """The training corruption applied to model-format images."""


class ImportanceSampled(abc.ABC):
    """A latent-variable model with an approximate posterior q(z|x): its log-likelihood can be
    bounded (ELBO, IWAE) and estimated by importance sampling (Burda et al. 2016)."""

    @abc.abstractmethod
    def log_importance_weights(
        self,
        images: torch.Tensor,
        labels: torch.Tensor | None,
        *,
        num_samples: int,
        generator: torch.Generator | None,
    ) -> torch.Tensor:
        """log w_k = log p(x, z_k) - log q(z_k | x) for z_k ~ q(z | x), k = 1..num_samples.

        ``images`` (B, C, H, W) in the model's format; returns (num_samples, B) in nats. For a
        conditional model every term is conditioned on the label."""


class Inpainter(abc.ABC):
    """A model that fills a masked region of an image from its context."""

    @abc.abstractmethod
    def make_mask(self, num: int, kind: str, generator: torch.Generator | None = None) -> torch.Tensor:
        """Masks (num, 1, H, W), 1.0 where pixels are missing. ``kind``: "centre" or "random"."""

    @abc.abstractmethod
    def inpaint(self, images: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Model-format images (B, C, H, W) with the masked region filled in, as [0, 1] images; the
        pixels outside the mask are the input's."""


class PartitionFunctionModel(abc.ABC):
    """An undirected model: its log-likelihood is -F(v) - log Z, with log Z estimated by annealed
    importance sampling (Salakhutdinov & Murray 2008)."""

    @abc.abstractmethod
    def ais_log_partition(
        self, *, num_chains: int, num_steps: int, generator: torch.Generator | None, runs: int = 1,
        progress: bool = False,
    ) -> dict[str, float]:
        """log Z by AIS from the model's base-rate model: ``runs`` independent runs of ``num_chains``
        chains through ``num_steps`` intermediate distributions (see
        :func:`~genzoo.models.boltzmann.ais_result` for the keys)."""

    @abc.abstractmethod
    def estimate_log_likelihood(
        self, images: torch.Tensor, *, num_chains: int, num_steps: int, generator: torch.Generator | None,
        runs: int = 1, progress: bool = False,
    ) -> dict:
        """Mean test log-likelihood terms for binary ``images`` (B, C, H, W), with log Z from
        ``runs`` independent runs of its estimator (``log_z_estimator``: AIS of ``num_chains``
        chains, or the bridge of :func:`~genzoo.models.boltzmann.hidden_log_partition`): ``nll``
        (nats per image, all runs pooled) with its ``nll_low`` / ``nll_high`` interval,
        ``nll_run_mean`` / ``nll_run_std`` over the runs, ``log_z`` and the counts (see
        :func:`~genzoo.models.boltzmann.likelihood_report`)."""


class VisibleFilters(abc.ABC):
    """A model whose first layer's weights can be shown as images (Boltzmann machines)."""

    @abc.abstractmethod
    def visible_filters(self) -> torch.Tensor:
        """(hidden units, C*H*W) weights of the first hidden layer."""
