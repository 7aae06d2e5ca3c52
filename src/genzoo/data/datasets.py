"""Datasets as one uint8 tensor in memory: the IDX datasets, image folders, and fake shapes."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from ..errors import DataError
from .idx import IDX_SOURCES, default_data_root, load_idx_split

FOLDER_EXTENSIONS = (".png", ".jpg", ".jpeg")
FOLDER_TEST_FRACTION = 0.1  # share of an image folder held out as its test split
FAKE_SIZES = {"train": 1024, "test": 256}
FAKE_CLASSES = ("square", "disc", "cross", "ring")


@dataclass(frozen=True)
class DataSpec:
    """What a model needs to know about its data to build its networks."""

    channels: int
    height: int
    width: int
    num_classes: int  # 0 when the dataset has no labels

    @property
    def shape(self) -> tuple[int, int, int]:
        return (self.channels, self.height, self.width)

    @property
    def num_pixels(self) -> int:
        return self.channels * self.height * self.width


@dataclass(frozen=True)
class ImageData:
    """One split of a dataset, held in memory.

    ``images`` is uint8 of shape (N, C, H, W); ``labels`` is int64 of shape (N,) (all zeros and
    ``class_names == ()`` for unlabelled data).
    """

    name: str
    split: str
    images: torch.Tensor
    labels: torch.Tensor
    class_names: tuple[str, ...]

    def __len__(self) -> int:
        return self.images.shape[0]

    @property
    def spec(self) -> DataSpec:
        _, channels, height, width = self.images.shape
        return DataSpec(channels, height, width, len(self.class_names))

    def to(self, device: torch.device | str) -> ImageData:
        return ImageData(
            self.name, self.split, self.images.to(device), self.labels.to(device), self.class_names
        )


def dataset_names() -> tuple[str, ...]:
    return (*IDX_SOURCES, "fake")


def load_dataset(
    name: str,
    split: str,
    *,
    data_dir: str | Path | None = None,
    image_size: int | None = None,
    channels: int | None = None,
    download: bool = True,
) -> ImageData:
    """Load one split (``"train"`` or ``"test"``) of a dataset.

    ``name`` is ``mnist``, ``fashion-mnist``, ``kmnist``, ``fake`` or the path of an image folder.
    ``image_size`` and ``channels`` apply to image folders (default 28 and 1) and to ``fake``;
    the IDX datasets are always 1 x 28 x 28.
    """
    if split not in ("train", "test"):
        raise DataError(f"unknown split {split!r}; expected 'train' or 'test'")
    if name in IDX_SOURCES:
        if image_size not in (None, 28) or channels not in (None, 1):
            raise DataError(f"{name} is 1 x 28 x 28; image_size and channels cannot change that")
        root = Path(data_dir).expanduser() if data_dir else default_data_root()
        images, labels = load_idx_split(name, split, root, download=download)
        return ImageData(
            name,
            split,
            torch.from_numpy(images.copy()),
            torch.from_numpy(labels.astype(np.int64)),
            IDX_SOURCES[name].class_names,
        )
    if name == "fake":
        return fake_shapes(split, image_size=image_size or 28, channels=channels or 1)
    path = Path(name).expanduser()
    if path.is_dir():
        return load_folder(path, split, image_size=image_size or 28, channels=channels or 1)
    known = ", ".join(dataset_names())
    raise DataError(f"unknown dataset {name!r}: expected one of {known}, or an image folder")


def load_folder(folder: Path, split: str, *, image_size: int, channels: int) -> ImageData:
    """Load an image folder; class subfolders (if any) become labels in sorted order.

    Every image is resized to ``image_size`` x ``image_size`` and converted to grayscale
    (``channels=1``) or RGB (``channels=3``). A fixed, name-sorted 10 % of each class is held
    out as the test split.
    """
    if channels not in (1, 3):
        raise DataError(f"channels must be 1 (grayscale) or 3 (RGB), not {channels}")
    subfolders = sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    groups = [(sub.name, _image_files(sub)) for sub in subfolders]
    groups = [(name, files) for name, files in groups if files]
    if not groups:
        files = _image_files(folder)
        if not files:
            raise DataError(f"{folder}: no PNG or JPEG images found (nor in class subfolders)")
        groups = [("", files)]
    labelled = groups[0][0] != ""
    chosen, labels = [], []
    for label, (_, files) in enumerate(groups):
        # Every 10th file (by name) is a test image: deterministic and spread over the class.
        stride = round(1 / FOLDER_TEST_FRACTION)
        in_test = [i % stride == stride - 1 for i in range(len(files))]
        for file, is_test in zip(files, in_test, strict=False):
            if is_test == (split == "test"):
                chosen.append(file)
                labels.append(label)
    if not chosen:
        raise DataError(f"{folder}: too few images to hold out a {split} split (need 10 or more)")
    mode = "L" if channels == 1 else "RGB"
    array = np.empty((len(chosen), image_size, image_size, channels), dtype=np.uint8)
    for i, file in enumerate(chosen):
        try:
            with Image.open(file) as image:
                image = image.convert(mode).resize((image_size, image_size), Image.BILINEAR)
                array[i] = np.asarray(image, dtype=np.uint8).reshape(image_size, image_size, channels)
        except (UnidentifiedImageError, OSError) as exc:
            raise DataError(f"{file}: cannot read image ({exc})") from exc
    images = torch.from_numpy(array).permute(0, 3, 1, 2).contiguous()  # (N, H, W, C) -> (N, C, H, W)
    class_names = tuple(name for name, _ in groups) if labelled else ()
    return ImageData(str(folder), split, images, torch.tensor(labels, dtype=torch.int64), class_names)


def _image_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in FOLDER_EXTENSIONS)


def fake_shapes(split: str, *, image_size: int = 28, channels: int = 1) -> ImageData:
    """Random white shapes (one class per kind of shape) on black: a tiny stand-in for MNIST.

    Deterministic: the train and test splits use different fixed seeds.
    """
    count = FAKE_SIZES[split]
    generator = torch.Generator().manual_seed({"train": 0, "test": 1}[split])
    labels = torch.randint(len(FAKE_CLASSES), (count,), generator=generator)
    size = image_size
    centre = (torch.rand(count, 2, generator=generator) * 0.4 + 0.3) * size  # (N, 2)
    radius = (torch.rand(count, generator=generator) * 0.15 + 0.15) * size  # (N,)
    coords = torch.arange(size, dtype=torch.float32) + 0.5
    dy = coords.view(1, size, 1) - centre[:, 0].view(count, 1, 1)  # (N, H, 1)
    dx = coords.view(1, 1, size) - centre[:, 1].view(count, 1, 1)  # (N, 1, W)
    r = radius.view(count, 1, 1)
    distance = torch.sqrt(dy**2 + dx**2)  # (N, H, W)
    masks = torch.stack(
        [
            (dy.abs() <= r) & (dx.abs() <= r),  # square
            distance <= r,  # disc
            ((dy.abs() <= r / 3) & (dx.abs() <= r)) | ((dx.abs() <= r / 3) & (dy.abs() <= r)),  # cross
            (distance <= r) & (distance >= r * 0.6),  # ring
        ]
    )  # (K, N, H, W)
    mask = masks[labels, torch.arange(count)]  # (N, H, W)
    brightness = 155 + torch.randint(101, (count, channels, 1, 1), generator=generator)
    images = (mask[:, None].to(torch.int64) * brightness).to(torch.uint8)  # (N, C, H, W)
    return ImageData("fake", split, images, labels, FAKE_CLASSES)
