"""Run configuration: frozen dataclasses, saved as TOML, overridden by name.

A run's ``config.toml`` has three tables, ``[model]`` (its ``name`` and the fields of that model's
config dataclass), ``[data]`` and ``[train]``. Loading it back and training reproduces the run.
"""

from __future__ import annotations

import dataclasses
import json
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
class DataConfig:
    dataset: str = "mnist"  # mnist | fashion-mnist | kmnist | fake | path of an image folder
    data_dir: str = ""  # root holding <dataset>/*.gz; "" means $GENZOO_DATA or ~/.cache/genzoo
    image_size: int = 28  # image folders and fake only (IDX datasets are 28 x 28)
    channels: int = 1  # image folders and fake only: 1 grayscale, 3 RGB


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 10
    batch_size: int = 128
    seed: int = 0  # weights, data order and every random draw of training follow from it
    device: Literal["auto", "cpu", "cuda", "mps"] = "auto"
    max_batches: int = 0  # training batches per epoch; 0 = the whole training split
    eval_batches: int = 0  # test batches per evaluation; 0 = the whole test split


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
    if origin is Literal:
        choices = typing.get_args(annotation)
        if value not in choices:
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
    return dataclasses.replace(config, **checked)


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
