"""The zoo: trained models shipped inside genzoo, one command away.

Every row of the ``mnist`` benchmark protocol is shipped here after training, as a read-only run
directory: ``model.safetensors`` (float16 unless the row says otherwise), ``config.toml``,
``meta.json``, ``eval.json`` (the evaluation of exactly these weights), the epoch records of its
``metrics.jsonl``, a few of its per-epoch grids and a model card. ``index.json`` lists them with
the SHA-256 of every file.

A name ``zoo:NAME`` is accepted wherever a run directory is (``genzoo sample zoo:dcgan ...``,
``genzoo.load("zoo:draw")``). Loading checks the checksums; anything that writes into a run
directory (plots, evaluations) writes into ``runs/zoo-NAME/`` instead.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from ..errors import GenzooError

PREFIX = "zoo:"
INDEX = "index.json"


class ZooError(GenzooError):
    """An unknown zoo model, or a shipped file that fails its checksum."""


@dataclass(frozen=True)
class ZooEntry:
    name: str
    path: Path  # the entry's folder inside the installed package
    model: str  # registry name
    summary: str
    headline: dict  # the row's headline metrics, as shown by `genzoo zoo`
    files: dict  # file name -> sha256
    train_seconds: float


def zoo_root() -> Path:
    return Path(str(resources.files(__name__)))


def entries(root: Path | None = None) -> dict[str, ZooEntry]:
    """Every shipped model by name (empty when the index is missing)."""
    root = root or zoo_root()
    try:
        index = json.loads((root / INDEX).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise ZooError(f"{root / INDEX}: unreadable zoo index ({exc})") from None
    return {name: ZooEntry(name=name, path=root / "models" / name, model=item["model"], summary=item["summary"],
                           headline=item["headline"], files=item["files"], train_seconds=item["train_seconds"])
            for name, item in index["models"].items()}


def is_zoo_name(reference: str | Path) -> bool:
    return str(reference).startswith(PREFIX)


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def resolve(reference: str | Path, *, root: Path | None = None) -> Path:
    """The folder of zoo model ``zoo:NAME``, after checking every file against its checksum."""
    name = str(reference)[len(PREFIX):]
    known = entries(root)
    if name not in known:
        choices = ", ".join(known) or "none are installed"
        raise ZooError(f"unknown zoo model {name!r}; zoo models: {choices} (see `genzoo zoo`)")
    entry = known[name]
    for file_name, expected in entry.files.items():
        path = entry.path / file_name
        if not path.is_file():
            raise ZooError(f"zoo:{name}: {file_name} is missing from {entry.path}; reinstall genzoo")
        found = sha256(path)
        if found != expected:
            raise ZooError(f"zoo:{name}: {file_name} does not match its checksum (expected sha256 {expected[:12]}..., "
                           f"found {found[:12]}...): the installed file is damaged or was changed; reinstall genzoo")
    return entry.path


def output_dir(reference: str | Path) -> Path:
    """Where commands write for a run: the run directory itself, or ``runs/zoo-NAME`` for the zoo."""
    if is_zoo_name(reference):
        return Path("runs") / f"zoo-{str(reference)[len(PREFIX):]}"
    return Path(reference)
