"""The IDX datasets (MNIST, Fashion-MNIST, KMNIST): reading, checking and downloading.

All three ship as the same four gzipped IDX files. A file is accepted when either the MD5 of the
published ``.gz`` file or the MD5 of its decompressed content matches the table below, so a copy
that was re-compressed (byte-identical content, different gzip header) is accepted too.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import struct
import sys
import urllib.error
import urllib.request
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import DataError
from ..fileio import atomic_write_bytes

SPLIT_FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}


@dataclass(frozen=True)
class Checksum:
    gz_md5: str  # MD5 of the file as published by the dataset's authors
    raw_md5: str | None  # MD5 of the decompressed IDX content, where a reference value is known


@dataclass(frozen=True)
class IdxSource:
    name: str
    mirrors: tuple[str, ...]  # base URLs tried in order
    checksums: dict[str, Checksum]
    class_names: tuple[str, ...]


# MD5 values are the ones the datasets' authors publish for the .gz files (also used by
# torchvision); the raw values are the decompressed files' (MNIST: LeCun's site).
IDX_SOURCES: dict[str, IdxSource] = {
    "mnist": IdxSource(
        name="mnist",
        mirrors=(
            "https://ossci-datasets.s3.amazonaws.com/mnist/",
            "https://storage.googleapis.com/cvdf-datasets/mnist/",
            "http://yann.lecun.com/exdb/mnist/",
        ),
        checksums={
            "train-images-idx3-ubyte.gz": Checksum(
                "f68b3c2dcbeaaa9fbdd348bbdeb94873", "6bbc9ace898e44ae57da46a324031adb"
            ),
            "train-labels-idx1-ubyte.gz": Checksum(
                "d53e105ee54ea40749a09fcbcd1e9432", "a25bea736e30d166cdddb491f175f624"
            ),
            "t10k-images-idx3-ubyte.gz": Checksum(
                "9fb629c4189551a2d022fa330f9573f3", "2646ac647ad5339dbf082846283269ea"
            ),
            "t10k-labels-idx1-ubyte.gz": Checksum(
                "ec29112dd5afa0611ce80d1b7f02629c", "27ae3e4e09519cfbb04c329615203637"
            ),
        },
        class_names=tuple(str(d) for d in range(10)),
    ),
    "fashion-mnist": IdxSource(
        name="fashion-mnist",
        mirrors=(
            "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
            "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
        ),
        checksums={
            "train-images-idx3-ubyte.gz": Checksum(
                "8d4fb7e6c68d591d4c3dfef9ec88bf0d", "f4a8712d7a061bf5bd6d2ca38dc4d50a"
            ),
            "train-labels-idx1-ubyte.gz": Checksum(
                "25c81989df183df01b3e8a0aad5dffbe", "9018921c3c673c538a1fc5bad174d6f9"
            ),
            "t10k-images-idx3-ubyte.gz": Checksum(
                "bef4ecab320f06d8554ea6380940ec79", "8181f5470baa50b63fa0f6fddb340f0a"
            ),
            "t10k-labels-idx1-ubyte.gz": Checksum(
                "bb300cfdad3c16e7a12a480ee83cd310", "15d484375f8d13e6eb1aabb0c3f46965"
            ),
        },
        class_names=(
            "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
            "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
        ),
    ),
    "kmnist": IdxSource(
        name="kmnist",
        mirrors=(
            "https://codh.rois.ac.jp/kmnist/dataset/kmnist/",
            "http://codh.rois.ac.jp/kmnist/dataset/kmnist/",
        ),
        checksums={
            "train-images-idx3-ubyte.gz": Checksum("bdb82020997e1d708af4cf47b453dcf7", None),
            "train-labels-idx1-ubyte.gz": Checksum("e144d726b3acfaa3e44228e80efcd344", None),
            "t10k-images-idx3-ubyte.gz": Checksum("5c965bf0a639b31b8f53240b1b52f4d7", None),
            "t10k-labels-idx1-ubyte.gz": Checksum("7320c461ea6c1c855c0b718fb2a4b134", None),
        },
        class_names=("o", "ki", "su", "tsu", "na", "ha", "ma", "ya", "re", "wo"),
    ),
}

# IDX magic numbers: two zero bytes, the element type (0x08 = unsigned byte), the number of dims.
_UBYTE = 0x08


def default_data_root() -> Path:
    """``$GENZOO_DATA`` if set, else the per-user cache directory (``~/.cache/genzoo``)."""
    if os.environ.get("GENZOO_DATA"):
        return Path(os.environ["GENZOO_DATA"]).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache) / "genzoo"


def dataset_folder(data_root: Path, name: str) -> Path:
    """``DATA_ROOT/NAME``; or the root itself when it is already that dataset's folder (a root
    named ``mnist`` pointed straight at the files rather than at the folder above them)."""
    data_root = Path(data_root)
    if data_root.name == name and not (data_root / name).is_dir():
        return data_root
    return data_root / name


def parse_idx(raw: bytes, *, expected_dims: int, source: str) -> np.ndarray:
    """Decode an uncompressed IDX byte string of unsigned bytes into an array.

    Raises :class:`DataError` naming ``source`` for a wrong magic number or a wrong length.
    """
    if len(raw) < 4:
        raise DataError(f"{source}: file is truncated (only {len(raw)} bytes)")
    zero0, zero1, dtype, ndim = raw[0], raw[1], raw[2], raw[3]
    if zero0 != 0 or zero1 != 0 or dtype != _UBYTE or ndim != expected_dims:
        magic = int.from_bytes(raw[:4], "big")
        expected = (_UBYTE << 8) | expected_dims
        raise DataError(
            f"{source}: wrong magic number {magic:#010x} (expected {expected:#010x}); "
            "not an IDX file of this kind"
        )
    header_len = 4 + 4 * ndim
    if len(raw) < header_len:
        raise DataError(f"{source}: file is truncated inside its header")
    shape = struct.unpack(f">{ndim}I", raw[4:header_len])
    expected_len = header_len + int(np.prod(shape))
    if len(raw) != expected_len:
        raise DataError(
            f"{source}: file is truncated or padded ({len(raw)} bytes, header promises {expected_len})"
        )
    return np.frombuffer(raw, dtype=np.uint8, offset=header_len).reshape(shape)


def read_idx_gz(path: Path, *, expected_dims: int, checksum: Checksum | None) -> np.ndarray:
    """Read one gzipped IDX file, verify its checksum, and return its array."""
    try:
        packed = path.read_bytes()
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc.strerror})") from exc
    try:
        raw = gzip.decompress(packed)
    except (OSError, EOFError, zlib.error) as exc:
        raise DataError(f"{path}: corrupt or truncated gzip file ({exc})") from exc
    if checksum is not None and hashlib.md5(packed).hexdigest() != checksum.gz_md5:
        raw_md5 = hashlib.md5(raw).hexdigest()
        if raw_md5 != checksum.raw_md5:
            raise DataError(
                f"{path}: checksum mismatch (MD5 of content {raw_md5}); the file is corrupt or "
                "not the published one; delete it to download it again"
            )
    return parse_idx(raw, expected_dims=expected_dims, source=str(path))


def _download(url: str, timeout: float) -> bytes:
    request = urllib.request.Request(url, headers={"User-Agent": "genzoo"})
    with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 (https/http only)
        return response.read()


def fetch_file(source: IdxSource, filename: str, folder: Path, *, timeout: float = 30.0) -> None:
    """Download ``filename`` from the first mirror that serves it with the right MD5."""
    expected = source.checksums[filename].gz_md5
    failures = []
    for mirror in source.mirrors:
        url = mirror + filename
        try:
            data = _download(url, timeout)
        except (urllib.error.URLError, OSError, TimeoutError) as exc:
            failures.append(f"{url}: {getattr(exc, 'reason', exc)}")
            continue
        if hashlib.md5(data).hexdigest() != expected:
            failures.append(f"{url}: checksum mismatch")
            continue
        folder.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(folder / filename, data)
        return
    raise DataError(
        f"{source.name}: {filename} is not in {folder} and could not be downloaded "
        f"({'; '.join(failures)}). Put {', '.join(source.checksums)} in {folder}, or point "
        "--data-dir / GENZOO_DATA at a folder that holds a "
        f"'{source.name}' subfolder with them"
    )


def load_idx_split(name: str, split: str, data_root: Path, *, download: bool = True):
    """Return ``(images (N, 1, 28, 28) uint8, labels (N,) uint8)`` for one split of an IDX dataset."""
    source = IDX_SOURCES[name]
    folder = dataset_folder(data_root, name)
    image_file, label_file = SPLIT_FILES[split]
    for filename in (image_file, label_file):
        if not (folder / filename).exists():
            if not download:
                raise DataError(f"{folder / filename} does not exist")
            print(f"genzoo: downloading {name} {filename} to {folder}", file=sys.stderr)
            fetch_file(source, filename, folder)
    images = read_idx_gz(folder / image_file, expected_dims=3, checksum=source.checksums[image_file])
    labels = read_idx_gz(folder / label_file, expected_dims=1, checksum=source.checksums[label_file])
    if len(images) != len(labels):
        raise DataError(
            f"{folder}: {image_file} holds {len(images)} images but {label_file} {len(labels)} labels"
        )
    return images[:, None, :, :], labels
