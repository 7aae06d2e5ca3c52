"""CIFAR-10 in its "python version" (Krizhevsky 2009): ``cifar-10-python.tar.gz``, five training
batches and a test batch of pickled dicts, read straight from the tarball after its MD5 is checked.

Pickle can run code; the unpickler here admits only the few globals a CIFAR batch holds (numpy
arrays and their dtypes), so a tampered file is an error, not an exploit.
"""

from __future__ import annotations

import hashlib
import io
import pickle
import sys
import tarfile
from pathlib import Path

import numpy as np

from ..errors import DataError
from .idx import Checksum, IdxSource, dataset_folder, fetch_file

ARCHIVE = "cifar-10-python.tar.gz"
CIFAR10 = IdxSource(
    name="cifar10",
    mirrors=("https://www.cs.toronto.edu/~kriz/",),
    checksums={ARCHIVE: Checksum("c58f30108f718f92721af3b95e74349a", None)},  # published by the authors
    class_names=("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"),
)
MEMBERS = {"train": [f"data_batch_{i}" for i in range(1, 6)], "test": ["test_batch"]}
ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
           ("numpy", "ndarray"), ("numpy", "dtype"), ("numpy.core.multiarray", "scalar"),
           ("numpy._core.multiarray", "scalar"), ("_codecs", "encode")}


class _BatchUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        if (module, name) not in ALLOWED:
            raise pickle.UnpicklingError(f"unexpected object {module}.{name} in a CIFAR batch")
        return super().find_class(module, name)


def load_cifar10_split(split: str, data_root: Path, *, download: bool = True):
    """``(images (N, 3, 32, 32) uint8, labels (N,) uint8)`` of one split."""
    folder = dataset_folder(data_root, CIFAR10.name)
    path = folder / ARCHIVE
    if not path.exists():
        if not download:
            raise DataError(f"{path} does not exist")
        print(f"genzoo: downloading cifar10 ({ARCHIVE}, 163 MB) to {folder}", file=sys.stderr)
        fetch_file(CIFAR10, ARCHIVE, folder, timeout=120.0)
    digest = hashlib.md5()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    if digest.hexdigest() != CIFAR10.checksums[ARCHIVE].gz_md5:
        raise DataError(f"{path}: checksum mismatch (MD5 {digest.hexdigest()}); the file is corrupt or not the "
                        "published one; delete it to download it again")
    images, labels = [], []
    try:
        with tarfile.open(path, "r:gz") as archive:
            members = {Path(m.name).name: m for m in archive.getmembers() if m.isfile()}
            for name in MEMBERS[split]:
                if name not in members:
                    raise DataError(f"{path}: {name} is missing from the archive")
                batch = _BatchUnpickler(io.BytesIO(archive.extractfile(members[name]).read()), encoding="bytes").load()
                images.append(np.asarray(batch[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32))
                labels.append(np.asarray(batch[b"labels"], dtype=np.uint8))
    except (tarfile.TarError, OSError, EOFError, pickle.UnpicklingError, KeyError, ValueError) as exc:
        raise DataError(f"{path}: unreadable CIFAR-10 archive ({exc})") from None
    return np.concatenate(images), np.concatenate(labels)
