"""Datasets as one uint8 tensor: the IDX datasets, CIFAR-10, image folders and fake shapes in
memory; folders converted by ``genzoo prepare`` read through a memory map (for datasets larger
than memory)."""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from ..errors import DataError
from ..fileio import atomic_write_text
from .cifar import CIFAR10, load_cifar10_split
from .idx import IDX_SOURCES, default_data_root, load_idx_split

FOLDER_EXTENSIONS = (".png", ".jpg", ".jpeg")
FOLDER_TEST_FRACTION = 0.1  # share of an image folder held out as its test split
FAKE_SIZES = {"train": 1024, "test": 256}
FAKE_CLASSES = ("square", "disc", "cross", "ring")
PREPARED = "prepared.json"  # marks a folder written by `genzoo prepare` (and says it is complete)
# Named datasets and their fixed image shapes (C, H, W); image folders and fake take any size.
FIXED_SHAPES = {**{name: (1, 28, 28) for name in IDX_SOURCES}, CIFAR10.name: (3, 32, 32)}


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
    mapped: bool = False  # images are a memory map of a prepared folder: read per batch, never moved whole

    def __len__(self) -> int:
        return self.images.shape[0]

    @property
    def spec(self) -> DataSpec:
        _, channels, height, width = self.images.shape
        return DataSpec(channels, height, width, len(self.class_names))

    def to(self, device: torch.device | str) -> ImageData:
        if self.mapped:  # stays on the host; batches travel to the device one at a time
            return self
        return ImageData(
            self.name, self.split, self.images.to(device), self.labels.to(device), self.class_names
        )


def dataset_names() -> tuple[str, ...]:
    return (*FIXED_SHAPES, "fake")


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
    if name in FIXED_SHAPES:
        c, h, _ = FIXED_SHAPES[name]
        if image_size not in (None, h) or channels not in (None, c):
            raise DataError(f"{name} is {c} x {h} x {h}; image_size and channels cannot change that")
        root = Path(data_dir).expanduser() if data_dir else default_data_root()
        if name == CIFAR10.name:
            images, labels = load_cifar10_split(split, root, download=download)
            names = CIFAR10.class_names
        else:
            images, labels = load_idx_split(name, split, root, download=download)
            names = IDX_SOURCES[name].class_names
        return ImageData(name, split, torch.from_numpy(images.copy()), torch.from_numpy(labels.astype(np.int64)), names)
    if name == "fake":
        return fake_shapes(split, image_size=image_size or 28, channels=channels or 1)
    path = Path(name).expanduser()
    if (path / PREPARED).is_file():
        return load_prepared(path, split, image_size=image_size, channels=channels)
    if path.is_dir():
        return load_folder(path, split, image_size=image_size or 28, channels=channels or 1)
    if path.exists():
        raise DataError(f"dataset {name}: a file, not a folder of images")
    if any(sep in name for sep in ("/", "\\")) or name.startswith((".", "~")):
        raise DataError(f"dataset folder {name} does not exist")
    known = ", ".join(dataset_names())
    raise DataError(f"unknown dataset {name!r}: expected one of {known}, or an image folder")


def folder_split(folder: Path, split: str) -> tuple[list[Path], list[int], tuple[str, ...]]:
    """The files and labels of one split of an image folder, and its class names.

    Class subfolders (if any) become labels in sorted order; every 10th file of each class (by
    name) is a test image: deterministic and spread over the class."""
    subfolders = sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    groups = [(sub.name, _image_files(sub)) for sub in subfolders]
    groups = [(name, files) for name, files in groups if files]
    if not groups:
        files = _image_files(folder)
        if not files:
            raise DataError(f"{folder}: no PNG or JPEG images found (nor in class subfolders)")
        groups = [("", files)]
    stride = round(1 / FOLDER_TEST_FRACTION)
    chosen, labels = [], []
    for label, (_, files) in enumerate(groups):
        for i, file in enumerate(files):
            if (i % stride == stride - 1) == (split == "test"):
                chosen.append(file)
                labels.append(label)
    if not chosen:
        raise DataError(f"{folder}: too few images to hold out a {split} split (need 10 or more)")
    class_names = tuple(name for name, _ in groups) if groups[0][0] else ()
    return chosen, labels, class_names


