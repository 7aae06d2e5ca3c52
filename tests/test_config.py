"""Configs: TOML round trip, overrides by name, and clear errors for unknown names and bad values."""

from __future__ import annotations

import pytest

import genzoo
from genzoo.config import apply_overrides, from_toml, to_toml
from genzoo.errors import ConfigError
from genzoo.registry import MODELS, get_entry


@pytest.mark.parametrize("name", sorted(MODELS))
def test_toml_round_trip_is_exact(name):
    config = apply_overrides(genzoo.default_config(name), ['dataset=some "odd" \\ path', "seed=7"])
    text = to_toml(config)
    assert from_toml(text, source="x", default_model_config=lambda n: get_entry(n).config) == config


def test_overrides_by_bare_and_qualified_name():
    config = apply_overrides(
        genzoo.default_config("vae"),
        ["latent_dim=8", "model.conv_channels=16,32", "train.epochs=3", "batch_norm=true", "kl_weight=0.5"],
    )
    assert config.model_config.latent_dim == 8
    assert config.model_config.conv_channels == (16, 32)
    assert config.model_config.batch_norm is True
    assert config.model_config.kl_weight == 0.5
    assert config.train.epochs == 3


@pytest.mark.parametrize(
    ("assignment", "message"),
    [
        ("latent_dims=3", "unknown option 'latent_dims'"),
        ("model.epochs=3", "unknown option model.epochs"),
        ("latent_dim=two", "expected an integer"),
        ("latent_dim=2.5", "expected an integer"),
        ("likelihood=poisson", "not one of bernoulli, gaussian"),
        ("batch_norm=maybe", "expected true or false"),
        ("kl_weight=heavy", "expected a number"),
        ("nosign", "expects key=value"),
        ("optim.lr=1", "unknown config section"),
    ],
)
def test_bad_overrides_are_clear_errors(assignment, message):
    with pytest.raises(ConfigError, match=message):
        apply_overrides(genzoo.default_config("vae"), [assignment])


def test_unknown_model_suggests_the_closest_name():
    with pytest.raises(ConfigError, match="did you mean 'vae'"):
        get_entry("vea")


def test_hand_written_toml_takes_defaults_for_omitted_fields():
    config = from_toml('[model]\nname = "cvae"\nlatent_dim = 4\n', source="x",
                       default_model_config=lambda n: get_entry(n).config)
    assert config.model_config.conditional and config.model_config.latent_dim == 4
    assert config.train == genzoo.TrainConfig()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[model]\nlatent_dim = 4\n", "needs name"),
        ('[model]\nname = "vae"\n[optimizer]\nlr = 1\n', "unknown table"),
        ('[model]\nname = "vae"\nlatent_dim = "big"\n', "expected an integer"),
        ("[model\n", "not valid TOML"),
    ],
)
def test_bad_toml_is_a_clear_error(text, message):
    with pytest.raises(ConfigError, match=message):
        from_toml(text, source="x", default_model_config=lambda n: get_entry(n).config)
