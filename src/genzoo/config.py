"""Run configuration: frozen dataclasses, saved as TOML, overridden by name.

A run's ``config.toml`` has three tables, ``[model]`` (its ``name`` and the fields of that model's
config dataclass), ``[data]`` and ``[train]``. Loading it back and training reproduces the run.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
import sys
import typing
from dataclasses import dataclass
from typing import Any, Literal

from .errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


@dataclass(frozen=True)
class Between:
    """The allowed values of a number field (of each item, for a list), declared on its type:
    ``latent_dim: Annotated[int, Between(1, 65536)]``. Checked whenever a config is made."""

    low: float | None = None
    high: float | None = None
    low_open: bool = False  # low itself is not allowed
    high_open: bool = False

    def check(self, name: str, value: float) -> None:
        below = self.low is not None and (value < self.low or (self.low_open and value == self.low))
        above = self.high is not None and (value > self.high or (self.high_open and value == self.high))
        if below or above:
            raise ConfigError(f"{name} must be {self.describe()}, not {value!r}")

    def describe(self) -> str:
        def number(x: float) -> str:
            return str(int(x)) if float(x).is_integer() else f"{x:g}"

        low = None if self.low is None else f"{'greater than' if self.low_open else 'at least'} {number(self.low)}"
        high = None if self.high is None else f"{'less than' if self.high_open else 'at most'} {number(self.high)}"
        if low == "greater than 0" and high is None:
            return "positive"
        return " and ".join(part for part in (low, high) if part)


# The field types of every config, by what a field means. Sizes stop far beyond any real network so
# that a typo (latent_dim=100000000) is an error, not an attempt to allocate hundreds of gigabytes.
Size = typing.Annotated[int, Between(1, 65_536)]  # units of a layer, latent dimensions
Channels = typing.Annotated[int, Between(1, 4096)]  # feature maps of a convolution
Count = typing.Annotated[int, Between(1, 1_000_000_000)]  # steps, chains, samples, updates
NonNegativeCount = typing.Annotated[int, Between(0, 1_000_000_000)]  # the same, where 0 means "none" or "all"
Rate = typing.Annotated[float, Between(0, None, low_open=True)]  # learning rates, scales, standard deviations
NonNegative = typing.Annotated[float, Between(0, None)]  # weights of loss terms, decay, budgets
Fraction = typing.Annotated[float, Between(0, 1, high_open=True)]  # probabilities, momentum, dropout
Seed = typing.Annotated[int, Between(0, 2**63 - 1)]  # what torch.Generator.manual_seed accepts


def validate(config: Any) -> None:
    """Check every field of a config dataclass against its declared type: finite numbers, items of
    lists, and the ``Between`` ranges. Raises :class:`ConfigError` naming the field."""
    hints = typing.get_type_hints(type(config), include_extras=True)
    for field in dataclasses.fields(config):
        value, hint = getattr(config, field.name), hints[field.name]
        if typing.get_origin(hint) is tuple:
            hint = typing.get_args(hint)[0]
            values = value
        else:
            values = (value,)
        ranges = [m for m in typing.get_args(hint)[1:] if isinstance(m, Between)] \
            if typing.get_origin(hint) is typing.Annotated else []
        for item in values:
            if isinstance(item, float) and not math.isfinite(item):
                raise ConfigError(f"{field.name} must be a finite number, not {item!r}")
            for allowed in ranges:
                allowed.check(field.name, item)


class Validated:
    """Base of every config dataclass: a config that exists is valid (see :func:`validate`)."""

    def __post_init__(self) -> None:
        validate(self)


@dataclass(frozen=True)
class DataConfig(Validated):
    dataset: str = "mnist"  # mnist | fashion-mnist | kmnist | fake | path of an image folder
    data_dir: str = ""  # root holding <dataset>/*.gz; "" means $GENZOO_DATA or ~/.cache/genzoo
    image_size: typing.Annotated[int, Between(4, 1024)] = 28  # image folders and fake only (IDX data: 28)
    channels: Literal[1, 3] = 1  # image folders and fake only: 1 grayscale, 3 RGB


@dataclass(frozen=True)
class TrainConfig(Validated):
    epochs: Count = 10
    batch_size: typing.Annotated[int, Between(1, 1_000_000)] = 128
    seed: Seed = 0  # weights, data order and every random draw of training follow from it
    device: str = "auto"  # auto | cpu | cuda | cuda:K | mps
    max_batches: NonNegativeCount = 0  # training batches per epoch; 0 = the whole training split
    eval_batches: NonNegativeCount = 0  # test batches per evaluation; 0 = the whole test split
    # Convolutional models train in channels-last memory layout: measured 1.16-1.32x faster on
    # 2 CPU cores for vae, dae, dcgan (both presets) and the context encoder (benchmarks/speed).
    channels_last: bool = True
    # Share of training time that the per-epoch extras (the preview grid, the sample-quality
    # check) may take; they run after the first and the last epoch and in between whenever the
    # budget allows. 1000 samples x 1000 Gibbs sweeps cost a DBN 16 s against its 3 s epochs.
    overhead_budget: NonNegative = 0.1
    # Learning rates over the run: constant, or decayed (cosine or linear) from the model's rates to
    # lr_final times them at the last step of `epochs` (a resumed run given more epochs re-plans).
    lr_schedule: Literal["constant", "cosine", "linear"] = "constant"
    lr_final: typing.Annotated[float, Between(0, 1)] = 0.0
    # torch.compile the model's networks. Off by default: on 2 CPU cores it did not pay for the
    # MLP VAE or the MLP GAN (see the README's speed table) and costs 10-60 s of compilation.
    compile: bool = False
    # Mixed precision: autocast of the training and evaluation steps to bfloat16 (CPU and CUDA), which
    # keeps float32's range and so needs no loss scaling. float16 is not offered: its gradients need
    # a scaler threaded through every model's own backward and step calls. Every figure here is float32.
    precision: Literal["float32", "bf16"] = "float32"
    # Fine-tuning: a run directory or zoo:NAME of the same model whose trained state this run
    # starts from (weights and buffers, its update counters too, so that schedules they drive, such
    # as a KL warm-up or greedy pretraining, do not restart). Read at a fresh start only.
    init_from: str = ""

    def __post_init__(self) -> None:
        super().__post_init__()
        if not DEVICE.fullmatch(self.device):
            raise ConfigError(f"device must be auto, cpu, cuda, cuda:K or mps, not {self.device!r}")


DEVICE = re.compile(r"auto|cpu|mps|cuda(:\d+)?")


@dataclass(frozen=True)
class RunConfig:
    model: str  # registry name
    model_config: Any  # that model's config dataclass
    data: DataConfig = DataConfig()
    train: TrainConfig = TrainConfig()

    def sections(self) -> dict[str, Any]:
        return {"model": self.model_config, "data": self.data, "train": self.train}


def field_types(config_class: type) -> dict[str, Any]:
    hints = typing.get_type_hints(config_class)
    return {f.name: hints[f.name] for f in dataclasses.fields(config_class)}


def coerce(annotation: Any, value: Any, where: str) -> Any:
    """Check ``value`` (from TOML or a ``--set`` string) against a config field's type."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return coerce(typing.get_args(annotation)[0], value, where)
    if origin is Literal:
        choices = typing.get_args(annotation)
        if isinstance(value, str) and all(isinstance(c, int) for c in choices):
            value = coerce(int, value, where)
        if value not in choices or isinstance(value, bool):
            raise ConfigError(f"{where}: {value!r} is not one of {', '.join(map(str, choices))}")
        return value
    if origin is tuple:
        item_type = typing.get_args(annotation)[0]
        if isinstance(value, str):
            text = value.strip().strip("[]()")
            value = [part for part in text.replace(",", " ").split() if part]
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        return tuple(coerce(item_type, item, where) for item in value)
    if annotation is bool:
        if isinstance(value, str):
            lowered = value.lower()
            if lowered in ("true", "yes", "1", "on"):
                return True
            if lowered in ("false", "no", "0", "off"):
                return False
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{where}: expected true or false, got {value!r}")
    if annotation is int:
        try:
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise ValueError
            return int(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{where}: expected an integer, got {value!r}") from None
    if annotation is float:
        try:
            if isinstance(value, bool):
                raise ValueError
            return float(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{where}: expected a number, got {value!r}") from None
    if annotation is str:
        return str(value)
    raise TypeError(f"{where}: unsupported config field type {annotation!r}")  # a genzoo bug


def replace_fields(config: Any, values: dict[str, Any], section: str) -> Any:
    """``dataclasses.replace`` with type checks; unknown names are an error."""
    types = field_types(type(config))
    unknown = sorted(set(values) - set(types))
    if unknown:
        raise ConfigError(
            f"unknown option {section}.{unknown[0]}; {section} options are: {', '.join(types)}"
        )
    checked = {name: coerce(types[name], value, f"{section}.{name}") for name, value in values.items()}
    try:
        return dataclasses.replace(config, **checked)
    except ConfigError as exc:
        raise ConfigError(f"{section}.{exc}") from None


def apply_overrides(config: RunConfig, assignments: list[str]) -> RunConfig:
    """Apply ``key=value`` strings. ``key`` is a field name (``latent_dim``) or a qualified one
    (``model.latent_dim``, ``train.seed``); a bare name must be unique across the sections."""
    sections = config.sections()
    updates: dict[str, dict[str, Any]] = {name: {} for name in sections}
    for assignment in assignments:
        key, sep, value = assignment.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ConfigError(f"--set expects key=value, got {assignment!r}")
        section, dot, name = key.rpartition(".")
        if dot:
            if section not in sections:
                raise ConfigError(f"unknown config section {section!r} in {key!r}; use model, data or train")
            owners = [section]
        else:
            owners = [s for s, cfg in sections.items() if name in field_types(type(cfg))]
            if not owners:
                raise ConfigError(f"unknown option {name!r} for model {config.model!r}; "
                                  f"see `genzoo models --verbose` or the saved config.toml")
            if len(owners) > 1:
                raise ConfigError(f"{name!r} is ambiguous; write {' or '.join(f'{o}.{name}' for o in owners)}")
        updates[owners[0]][name] = value.strip()
    return RunConfig(
        model=config.model,
        model_config=replace_fields(config.model_config, updates["model"], "model"),
        data=replace_fields(config.data, updates["data"], "data"),
        train=replace_fields(config.train, updates["train"], "train"),
    )


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)  # a JSON string is a valid TOML basic string
    if isinstance(value, (tuple, list)):
        return "[" + ", ".join(_toml_value(item) for item in value) + "]"
    raise TypeError(f"cannot write {value!r} to TOML")


def to_toml(config: RunConfig) -> str:
    lines = ["# genzoo run configuration: `genzoo train --config THIS_FILE` reproduces the run.", ""]
    for section, cfg in config.sections().items():
        lines.append(f"[{section}]")
        if section == "model":
            lines.append(f"name = {_toml_value(config.model)}")
        for field in dataclasses.fields(cfg):
            lines.append(f"{field.name} = {_toml_value(getattr(cfg, field.name))}")
        lines.append("")
    return "\n".join(lines)


def from_toml(text: str, *, source: str, default_model_config) -> RunConfig:
    """Parse a config written by :func:`to_toml` (or by hand; omitted fields take defaults).

    ``default_model_config(name)`` returns the default config of the model named in ``[model]``.
    """
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source}: not valid TOML ({exc})") from None
    unknown = sorted(set(document) - {"model", "data", "train"})
    if unknown:
        raise ConfigError(f"{source}: unknown table [{unknown[0]}]; expected [model], [data], [train]")
    for section in ("model", "data", "train"):
        if not isinstance(document.get(section, {}), dict):
            raise ConfigError(f"{source}: {section} must be a table ([{section}] followed by its fields), "
                              f"not {document[section]!r}")
    model_table = dict(document.get("model", {}))
    name = model_table.pop("name", None)
    if not isinstance(name, str):
        raise ConfigError(f"{source}: [model] needs name = \"<model>\"")
    return RunConfig(
        model=name,
        model_config=replace_fields(default_model_config(name), model_table, "model"),
        data=replace_fields(DataConfig(), document.get("data", {}), "data"),
        train=replace_fields(TrainConfig(), document.get("train", {}), "train"),
    )
