"""Atomic writes: a failure (a full disk) leaves the previous file intact and no debris."""

from __future__ import annotations

import errno
import os

import pytest

from genzoo.errors import RunDirError
from genzoo.fileio import atomic_write_bytes


def test_atomic_write_replaces_content_with_normal_permissions(tmp_path):
    path = tmp_path / "weights.bin"
    atomic_write_bytes(path, b"old")
    atomic_write_bytes(path, b"new")
    assert path.read_bytes() == b"new"
    assert os.stat(path).st_mode & 0o644 == 0o644
    assert [p.name for p in tmp_path.iterdir()] == ["weights.bin"]


def test_full_disk_keeps_the_previous_file_and_says_so(tmp_path, monkeypatch):
    path = tmp_path / "checkpoint.pt"
    atomic_write_bytes(path, b"epoch 3")

    def disk_full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", disk_full)
    with pytest.raises(RunDirError, match="disk full while writing .*checkpoint.pt; its previous version is intact"):
        atomic_write_bytes(path, b"epoch 4")
    assert path.read_bytes() == b"epoch 3"
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint.pt"]


def test_missing_directory_is_a_clear_error(tmp_path):
    with pytest.raises(RunDirError, match="does not exist"):
        atomic_write_bytes(tmp_path / "nowhere" / "x.bin", b"")
