"""Run directories: create, train into, resume, and load back.

A run directory holds ``config.toml`` (reproduces the run), ``meta.json`` (data shape and class
names, versions), ``model.safetensors`` (weights), ``checkpoint.pt`` (resumable state),
``metrics.jsonl``, ``samples/epoch_NNNN.png`` and ``plots/``.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file

from . import __version__, distributed, zoo
from .config import DataConfig, RunConfig, TrainConfig, from_toml, to_toml
from .data import DataSpec, ImageData, default_data_root, load_dataset
from .data.datasets import FIXED_SHAPES
from .errors import ConfigError, RunDirError
from .evaluation.callbacks import SampleQuality, UnusedLatent
from .evaluation.evaluator import bundled_evaluator
from .fileio import atomic_write_text, ensure_directory, remove_orphans
from .models.base import GenerativeModel, Sampler
from .registry import get_entry
from .trainer import CHECKPOINT, METRICS, WEIGHTS, Callback, Trainer, memory_format

CONFIG = "config.toml"
META = "meta.json"


@dataclass(frozen=True)
class Run:
    """A trained run loaded back: its config, its model (eval mode) and its data description."""

    path: Path
    config: RunConfig
    model: GenerativeModel
    class_names: tuple[str, ...]
    output_dir: Path  # where plots and evaluations of it are written: the run itself, or runs/zoo-NAME
    name: str  # how the user named it: the run directory, or zoo:NAME


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
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not a UTF-8 text file (a TOML config is UTF-8 text)") from None
    return from_toml(text, source=str(path), default_model_config=lambda name: get_entry(name).config)


def load_split(config: DataConfig, split: str) -> ImageData:
    """One split (``train`` or ``test``) of the dataset a data config names."""
    if config.dataset in FIXED_SHAPES:
        channels, side, _ = FIXED_SHAPES[config.dataset]
        if (config.image_size, config.channels) not in ((side, channels), (28, 1)):
            kind = "grayscale" if channels == 1 else "RGB"
            raise ConfigError(f"{config.dataset} images are {side} x {side} {kind}: data.image_size and "
                              "data.channels apply to image folders and fake data only")
    resize = {} if config.dataset in FIXED_SHAPES else {"image_size": config.image_size, "channels": config.channels}
    return load_dataset(config.dataset, split, data_dir=config.data_dir or None, **resize)


def select_device(name: str) -> torch.device:
    """``auto`` (CUDA, else MPS, else CPU), ``cpu``, ``cuda``, ``cuda:K`` or ``mps``. Under torchrun,
    ``auto`` and ``cuda`` mean the process's own GPU, ``cuda:LOCAL_RANK``."""
    if name == "auto":
        if torch.cuda.is_available():
            name = "cuda"
        elif torch.backends.mps.is_available():
            return torch.device("mps")
        else:
            return torch.device("cpu")
    kind, _, index = name.partition(":")
    if kind == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(f"--device {name}: no CUDA device is available")
        number = int(index) if index else distributed.local_rank() if distributed.launched_world() > 1 else 0
        if number >= torch.cuda.device_count():
            raise ConfigError(f"--device {name}: this machine has {torch.cuda.device_count()} CUDA device(s)")
        return torch.device("cuda", number)
    if name == "mps" and not torch.backends.mps.is_available():
        raise ConfigError("--device mps: no MPS device is available")
    return torch.device(name)


def build_model(config: RunConfig, spec: DataSpec) -> GenerativeModel:
    """Build the model with weights initialised from ``config.train.seed`` (the caller's global
    RNG is left untouched). A model whose training state would not fit in this machine's memory
    is refused before anything is allocated."""
    entry = get_entry(config.model)
    with torch.device("meta"):  # shapes only: count what the real model would hold
        shapes = entry.build(config.model_config, spec)
    values = sum(p.numel() for p in shapes.parameters())
    need = 4 * (4 * values + sum(b.numel() for b in shapes.buffers()))  # float32 weights, gradients, Adam's 2 moments
    if need > memory_bytes():
        raise ConfigError(f"{config.model} with these settings has {values:,} parameters and needs about "
                          f"{need / 2**30:.1f} GiB to train; this machine has {memory_bytes() / 2**30:.1f} GiB")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.train.seed)
        return entry.build(config.model_config, spec)


