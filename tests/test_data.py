"""The data layer: IDX files (valid and every corrupt case), downloads, image folders, batches."""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import struct
import urllib.error

import numpy as np
import pytest
import torch
from PIL import Image

from genzoo.data import DataFormat, add_noise, idx, load_dataset, to_model_input
from genzoo.data.batches import BatchLoader, epoch_permutation
from genzoo.errors import DataError


def idx_bytes(array: np.ndarray) -> bytes:
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(np.uint8).tobytes()


def write_idx_dataset(folder, *, n_train=30, n_test=10, seed=0):
    """Four gzipped IDX files of random 28x28 images; returns a checksum table for them."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    checksums = {}
    for split, n in (("train", n_train), ("test", n_test)):
        image_file, label_file = idx.SPLIT_FILES[split]
        arrays = {image_file: rng.integers(0, 256, (n, 28, 28)), label_file: rng.integers(0, 10, (n,))}
        for name, array in arrays.items():
            raw = idx_bytes(array)
            packed = gzip.compress(raw, mtime=0)
            (folder / name).write_bytes(packed)
            checksums[name] = idx.Checksum(hashlib.md5(packed).hexdigest(), hashlib.md5(raw).hexdigest())
    return checksums


@pytest.fixture
def patched_sources(monkeypatch):
    """Give each IDX dataset a checksum table matching files the test generates."""

    def patch(name, checksums):
        source = idx.IDX_SOURCES[name]
        monkeypatch.setitem(idx.IDX_SOURCES, name, idx.IdxSource(name, source.mirrors, checksums, source.class_names))

    return patch


@pytest.mark.parametrize("name", ["mnist", "fashion-mnist", "kmnist"])
def test_idx_datasets_load_from_generated_files(tmp_path, patched_sources, name):
    patched_sources(name, write_idx_dataset(tmp_path / name))
    train = load_dataset(name, "train", data_dir=tmp_path)
    test = load_dataset(name, "test", data_dir=tmp_path)
    assert train.images.shape == (30, 1, 28, 28) and train.images.dtype == torch.uint8
    assert test.images.shape == (10, 1, 28, 28)
    assert train.labels.dtype == torch.int64 and int(train.labels.max()) < 10
    assert len(train.class_names) == 10


def test_recompressed_file_is_accepted_by_its_content_checksum(tmp_path, patched_sources):
    checksums = write_idx_dataset(tmp_path / "mnist")
    path = tmp_path / "mnist" / "train-labels-idx1-ubyte.gz"
    path.write_bytes(gzip.compress(gzip.decompress(path.read_bytes()), compresslevel=1, mtime=12345))
    patched_sources("mnist", checksums)
    assert len(load_dataset("mnist", "train", data_dir=tmp_path)) == 30


def test_real_mnist_passes_the_published_checksums(mnist_dir):
    test = load_dataset("mnist", "test", data_dir=mnist_dir)
    assert test.images.shape == (10000, 1, 28, 28)
    assert torch.bincount(test.labels).tolist()[:2] == [980, 1135]  # the known class counts


def corrupt_cases():
    good = idx_bytes(np.zeros((3, 28, 28)))
    return {
        "wrong magic": (gzip.compress(b"\x00\x00\x09\x03" + good[4:]), "wrong magic number"),
        "wrong dims": (gzip.compress(idx_bytes(np.zeros((3, 784)))), "wrong magic number"),
        "truncated content": (gzip.compress(good[:-100]), "truncated or padded"),
        "truncated header": (gzip.compress(good[:10]), "truncated inside its header"),
        "truncated gzip": (gzip.compress(good)[:-20], "corrupt or truncated gzip"),
        "not gzip": (b"this is not a gzip file", "corrupt or truncated gzip"),
        "empty": (gzip.compress(b""), "truncated"),
    }


@pytest.mark.parametrize("case", list(corrupt_cases()))
def test_corrupt_idx_files_give_a_clear_error_naming_the_file(tmp_path, case):
    payload, message = corrupt_cases()[case]
    path = tmp_path / "train-images-idx3-ubyte.gz"
    path.write_bytes(payload)
    with pytest.raises(DataError, match=message) as error:
        idx.read_idx_gz(path, expected_dims=3, checksum=None)
    assert str(path) in str(error.value)


def test_checksum_mismatch_is_reported(tmp_path, patched_sources):
    checksums = write_idx_dataset(tmp_path / "mnist")
    patched_sources("mnist", checksums)
    path = tmp_path / "mnist" / "t10k-images-idx3-ubyte.gz"
    raw = bytearray(gzip.decompress(path.read_bytes()))
    raw[500] ^= 0xFF  # one flipped pixel: a valid IDX file with the wrong content
    path.write_bytes(gzip.compress(bytes(raw)))
    with pytest.raises(DataError, match="checksum mismatch") as error:
        load_dataset("mnist", "test", data_dir=tmp_path)
    assert "t10k-images-idx3-ubyte.gz" in str(error.value)


def test_absent_files_offline_explain_how_to_supply_them(tmp_path):
    with pytest.raises(DataError, match="could not be downloaded") as error:
        load_dataset("kmnist", "train", data_dir=tmp_path)
    text = str(error.value)
    assert "--data-dir" in text and "GENZOO_DATA" in text and str(tmp_path / "kmnist") in text


def test_download_tries_mirrors_checks_md5_and_writes_atomically(tmp_path, patched_sources, monkeypatch):
    source_dir = tmp_path / "published"
    checksums = write_idx_dataset(source_dir)
    patched_sources("fashion-mnist", checksums)
    first, second = idx.IDX_SOURCES["fashion-mnist"].mirrors
    requested = []

    def fake_download(url, timeout):
        requested.append(url)
        if url.startswith(first):
            raise urllib.error.URLError("mirror down")
        name = url.rsplit("/", 1)[1]
        return (source_dir / name).read_bytes()

    monkeypatch.setattr(idx, "_download", fake_download)
    data = load_dataset("fashion-mnist", "test", data_dir=tmp_path / "cache")
    assert len(data) == 10
    assert any(u.startswith(first) for u in requested) and any(u.startswith(second) for u in requested)
    written = sorted(p.name for p in (tmp_path / "cache" / "fashion-mnist").iterdir())
    assert written == ["t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"]  # no temp files left


def test_download_with_wrong_checksum_everywhere_writes_nothing(tmp_path, monkeypatch):
    monkeypatch.setattr(idx, "_download", lambda url, timeout: b"garbage")
    with pytest.raises(DataError, match="checksum mismatch"):
        load_dataset("mnist", "test", data_dir=tmp_path)
    assert not (tmp_path / "mnist").exists() or not any((tmp_path / "mnist").iterdir())


def test_data_root_comes_from_the_environment(tmp_path, monkeypatch, patched_sources):
    patched_sources("mnist", write_idx_dataset(tmp_path / "mnist"))
    monkeypatch.setenv("GENZOO_DATA", str(tmp_path))
    assert len(load_dataset("mnist", "test")) == 10


def write_folder(root, *, classes=("cats", "dogs"), per_class=20, size=(40, 30), mode="RGB"):
    rng = np.random.default_rng(0)
    for name in classes:
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            array = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
            suffix = ".png" if i % 2 else ".jpg"
            Image.fromarray(array).convert(mode).save(root / name / f"{i:03d}{suffix}")


@pytest.mark.parametrize("channels", [1, 3])
def test_image_folder_with_class_subfolders(tmp_path, channels):
    write_folder(tmp_path / "pets")
    train = load_dataset(str(tmp_path / "pets"), "train", image_size=16, channels=channels)
    test = load_dataset(str(tmp_path / "pets"), "test", image_size=16, channels=channels)
    assert train.images.shape == (36, channels, 16, 16) and test.images.shape == (4, channels, 16, 16)
    assert train.class_names == ("cats", "dogs")
    assert torch.bincount(test.labels).tolist() == [2, 2]


def test_flat_image_folder_is_unlabelled(tmp_path):
    folder = tmp_path / "flat"
    folder.mkdir()
    for i in range(12):
        Image.new("L", (20, 20), color=i * 10).save(folder / f"{i:02d}.png")
    data = load_dataset(str(folder), "train", image_size=8, channels=1)
    assert data.class_names == () and data.images.shape == (11, 1, 8, 8)
    # grey levels survive resizing
    assert int(data.images[3].float().mean()) == 30


def test_broken_image_in_folder_names_the_file(tmp_path):
    write_folder(tmp_path / "pets", per_class=10)
    (tmp_path / "pets" / "cats" / "zzz.png").write_bytes(b"not an image")
    with pytest.raises(DataError, match="zzz.png"):
        load_dataset(str(tmp_path / "pets"), "train")


def test_unknown_dataset_name_is_an_error():
    with pytest.raises(DataError, match="unknown dataset 'mnits'"):
        load_dataset("mnits", "train")


def test_fake_shapes_are_deterministic_and_labelled():
    a, b = load_dataset("fake", "train"), load_dataset("fake", "train")
    assert torch.equal(a.images, b.images)
    assert not torch.equal(a.images[:256], load_dataset("fake", "test").images)
    assert set(a.labels.tolist()) == {0, 1, 2, 3}
    assert a.images.float().mean() > 5  # shapes are drawn, not blank


def test_conversions_scale_and_binarise():
    images = torch.tensor([0, 64, 128, 255], dtype=torch.uint8).view(1, 1, 2, 2)
    unit = to_model_input(images, DataFormat(), None)
    assert torch.allclose(unit.flatten(), torch.tensor([0, 64, 128, 255]) / 255)
    symmetric = to_model_input(images, DataFormat(value_range="symmetric"), None)
    assert symmetric.min() == -1 and symmetric.max() == 1
    static = to_model_input(images, DataFormat(binarize="static"), None)
    assert static.flatten().tolist() == [0, 0, 1, 1]
    many = images.expand(20000, 1, 2, 2)
    dynamic = to_model_input(many, DataFormat(binarize="dynamic"), torch.Generator().manual_seed(0))
    assert set(dynamic.unique().tolist()) == {0.0, 1.0}
    assert torch.allclose(dynamic.mean(0).flatten(), unit.flatten(), atol=0.02)


def test_salt_noise_sets_the_chosen_fraction_of_pixels_to_maximum():
    clean = torch.zeros(100, 1, 28, 28)
    noisy = add_noise(clean, "salt", 0.2, torch.Generator().manual_seed(0))
    assert set(noisy.unique().tolist()) == {0.0, 1.0}
    assert abs(float(noisy.mean()) - 0.2) < 0.01
    gaussian = add_noise(clean + 0.5, "gaussian", 0.1, torch.Generator().manual_seed(0))
    assert abs(float(gaussian.std()) - 0.1) < 0.005  # clipping at 5 sigma changes nothing
    clipped = add_noise(clean + 0.5, "gaussian", 1.0, torch.Generator().manual_seed(0))
    assert clipped.min() == 0 and clipped.max() == 1


def test_batches_cover_the_data_once_per_epoch_without_python_per_sample_work():
    data = load_dataset("fake", "test")
    loader = BatchLoader(data, batch_size=50, fmt=DataFormat(), drop_last=False)
    order = epoch_permutation(len(data), seed=0, epoch=3)
    seen = torch.cat([b.labels for b in loader.batches(order, None)])
    assert len(loader) == 6 and torch.equal(seen, data.labels[order])
    assert torch.equal(order, epoch_permutation(len(data), seed=0, epoch=3))
    assert not torch.equal(order, epoch_permutation(len(data), seed=0, epoch=4))


def cifar_archive(path, *, tamper=False):
    """A CIFAR-10-shaped python archive: 5 training batches of 4 images and a test batch of 4."""
    import io
    import pickle
    import tarfile

    rng = np.random.default_rng(0)
    with tarfile.open(path, "w:gz") as archive:
        for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
            batch = {b"data": rng.integers(0, 256, (4, 3072), dtype=np.uint8), b"labels": [0, 3, 9, 1]}
            payload = pickle.dumps(batch if not tamper else {b"data": print})
            info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
            info.size = len(payload)
            archive.addfile(info, io.BytesIO(payload))


def md5_of(path):
    import hashlib

    return hashlib.md5(path.read_bytes()).hexdigest()


def test_cifar10_loads_from_a_generated_archive_after_its_checksum(tmp_path, monkeypatch):
    from genzoo.data import cifar

    archive = tmp_path / "cifar10" / cifar.ARCHIVE
    archive.parent.mkdir()
    cifar_archive(archive)
    with pytest.raises(DataError, match="checksum mismatch"):
        load_dataset("cifar10", "train", data_dir=tmp_path)
    monkeypatch.setattr(cifar, "CIFAR10", dataclasses.replace(
        cifar.CIFAR10, checksums={cifar.ARCHIVE: idx.Checksum(md5_of(archive), None)}))
    train, test = (load_dataset("cifar10", split, data_dir=tmp_path) for split in ("train", "test"))
    assert train.images.shape == (20, 3, 32, 32) and test.images.shape == (4, 3, 32, 32)
    assert train.class_names[9] == "truck" and test.labels.tolist() == [0, 3, 9, 1]
    cifar_archive(archive, tamper=True)  # a pickle that would call a function is refused
    monkeypatch.setattr(cifar, "CIFAR10", dataclasses.replace(
        cifar.CIFAR10, checksums={cifar.ARCHIVE: idx.Checksum(md5_of(archive), None)}))
    with pytest.raises(DataError, match="unexpected object builtins.print"):
        load_dataset("cifar10", "test", data_dir=tmp_path)


def test_a_prepared_folder_gives_the_batches_of_the_folder_in_memory(tmp_path):
    from genzoo.data import BatchLoader, DataFormat
    from genzoo.data.datasets import prepare_folder

    folder = tmp_path / "images"
    rng = np.random.default_rng(1)
    for label in ("cats", "dogs"):
        (folder / label).mkdir(parents=True)
        for i in range(15):
            Image.fromarray(rng.integers(0, 256, (40, 30, 3), dtype=np.uint8)).save(folder / label / f"{i:02d}.png")
    prepare_folder(folder, tmp_path / "prepared", image_size=16, channels=3)
    for split in ("train", "test"):
        memory = load_dataset(str(folder), split, image_size=16, channels=3)
        mapped = load_dataset(str(tmp_path / "prepared"), split, image_size=16, channels=3)
        assert mapped.mapped and mapped.class_names == ("cats", "dogs")
        order = torch.randperm(len(memory), generator=torch.Generator().manual_seed(0))
        fmt = DataFormat(binarize="dynamic")
        loaders = [BatchLoader(d, batch_size=4, fmt=fmt, drop_last=True) for d in (memory, mapped)]
        streams = [list(loader.batches(order, torch.Generator().manual_seed(3))) for loader in loaders]
        for a, b in zip(*streams, strict=True):
            assert torch.equal(a.images, b.images) and torch.equal(a.labels, b.labels)
    with pytest.raises(DataError, match="was prepared at 3 x 16 x 16"):
        load_dataset(str(tmp_path / "prepared"), "train", image_size=28, channels=1)
