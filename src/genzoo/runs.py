"""Run directories: create, train into, resume, and load back.

A run directory holds ``config.toml`` (reproduces the run), ``meta.json`` (data shape and class
names, versions), ``model.safetensors`` (weights), ``checkpoint.pt`` (resumable state),
``metrics.jsonl``, ``samples/epoch_NNNN.png`` and ``plots/``.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file

from . import __version__
from .config import DataConfig, RunConfig, TrainConfig, from_toml, to_toml
from .data import DataSpec, ImageData, load_dataset
from .data.idx import IDX_SOURCES
from .errors import ConfigError, RunDirError
from .evaluation.callbacks import SampleQuality
from .evaluation.evaluator import bundled_evaluator
from .fileio import atomic_write_text
from .models.base import GenerativeModel, Sampler
from .registry import get_entry
from .trainer import CHECKPOINT, METRICS, WEIGHTS, Callback, Trainer

CONFIG = "config.toml"
META = "meta.json"


@dataclass(frozen=True)
class Run:
    """A trained run loaded back: its config, its model (eval mode) and its data description."""

    path: Path
    config: RunConfig
    model: GenerativeModel
    class_names: tuple[str, ...]


def default_config(model: str, *, preset: str | None = None) -> RunConfig:
    """The default run config of a registered model (optionally one of its presets)."""
    entry = get_entry(model)
    model_config = entry.preset(preset) if preset else entry.config
    return RunConfig(model=model, model_config=model_config, train=TrainConfig(batch_size=entry.batch_size))


def read_config(path: str | Path) -> RunConfig:
    """Read a ``config.toml`` (a run's, or one written by hand)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read ({exc.strerror})") from None
    return from_toml(text, source=str(path), default_model_config=lambda name: get_entry(name).config)


def load_split(config: DataConfig, split: str) -> ImageData:
    """One split (``train`` or ``test``) of the dataset a data config names."""
    resize = {} if config.dataset in IDX_SOURCES else {"image_size": config.image_size, "channels": config.channels}
    return load_dataset(config.dataset, split, data_dir=config.data_dir or None, **resize)


def select_device(name: str) -> torch.device:
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("--device cuda: no CUDA device is available")
    if name == "mps" and not torch.backends.mps.is_available():
        raise ConfigError("--device mps: no MPS device is available")
    return torch.device(name)


def build_model(config: RunConfig, spec: DataSpec) -> GenerativeModel:
    """Build the model with weights initialised from ``config.train.seed`` (the caller's global
    RNG is left untouched)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.train.seed)
        return get_entry(config.model).build(config.model_config, spec)


def default_run_dir(config: RunConfig) -> Path:
    dataset = Path(config.data.dataset).name or "data"
    return Path("runs") / f"{config.model}-{dataset}-{time.strftime('%Y%m%d-%H%M%S')}"


def train(
    config: RunConfig,
    run_dir: str | Path | None = None,
    *,
    resume: bool = False,
    progress: bool = True,
    callbacks: tuple[Callback, ...] = (),
    sample_quality: bool = True,
) -> Trainer:
    """Train ``config`` into ``run_dir`` (a new directory, or an existing one with ``resume``).

    With ``sample_quality``, models that sample on a dataset genzoo ships an evaluator for get
    the evaluator's classifier score and class coverage of 1000 samples after every epoch.
    Returns the :class:`Trainer` (its ``model`` is trained; ``stop_requested`` tells whether the run
    was interrupted).
    """
    run_dir = Path(run_dir) if run_dir is not None else default_run_dir(config)
    if resume:
        require_run_dir(run_dir, CHECKPOINT)
    elif (run_dir / CHECKPOINT).exists() or (run_dir / CONFIG).exists():
        raise RunDirError(f"{run_dir} already holds a run; resume it with --resume or pick another --run-dir")
    train_data, test_data = load_split(config.data, "train"), load_split(config.data, "test")
    spec = train_data.spec
    model = build_model(config, spec)
    device = select_device(config.train.device)
    if not resume:
        try:
            run_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise RunDirError(f"cannot create run directory {run_dir}: {exc.strerror}") from None
        meta = {
            "model": config.model,
            "spec": asdict(spec),
            "class_names": list(train_data.class_names),
            "train_size": len(train_data),
            "test_size": len(test_data),
            "genzoo_version": __version__,
            "torch_version": torch.__version__,
        }
        atomic_write_text(run_dir / META, json.dumps(meta, indent=2) + "\n")
    # On resume too: the saved config follows the run (a longer budget, another device or data root).
    atomic_write_text(run_dir / CONFIG, to_toml(config))
    if sample_quality and isinstance(model, Sampler):
        evaluator = bundled_evaluator(config.data.dataset)
        if evaluator is not None:
            callbacks = (*callbacks, SampleQuality(evaluator))
    trainer = Trainer(
        model, train_data, test_data, config.train, run_dir=run_dir, device=device, progress=progress,
        callbacks=callbacks,
    )
    if resume:
        trainer.resume()
    trainer.fit()
    return trainer


def require_run_dir(run_dir: str | Path, *files: str) -> Path:
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise RunDirError(f"run directory {run_dir} does not exist")
    for name in files:
        if not (run_dir / name).exists():
            raise RunDirError(f"{run_dir} has no {name}; is it a genzoo run directory?")
    return run_dir


def load_run(run_dir: str | Path, *, device: str | torch.device = "cpu") -> Run:
    """Load a run directory's config and trained model (in eval mode, on ``device``)."""
    run_dir = require_run_dir(run_dir, CONFIG, META, WEIGHTS)
    config = read_config(run_dir / CONFIG)
    try:
        meta = json.loads((run_dir / META).read_text(encoding="utf-8"))
        spec = DataSpec(**meta["spec"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise RunDirError(f"{run_dir / META}: unreadable ({exc})") from None
    model = build_model(config, spec)
    try:
        state = load_file(str(run_dir / WEIGHTS))
    except (OSError, SafetensorError) as exc:
        raise RunDirError(f"{run_dir / WEIGHTS}: cannot read weights ({exc})") from None
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise RunDirError(f"{run_dir / WEIGHTS}: weights do not match the config (missing {missing[:3]}, "
                          f"unexpected {unexpected[:3]})")
    model.to(device).eval()
    return Run(run_dir, config, model, tuple(meta.get("class_names", ())))


def load(run_dir: str | Path, *, device: str | torch.device = "cpu") -> GenerativeModel:
    """The trained model of a run directory, ready to sample / encode (eval mode)."""
    return load_run(run_dir, device=device).model


def read_metrics(run_dir: Path) -> tuple[list[dict], list[dict]]:
    """The step and epoch records of a run's ``metrics.jsonl``."""
    path = Path(run_dir) / METRICS
    if not path.exists():
        raise RunDirError(f"{path} does not exist")
    steps, epochs = [], []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            record = json.loads(line)
            (steps if record.get("kind") == "step" else epochs).append(record)
    return steps, epochs
