"""Attribute vectors in a latent space (the lectures' "smile vector" on MNIST): the difference
between the mean code of test images that have an attribute and of those that do not, added in
steps to an image's code and decoded.

Attributes come from the labels (one per class: that digit against the others) and from the
pixels themselves: ``thickness`` (the share of the image the strokes cover) and ``slant`` (the
shear of the ink, cov(x, y) / var(y) of the ink-weighted pixel coordinates). For a measured
attribute, "has" is the top quarter of the test images and "has not" the bottom quarter.
"""

from __future__ import annotations

import torch

from .data import ImageData


def thickness(images: torch.Tensor) -> torch.Tensor:
    """Share of pixels above half intensity, per image: (N, C, H, W) in [0, 1] -> (N,)."""
    return (images.mean(1) > 0.5).float().flatten(1).mean(1)


def slant(images: torch.Tensor) -> torch.Tensor:
    """Shear of the ink: cov(x, y) / var(y) over ink-weighted pixel coordinates, per image; positive
    when strokes lean right going up (image rows grow downwards)."""
    ink = images.mean(1)  # (N, C, H, W) -> (N, H, W)
    height, width = ink.shape[1:]
    y = torch.arange(height, dtype=ink.dtype).view(1, height, 1)
    x = torch.arange(width, dtype=ink.dtype).view(1, 1, width)
    mass = ink.flatten(1).sum(1).clamp(min=1e-6)
    mean_x = (ink * x).flatten(1).sum(1) / mass
    mean_y = (ink * y).flatten(1).sum(1) / mass
    dx, dy = x - mean_x.view(-1, 1, 1), y - mean_y.view(-1, 1, 1)
    covariance = (ink * dx * dy).flatten(1).sum(1) / mass
    variance = (ink * dy * dy).flatten(1).sum(1) / mass
    return -covariance / variance.clamp(min=1e-6)


MEASURED = {"thickness": thickness, "slant": slant}


def attribute_vectors(codes: torch.Tensor, data: ImageData) -> dict[str, torch.Tensor]:
    """{attribute name: direction (latent_dim,)} from the codes (N, D) of ``data``'s images."""
    vectors = {}
    pixels = data.images[: len(codes)].float() / 255
    for name, measure in MEASURED.items():
        values = measure(pixels)
        low, high = values.quantile(0.25), values.quantile(0.75)
        vectors[name] = codes[values >= high].mean(0) - codes[values <= low].mean(0)
    labels = data.labels[: len(codes)]
    for label, class_name in enumerate(data.class_names):
        members = labels == label
        if members.any() and (~members).any():
            vectors[f"class {class_name}"] = codes[members].mean(0) - codes[~members].mean(0)
    return vectors
