"""Shared fixtures. Real-MNIST tests read ../shared/data (or $GENZOO_TEST_DATA); never a download."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]


def mnist_root() -> Path | None:
    candidates = [os.environ.get("GENZOO_TEST_DATA"), REPO.parent / "shared" / "data"]
    for candidate in candidates:
        if candidate and (Path(candidate) / "mnist" / "train-images-idx3-ubyte.gz").exists():
            return Path(candidate)
    return None


@pytest.fixture(scope="session")
def mnist_dir() -> Path:
    root = mnist_root()
    if root is None:
        if os.environ.get("CI"):
            pytest.fail("MNIST is missing: CI needs ../shared/data/mnist (or $GENZOO_TEST_DATA)")
        pytest.skip("MNIST not found in ../shared/data or $GENZOO_TEST_DATA")
    return root


@pytest.fixture(autouse=True)
def _no_download(monkeypatch):
    """Tests never reach the network: a download attempt fails as it would offline."""
    import urllib.error

    from genzoo.data import idx

    def offline(url, timeout):
        raise urllib.error.URLError("network disabled in tests")

    monkeypatch.setattr(idx, "_download", offline)
    monkeypatch.delenv("GENZOO_DATA", raising=False)


# Under pytest-xdist (scripts/test.sh runs one worker per core) each worker gets one thread: two
# workers with two threads each on two cores wait on each other's spinning threads, many times
# slower for the small tensors tests use.
THREADS = 1 if os.environ.get("PYTEST_XDIST_WORKER") else min(2, os.cpu_count() or 1)


@pytest.fixture(autouse=True)
def _deterministic_threads():
    torch.set_num_threads(THREADS)


# The longest tests (real MNIST training, several processes: 10-30 s each) run first, so that
# pytest-xdist's work stealing (scripts/test.sh) fits the short ones around them instead of ending
# with one worker alone on a long test.
LONGEST_FIRST = ("tests/test_mnist.py", "tests/test_distributed.py")


def pytest_collection_modifyitems(items):
    items.sort(key=lambda item: not item.nodeid.startswith(LONGEST_FIRST))  # a stable sort
