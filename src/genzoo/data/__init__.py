"""Data: IDX datasets, image folders and fake shapes, held in memory and batched on the fly."""

from .batches import (
    Batch,
    BatchLoader,
    DataFormat,
    add_noise,
    bernoulli,
    to_model_input,
    to_unit_range,
)
from .datasets import DataSpec, ImageData, dataset_names, load_dataset
from .idx import default_data_root

__all__ = [
    "Batch",
    "BatchLoader",
    "DataFormat",
    "DataSpec",
    "ImageData",
    "add_noise",
    "bernoulli",
    "dataset_names",
    "default_data_root",
    "load_dataset",
    "to_model_input",
    "to_unit_range",
]
