"""Likelihood bounds and estimates for latent-variable models with an approximate posterior.

With z_1..z_K ~ q(z|x) and log w_k = log p(x, z_k) - log q(z_k|x) (Burda et al. 2016):

    ELBO        = E[log w]                         <= log p(x)
    IWAE_k      = E[log (1/k) sum_{j<=k} w_j]      (rises with k toward log p(x))
    log p(x)   ~= log (1/K) sum_{k<=K} w_k         (the importance-sampled estimate; K = 5000)

One set of K samples per image serves all three: the ELBO is the mean of the K log-weights, IWAE_k
the mean over the K/k disjoint groups of k, and the estimate uses all K. Everything is in nats and
reported as positive "negative log-likelihood" numbers: ``nll <= neg_iwae_k <= neg_elbo``.
"""

from __future__ import annotations

import math
import sys

import torch
from tqdm.auto import tqdm

from ..models.base import ImportanceSampled


@torch.no_grad()
def log_weights(
    model: ImportanceSampled,
    images: torch.Tensor,
    labels: torch.Tensor | None,
    *,
    num_samples: int,
    generator: torch.Generator | None,
    chunk: int = 250,
) -> torch.Tensor:
    """(num_samples, B) log importance weights, drawn ``chunk`` samples at a time."""
    parts = []
    for start in range(0, num_samples, chunk):
        count = min(chunk, num_samples - start)
        parts.append(model.log_importance_weights(images, labels, num_samples=count, generator=generator))
    return torch.cat(parts)


def log_mean_exp(values: torch.Tensor, dim: int = 0) -> torch.Tensor:
    return torch.logsumexp(values, dim=dim) - math.log(values.shape[dim])


def bounds_from_log_weights(weights: torch.Tensor, iwae_k: int) -> dict[str, torch.Tensor]:
    """Per-image ``neg_elbo``, ``neg_iwae`` (groups of ``iwae_k``) and ``nll`` from (K, B) weights."""
    num_samples = weights.shape[0]
    if num_samples % iwae_k:
        raise ValueError(f"{num_samples} importance samples do not split into groups of {iwae_k}")
    groups = weights.view(num_samples // iwae_k, iwae_k, -1)  # (K/k, k, B)
    return {
        "neg_elbo": -weights.mean(0),
        "neg_iwae": -log_mean_exp(groups, dim=1).mean(0),
        "nll": -log_mean_exp(weights, dim=0),
    }


@torch.no_grad()
def estimate_log_likelihood(
    model: ImportanceSampled,
    images: torch.Tensor,
    labels: torch.Tensor | None,
    *,
    importance_samples: int = 5000,
    iwae_k: int = 50,
    generator: torch.Generator | None = None,
    images_per_batch: int | None = None,
    progress: bool = False,
) -> dict[str, float]:
    """Mean over ``images`` of the negative ELBO, the negative IWAE_k bound and the importance-
    sampled NLL, in nats; plus the counts that define the protocol.

    ``images`` must already be in the model's format (binarised as the protocol says).
    """
    iwae_k = min(iwae_k, importance_samples)
    if images_per_batch is None:  # about 2000 decoder evaluations at a time bounds the memory
        images_per_batch = max(1, 2000 // min(importance_samples, 250))
    totals: dict[str, float] = {}
    starts = range(0, len(images), images_per_batch)
    for start in tqdm(starts, desc=f"importance sampling (K = {importance_samples})", unit="batch", leave=False,
                      disable=not progress, file=sys.stderr):
        batch = images[start : start + images_per_batch]
        batch_labels = None if labels is None else labels[start : start + images_per_batch]
        weights = log_weights(model, batch, batch_labels, num_samples=importance_samples, generator=generator)
        for name, values in bounds_from_log_weights(weights, iwae_k).items():
            totals[name] = totals.get(name, 0.0) + float(values.sum())
    result = {name: total / len(images) for name, total in totals.items()}
    return {
        "nll": result["nll"],
        f"neg_iwae_{iwae_k}": result["neg_iwae"],
        "neg_elbo": result["neg_elbo"],
        "importance_samples": importance_samples,
        "num_images": len(images),
    }