def read_image(file: Path, *, image_size: int, channels: int) -> np.ndarray:
    """One image file as uint8 (C, H, W): 16-bit scaled to 8, converted to grayscale or RGB, and
    resized (bilinear) to ``image_size`` x ``image_size``."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(file) as image:
                image = eight_bit(image).convert("L" if channels == 1 else "RGB")
                image = image.resize((image_size, image_size), Image.BILINEAR)
                array = np.asarray(image, dtype=np.uint8).reshape(image_size, image_size, channels)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise DataError(f"{file}: refused, more than {Image.MAX_IMAGE_PIXELS} pixels (a decompression bomb?)") from None
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise DataError(f"{file}: cannot read image ({exc})") from None
    return array.transpose(2, 0, 1)  # (H, W, C) -> (C, H, W)


def load_folder(folder: Path, split: str, *, image_size: int, channels: int) -> ImageData:
    """Load one split of an image folder into memory (see :func:`folder_split`, :func:`read_image`)."""
    if channels not in (1, 3):
        raise DataError(f"channels must be 1 (grayscale) or 3 (RGB), not {channels}")
    files, labels, class_names = folder_split(folder, split)
    images = np.empty((len(files), channels, image_size, image_size), dtype=np.uint8)
    for i, file in enumerate(files):
        images[i] = read_image(file, image_size=image_size, channels=channels)
    return ImageData(str(folder), split, torch.from_numpy(images), torch.tensor(labels, dtype=torch.int64), class_names)


def prepare_folder(folder: Path, out: Path, *, image_size: int, channels: int, log=None) -> dict:
    """Convert an image folder once into ``out/{train,test}-images.npy`` (uint8, N x C x H x W) and
    labels, written image by image into a memory map, so that a folder larger than memory can be
    converted and then trained on (:func:`load_prepared`). ``prepared.json``, written last, marks
    a complete conversion."""
    if channels not in (1, 3):
        raise DataError(f"channels must be 1 (grayscale) or 3 (RGB), not {channels}")
    out.mkdir(parents=True, exist_ok=True)
    counts, class_names = {}, ()
    for split in ("train", "test"):
        files, labels, class_names = folder_split(folder, split)
        images = np.lib.format.open_memmap(out / f"{split}-images.npy", mode="w+", dtype=np.uint8,
                                           shape=(len(files), channels, image_size, image_size))
        for i, file in enumerate(files):
            images[i] = read_image(file, image_size=image_size, channels=channels)
            if log is not None and (i + 1) % 10_000 == 0:
                print(f"genzoo: {split}: {i + 1} of {len(files)} images", file=log)
        images.flush()
        del images
        np.save(out / f"{split}-labels.npy", np.asarray(labels, dtype=np.int64))
        counts[split] = len(files)
    manifest = {"format": "genzoo-prepared-1", "source": str(folder.resolve()), "image_size": image_size,
                "channels": channels, "class_names": list(class_names), "counts": counts}
    atomic_write_text(out / PREPARED, json.dumps(manifest, indent=2) + "\n")
    return manifest


def load_prepared(folder: Path, split: str, *, image_size: int | None = None, channels: int | None = None) -> ImageData:
    """One split of a prepared folder, its images memory-mapped (pages are read as batches need them)."""
    try:
        manifest = json.loads((folder / PREPARED).read_text(encoding="utf-8"))
        images = np.load(folder / f"{split}-images.npy", mmap_mode="c")  # copy-on-write: never written back
        labels = np.load(folder / f"{split}-labels.npy")
    except (OSError, ValueError) as exc:
        raise DataError(f"{folder}: unreadable prepared dataset ({exc}); prepare it again") from None
    if image_size not in (None, manifest["image_size"]) or channels not in (None, manifest["channels"]):
        raise DataError(f"{folder} was prepared at {manifest['channels']} x {manifest['image_size']} x "
                        f"{manifest['image_size']}; set data.image_size and data.channels to match, or prepare again")
    return ImageData(str(folder), split, torch.from_numpy(images), torch.from_numpy(labels),
                     tuple(manifest["class_names"]), mapped=True)


def eight_bit(image: Image.Image) -> Image.Image:
    """16-bit (and 32-bit integer) grayscale scaled to 8 bits; PIL's own conversion clips them
    (a 16-bit PNG would become all 255)."""
    if image.mode in ("I;16", "I;16B", "I;16L", "I;16N") or (image.mode == "I" and image.getextrema()[1] > 255):
        pixels = np.asarray(image, dtype=np.float64)
        return Image.fromarray(np.round(pixels * 255 / 65535).clip(0, 255).astype(np.uint8), mode="L")
    return image


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
