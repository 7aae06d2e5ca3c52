"""genzoo's models: one file each, all following :class:`genzoo.models.base.GenerativeModel`."""

from .base import Denoiser, GenerativeModel, LatentCodec, Sampler

__all__ = ["Denoiser", "GenerativeModel", "LatentCodec", "Sampler"]
