"""Batches: slices of the in-memory uint8 tensor, converted on the fly to what a model expects."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

import torch

from ..distributed import SINGLE, Group
from .datasets import ImageData

ValueRange = Literal["unit", "symmetric"]
Binarize = Literal["none", "dynamic", "static"]
NoiseKind = Literal["none", "salt", "gaussian"]


@dataclass(frozen=True)
class DataFormat:
    """How a model wants its pixels.

    ``value_range``: ``unit`` is [0, 1] (likelihood models), ``symmetric`` is [-1, 1] (tanh GANs).
    ``binarize``: ``dynamic`` draws a fresh Bernoulli image per visit (the usual protocol for
    likelihoods on binarised MNIST), ``static`` thresholds at 0.5, ``none`` keeps grey levels.
    """

    value_range: ValueRange = "unit"
    binarize: Binarize = "none"


@dataclass(frozen=True)
class Batch:
    images: torch.Tensor  # (B, C, H, W) float, in the model's DataFormat
    labels: torch.Tensor  # (B,) int64

    def __len__(self) -> int:
        return self.images.shape[0]


def bernoulli(probabilities: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """Binary samples with the given probabilities, as ``u < p`` for uniform ``u``: the same
    distribution as ``torch.bernoulli``, at half its cost on CPU (measured: 550 vs 1130 us for
    100 x 784 draws), which dominates annealed importance sampling and Gibbs chains."""
    uniform = torch.rand(probabilities.shape, generator=generator, device=probabilities.device,
                         dtype=probabilities.dtype)
    return (uniform < probabilities).to(probabilities.dtype)


def to_model_input(images: torch.Tensor, fmt: DataFormat, generator: torch.Generator | None) -> torch.Tensor:
    """uint8 (B, C, H, W) -> float (B, C, H, W) in the model's format."""
    x = images.float().div_(255.0)
    if fmt.binarize == "dynamic":
        x = bernoulli(x, generator)
    elif fmt.binarize == "static":
        x = (x > 0.5).float()
    if fmt.value_range == "symmetric":
        x = x.mul_(2.0).sub_(1.0)
    return x


def to_unit_range(images: torch.Tensor, fmt: DataFormat) -> torch.Tensor:
    """Model-format images -> [0, 1] for display and metrics."""
    if fmt.value_range == "symmetric":
        images = (images + 1.0) / 2.0
    return images.clamp(0.0, 1.0)


def add_noise(
    images: torch.Tensor, kind: NoiseKind, level: float, generator: torch.Generator | None
) -> torch.Tensor:
    """Corrupt [0, 1] images for a denoising autoencoder.

    ``salt``: each pixel independently set to the maximum intensity 1.0 with probability ``level``
    (the lectures' salt noise). ``gaussian``: add N(0, level^2) noise and clip to [0, 1].
    """
    if kind == "none" or level == 0:
        return images
    if kind == "salt":
        salt = torch.rand(images.shape, generator=generator, device=images.device) < level
        return images.masked_fill(salt, 1.0)
    if kind == "gaussian":
        noise = torch.randn(images.shape, generator=generator, device=images.device)
        return (images + level * noise).clamp(0.0, 1.0)
    raise ValueError(f"unknown noise kind {kind!r}")


def epoch_permutation(num_items: int, *, seed: int, epoch: int) -> torch.Tensor:
    """The shuffling order of one epoch, a pure function of (seed, epoch) so that a resumed run
    visits the data in the same order as an uninterrupted one."""
    generator = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    return torch.randperm(num_items, generator=generator)


class BatchLoader:
    """Iterates over a dataset in batches; no per-sample Python work.

    In-memory uint8 images live on the training device; each batch is an index into them followed
    by one vectorised conversion (scaling, binarisation). A memory-mapped (prepared) dataset stays
    on the host: each batch's rows are read from the map and, for a GPU, sent through pinned
    memory, then converted on the device the same way.
    """

    def __init__(self, data: ImageData, *, batch_size: int, fmt: DataFormat, drop_last: bool,
                 memory_format: torch.memory_format = torch.contiguous_format, group: Group = SINGLE,
                 device: torch.device | None = None):
        if batch_size < 1:
            raise ValueError(f"batch_size must be positive, not {batch_size}")
        self.data = data
        self.batch_size = batch_size
        self.fmt = fmt
        self.drop_last = drop_last
        self.memory_format = memory_format  # channels_last for convolutional models
        self.group = group  # in a distributed run, each batch is this rank's share of the global batch
        self.device = torch.device(device) if device is not None else data.images.device  # where batches go

    def __len__(self) -> int:
        n, b = len(self.data), self.batch_size
        return n // b if self.drop_last else -(-n // b)

    def batches(
        self,
        order: torch.Tensor | None,
        generator: torch.Generator | None,
        *,
        start: int = 0,
        limit: int | None = None,
    ) -> Iterator[Batch]:
        """Yield batches ``start, start+1, ...`` (at most ``limit`` of them) in ``order``
        (a permutation of the dataset, or ``None`` for its natural order)."""
        stop = len(self) if limit is None else min(len(self), start + limit)
        device = self.data.images.device
        if order is not None:
            order = order.to(device)
        for index in range(start, stop):
            lo, hi = index * self.batch_size, min((index + 1) * self.batch_size, len(self.data))
            rows = order[lo:hi] if order is not None else torch.arange(lo, hi, device=device)
            rows = self.group.shard(rows)
            pixels, labels = self.data.images[rows], self.data.labels[rows]
            if pixels.device != self.device:
                pinned = self.device.type == "cuda"
                pixels = (pixels.pin_memory() if pinned else pixels).to(self.device, non_blocking=pinned)
                labels = labels.to(self.device)
            images = to_model_input(pixels, self.fmt, generator)
            yield Batch(images.contiguous(memory_format=self.memory_format), labels)
