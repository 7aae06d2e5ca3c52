"""Image grids and files: what every picture genzoo writes is assembled here."""

from __future__ import annotations

import io
import math
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from .errors import GenzooError
from .fileio import atomic_write_bytes

PREVIEW_COLUMNS = 10  # columns of every per-epoch grid (one column per MNIST class)


def make_grid(images: torch.Tensor, *, nrow: int = PREVIEW_COLUMNS, padding: int = 2, pad_value: float = 0.5) -> np.ndarray:
    """(N, C, H, W) in [0, 1] -> uint8 (rows*(H+p)+p, nrow*(W+p)+p, C) grid, filled row by row."""
    images = images.detach().float().cpu().clamp(0, 1)
    n, channels, height, width = images.shape
    ncol = min(nrow, n)
    nrows = math.ceil(n / ncol)
    grid = torch.full(
        (channels, nrows * (height + padding) + padding, ncol * (width + padding) + padding), pad_value
    )
    for index in range(n):
        row, col = divmod(index, ncol)
        top, left = padding + row * (height + padding), padding + col * (width + padding)
        grid[:, top : top + height, left : left + width] = images[index]
    return (grid.permute(1, 2, 0).numpy() * 255 + 0.5).astype(np.uint8)  # (C, H, W) -> (H, W, C)


def to_pil(array: np.ndarray, *, scale: int = 1) -> Image.Image:
    image = Image.fromarray(array[..., 0] if array.shape[-1] == 1 else array)
    if scale > 1:
        image = image.resize((image.width * scale, image.height * scale), Image.NEAREST)
    return image


def save_png(image: Image.Image, path: str | Path) -> Path:
    """Write a PNG atomically; refuses other extensions with a clear error."""
    path = Path(path)
    if path.suffix.lower() != ".png":
        raise GenzooError(f"{path}: expected a .png file name")
    if not path.parent.is_dir():
        raise GenzooError(f"{path.parent}: directory does not exist")
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=True)
    atomic_write_bytes(path, buffer.getvalue())
    return path


def unenlarged(image: Image.Image, scale: int = 2) -> Image.Image:
    """``image`` at 1/``scale`` size when it is exactly a nearest-neighbour enlargement by ``scale``
    (as the per-epoch grids are), else ``image`` itself: the same pixels in a quarter of the file."""
    array = np.asarray(image)
    if array.shape[0] % scale or array.shape[1] % scale:
        return image
    small = array[::scale, ::scale]
    enlarged = np.repeat(np.repeat(small, scale, axis=0), scale, axis=1)
    return Image.fromarray(small) if np.array_equal(enlarged, array) else image


def save_grid(images: torch.Tensor, path: str | Path, *, nrow: int = PREVIEW_COLUMNS, scale: int = 2) -> Path:
    return save_png(to_pil(make_grid(images, nrow=nrow), scale=scale), path)


def interleave_rows(*groups: torch.Tensor, row_length: int) -> torch.Tensor:
    """k tensors (N, C, H, W), N a multiple of ``row_length`` -> (k*N, C, H, W) ordered row by row:
    row 0 of each group, then row 1 of each group, ... so that a grid of ``row_length`` columns
    shows each input directly above its outputs."""
    n = groups[0].shape[0]
    if n % row_length:
        raise ValueError(f"{n} images do not fill rows of {row_length}")
    rows = n // row_length
    stacked = torch.stack([g.reshape(rows, row_length, *g.shape[1:]) for g in groups], dim=1)
    return stacked.reshape(-1, *groups[0].shape[1:])  # (rows, k, L, C, H, W) -> (k*N, C, H, W)
