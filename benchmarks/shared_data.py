"""Where the benchmark scripts read MNIST (imported by them as a sibling module)."""

from __future__ import annotations

import os
from pathlib import Path


def mnist_root() -> str:
    """``$GENZOO_DATA``, else the ``../shared/data`` beside the repository (this project's machines),
    exported as ``GENZOO_DATA`` so that zoo models, whose configs name no data directory, find it
    too. An empty string if neither: genzoo's own default then applies (no download here)."""
    if not os.environ.get("GENZOO_DATA"):
        shared = Path(__file__).resolve().parents[2] / "shared" / "data"
        if shared.is_dir():
            os.environ["GENZOO_DATA"] = str(shared)
    return os.environ.get("GENZOO_DATA", "")