def memory_bytes() -> int:
    """This machine's physical memory."""
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


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

    A new run saves a checkpoint before its first step, so that a run killed at any moment can be
    resumed. On resume, ``config`` may differ from the checkpoint's only in :data:`RESUMABLE`
    fields (a longer budget, another device or data root, learning rates); anything else is an
    error naming the field. With ``sample_quality``, models that sample on a dataset genzoo ships
    an evaluator for get the evaluator's classifier score and class coverage of 1000 samples
    after every epoch (within the overhead budget). Returns the :class:`Trainer` (its ``model``
    is trained; ``stop_requested`` tells whether the run was interrupted).
    """
    config = with_data_root(config)
    device = select_device(config.train.device)
    group = distributed.setup(device.type)  # one process, or this one's place among torchrun's
    run_dir = Path(distributed.broadcast(str(run_dir) if run_dir is not None else str(default_run_dir(config)), group))
    if resume and not (run_dir / CHECKPOINT).exists() and (run_dir / CONFIG).exists():
        print(f"genzoo: {run_dir} stopped before its first checkpoint; starting it from the beginning",
              file=sys.stderr)
        resume = False
    if resume:
        require_run_dir(run_dir, CHECKPOINT)
    elif (run_dir / CHECKPOINT).exists():
        raise RunDirError(f"{run_dir} already holds a run; resume it with --resume or pick another --run-dir")
    elif (run_dir / CONFIG).exists() and group.is_main:
        print(f"genzoo: {run_dir} holds a run that stopped before its first checkpoint; starting it again",
              file=sys.stderr)
    train_data, test_data = load_split(config.data, "train"), load_split(config.data, "test")
    spec = train_data.spec
    model = build_model(config, spec)
    if config.train.init_from and not resume:
        initialize_from(model, config)
    callbacks = (*callbacks, UnusedLatent())
    if sample_quality and isinstance(model, Sampler):
        evaluator = bundled_evaluator(config.data.dataset)
        if evaluator is not None:
            callbacks = (*callbacks, SampleQuality(evaluator))
    if group.is_main:
        ensure_directory(run_dir)
        remove_orphans(run_dir)
    distributed.broadcast(None, group)  # the others wait until the directory exists
    trainer = Trainer(
        model, train_data, test_data, config.train, run_dir=run_dir, device=device, progress=progress,
        callbacks=callbacks, checkpoint_extra={"config": to_toml(config)}, group=group,
    )
    if resume:
        state = trainer.read_checkpoint()
        if "config" in state:
            check_resumable(from_toml(state["config"], source=str(run_dir / CHECKPOINT),
                                      default_model_config=lambda name: get_entry(name).config), config, run_dir)
        trainer.load_state_dict(state)
        if "config" in state:
            changes = config_changes(from_toml(state["config"], source=str(run_dir / CHECKPOINT),
                                               default_model_config=lambda name: get_entry(name).config), config)
            if changes:
                trainer.notes.append({"kind": "resume", "step": trainer.global_step, "changed": changes})
        done = trainer.epoch
        if done >= config.train.epochs and trainer.batch_index == 0:
            if done > config.train.epochs:
                raise RunDirError(f"{run_dir} has trained {done} epochs; --epochs must be more than {done} "
                                  "to continue it")
            if group.is_main:
                print(f"genzoo: {run_dir} has already trained its {done} epochs; give --epochs N (more than "
                      f"{done}) to continue it", file=sys.stderr)
            return trainer
    elif group.is_main:
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
    if group.is_main:
        atomic_write_text(run_dir / CONFIG, to_toml(config))
    trainer.fit()
    return trainer


def initialize_from(model: GenerativeModel, config: RunConfig) -> None:
    """Load the trained state of ``config.train.init_from`` (a run directory or zoo name) into
    ``model``; a clear error if it is another model or does not fit this config."""
    source = config.train.init_from
    try:
        trained = load_run(source)
    except RunDirError as exc:
        raise ConfigError(f"train.init_from: {exc}") from None
    if trained.config.model != config.model:
        raise ConfigError(f"train.init_from: {source} is a {trained.config.model!r}, not a {config.model!r}")
    try:
        model.load_state_dict(trained.model.state_dict())
    except RuntimeError as exc:
        detail = str(exc).splitlines()[1].strip() if len(str(exc).splitlines()) > 1 else str(exc)
        raise ConfigError(f"train.init_from: the weights of {source} do not fit this config ({detail})") from None


def with_data_root(config: RunConfig) -> RunConfig:
    """The config with the data root a named dataset is read from written out, so that the run
    directory remembers where its data came from (``genzoo plot RUN`` then finds it)."""
    if config.data.dataset in FIXED_SHAPES and not config.data.data_dir:
        root = str(default_data_root().resolve())
        return dataclasses.replace(config, data=dataclasses.replace(config.data, data_dir=root))
    return config


# Fields a resumed run may change: the budget, where it runs and reads data, how fast it learns,
# and what it does around training. Anything else would not continue the same experiment.
RESUMABLE = {("train", "epochs"), ("train", "device"), ("data", "data_dir"), ("train", "overhead_budget"),
             ("train", "compile"), ("train", "lr_schedule"), ("train", "lr_final"), ("train", "channels_last"),
             ("train", "init_from")}  # read at a fresh start only


def resumable(section: str, name: str) -> bool:
    return (section, name) in RESUMABLE or (section == "model" and name.endswith("learning_rate"))


def config_changes(saved: RunConfig, config: RunConfig) -> dict[str, list]:
    """{"section.field": [old, new]} for every field ``config`` changes."""
    changes = {}
    for section, ours in config.sections().items():
        theirs = saved.sections()[section]
        for field in dataclasses.fields(ours):
            old, new = getattr(theirs, field.name), getattr(ours, field.name)
            if old != new:
                changes[f"{section}.{field.name}"] = [old, new]
    return changes


def check_resumable(saved: RunConfig, config: RunConfig, run_dir: Path) -> None:
    """A clear error for the first field that ``config`` changes and a resume may not."""
    if saved.model != config.model:
        raise RunDirError(f"{run_dir / CONFIG} names model {config.model!r}, but the checkpoint is a {saved.model!r}; "
                          "restore config.toml or start a new run")
    for name, (old, new) in config_changes(saved, config).items():
        if not resumable(*name.split(".")):
            raise RunDirError(f"{name} is {new!r} in {run_dir / CONFIG} but {old!r} in the checkpoint; a resumed "
                              "run may change only the epochs, device, data_dir and learning rates (restore the "
                              "field or start a new run)")


def require_run_dir(run_dir: str | Path, *files: str) -> Path:
    run_dir = Path(run_dir)
    if run_dir.is_file():
        raise RunDirError(f"{run_dir} is a file, not a run directory")
    if not run_dir.is_dir():
        raise RunDirError(f"run directory {run_dir} does not exist")
    for name in files:
        if not (run_dir / name).exists():
            raise RunDirError(f"{run_dir} has no {name}; is it a genzoo run directory?")
    return run_dir


def load_run(run_dir: str | Path, *, device: str | torch.device = "cpu") -> Run:
    """Load a run directory's config and trained model (in eval mode, on ``device``); ``zoo:NAME``
    loads a model shipped with genzoo (after checking its checksums)."""
    name, output = str(run_dir), zoo.output_dir(run_dir)
    run_dir = require_run_dir(zoo.resolve(run_dir) if zoo.is_zoo_name(run_dir) else run_dir, CONFIG, META, WEIGHTS)
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
    state = model.complete_state(state)  # a shipped model may leave out what it can restore
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise RunDirError(f"{run_dir / WEIGHTS}: weights do not match the config (missing {missing[:3]}, "
                          f"unexpected {unexpected[:3]})")
    broken = [key for key, tensor in state.items() if tensor.is_floating_point() and not torch.isfinite(tensor).all()]
    if broken:
        raise RunDirError(f"{run_dir / WEIGHTS}: the weights hold NaN or infinite values ({', '.join(broken[:3])}); "
                          "the run diverged: resume an earlier state at a lower learning rate")
    model.to(device, memory_format=memory_format(model, channels_last=config.train.channels_last)).eval()
    return Run(run_dir, config, model, tuple(meta.get("class_names", ())), output, name)


def load(run_dir: str | Path, *, device: str | torch.device = "cpu") -> GenerativeModel:
    """The trained model of a run directory, ready to sample / encode (eval mode)."""
    return load_run(run_dir, device=device).model


def read_metrics(run_dir: Path) -> tuple[list[dict], list[dict]]:
    """The step and epoch records of a run's ``metrics.jsonl``."""
    path = Path(run_dir) / METRICS
    if not path.exists():
        raise RunDirError(f"{path} does not exist")
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise RunDirError(f"{path}: unreadable ({exc})") from None
    steps, epochs = [], []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError:
            if number == len(lines):  # the last record, cut short by a crash: it was never checkpointed
                break
            raise RunDirError(f"{path}: line {number} is not a JSON record") from None
        if record.get("kind") == "step":
            steps.append(record)
        elif record.get("kind") == "epoch":
            epochs.append(record)
    return steps, epochs
