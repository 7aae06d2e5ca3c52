"""Atomic file writes: a reader (or a crash) never sees half a file."""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile
from pathlib import Path

from . import faults
from .errors import RunDirError


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same directory and a rename.

    The previous content of ``path`` stays intact if anything fails (a full disk included).
    """
    path = Path(path)
    if not path.parent.is_dir():
        raise RunDirError(f"cannot write {path}: directory {path.parent} does not exist")
    if path.is_dir():
        raise RunDirError(f"cannot write {path}: it is a directory")
    tmp_name = None
    try:
        fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        faults.reach("write")
        os.chmod(tmp_name, 0o666 & ~_umask())  # mkstemp makes 0600; give the usual permissions
        os.replace(tmp_name, path)
    except OSError as exc:
        _unlink(tmp_name)
        if exc.errno == errno.ENOSPC:
            raise RunDirError(f"disk full while writing {path}; its previous version is intact") from None
        raise RunDirError(f"cannot write {path}: {exc.strerror or exc}") from None
    except BaseException:
        _unlink(tmp_name)
        raise


def _unlink(name: str | None) -> None:
    if name is not None:
        with contextlib.suppress(OSError):
            os.unlink(name)


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def ensure_directory(path: Path) -> None:
    """Create ``path`` (and its parents), or a clear error when it cannot be a directory."""
    if path.exists() and not path.is_dir():
        raise RunDirError(f"{path} exists and is not a directory")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise RunDirError(f"cannot create directory {path}: {exc.strerror or exc}") from None


def remove_orphans(run_dir: Path) -> None:
    """Delete the temporary files of atomic writes that a crash left behind (``.NAME.*.tmp``)."""
    for folder in (run_dir, run_dir / "samples", run_dir / "plots"):
        if folder.is_dir():
            for orphan in folder.glob(".*.tmp"):
                with contextlib.suppress(OSError):
                    orphan.unlink()
