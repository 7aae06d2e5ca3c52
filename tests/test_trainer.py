"""The training loop: resume equivalence, Ctrl-C, divergence, and what a run directory holds."""

from __future__ import annotations

import dataclasses
import json
import os
import signal

import pytest
import torch
from safetensors.torch import load_file

import genzoo
from genzoo.errors import ConfigError, RunDirError, TrainingDiverged
from genzoo.trainer import Callback

from .test_contract import tiny_config


def config_for(name: str, epochs: int):
    config = tiny_config(name, epochs=epochs, max_batches=12, eval_batches=2)
    if name == "vae":  # exercise the loader's random draws too
        config = genzoo.apply_overrides(config, ["binarize=dynamic"])
    if name == "rbm":  # persistent chains are state that must survive the interruption
        config = genzoo.apply_overrides(config, ["persistent=true"])
    return config


def weights(run_dir):
    return load_file(str(run_dir / "model.safetensors"))


def records(run_dir, kind="step"):
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    return [record for record in map(json.loads, lines) if record["kind"] == kind]


class InterruptAt(Callback):
    """Sends the process a real SIGINT (as Ctrl-C does) after a given step."""

    def __init__(self, step: int):
        self.step = step

    def on_step_end(self, trainer, metrics):
        if trainer.global_step == self.step:
            os.kill(os.getpid(), signal.SIGINT)


@pytest.mark.parametrize("name", ["vae", "dae", "gan", "rbm"])  # noise, dropout, two optimizers, chains
def test_interrupted_and_resumed_run_ends_with_identical_weights(name, tmp_path):
    full = genzoo.train(config_for(name, 3), tmp_path / "full", progress=False)
    assert not full.stop_requested

    # Stop at an epoch boundary, then extend the run to 3 epochs.
    genzoo.train(config_for(name, 1), tmp_path / "boundary", progress=False)
    genzoo.train(config_for(name, 3), tmp_path / "boundary", resume=True, progress=False)

    # Ctrl-C in the middle of epoch 2, then resume.
    stopped = genzoo.train(config_for(name, 3), tmp_path / "ctrl-c", progress=False, callbacks=(InterruptAt(17),))
    assert stopped.stop_requested and stopped.global_step == 17
    resumed = genzoo.train(config_for(name, 3), tmp_path / "ctrl-c", resume=True, progress=False)
    assert resumed.global_step == 36 and not resumed.stop_requested

    reference = weights(tmp_path / "full")
    for run in ("boundary", "ctrl-c"):
        other = weights(tmp_path / run)
        assert reference.keys() == other.keys()
        for key in reference:
            assert torch.equal(reference[key], other[key]), f"{run}: {key} differs"
        assert records(tmp_path / run) == records(tmp_path / "full")


def test_different_seeds_train_different_weights(tmp_path):
    a = genzoo.train(config_for("vae", 1), tmp_path / "a", progress=False)
    config = config_for("vae", 1)
    config = dataclasses.replace(config, train=dataclasses.replace(config.train, seed=1))
    b = genzoo.train(config, tmp_path / "b", progress=False)
    assert not torch.equal(a.model.to_mean.weight, b.model.to_mean.weight)


class PoisonAt(Callback):
    def __init__(self, step: int):
        self.step = step

    def on_step_end(self, trainer, metrics):
        if trainer.global_step == self.step:
            with torch.no_grad():
                next(trainer.model.parameters()).fill_(float("nan"))


def test_nan_loss_stops_training_and_keeps_the_last_good_checkpoint(tmp_path):
    run = tmp_path / "run"
    with pytest.raises(TrainingDiverged, match=r"loss became nan at epoch 2, step 16.*epoch 1"):
        genzoo.train(config_for("vae", 3), run, progress=False, callbacks=(PoisonAt(15),))
    checkpoint = torch.load(run / "checkpoint.pt", weights_only=True)
    assert checkpoint["epoch"] == 1 and checkpoint["global_step"] == 12
    assert all(torch.isfinite(t).all() for t in weights(run).values())
    model = genzoo.load(run)  # still loadable
    assert torch.isfinite(model.sample(2, generator=torch.Generator().manual_seed(0))).all()


def test_run_directory_holds_config_weights_checkpoint_metrics_and_grids(tmp_path):
    run = tmp_path / "run"
    genzoo.train(config_for("cvae", 2), run, progress=False)
    names = {p.name for p in run.iterdir()}
    assert {"config.toml", "meta.json", "model.safetensors", "checkpoint.pt", "metrics.jsonl", "samples"} <= names
    assert sorted(p.name for p in (run / "samples").iterdir()) == ["epoch_0001.png", "epoch_0002.png"]
    epochs = records(run, "epoch")
    assert [e["epoch"] for e in epochs] == [1, 2]
    assert all("test/loss" in e and "train/loss" in e and e["images_per_second"] > 0 for e in epochs)
    assert genzoo.read_config(run / "config.toml") == config_for("cvae", 2)


def test_training_into_an_existing_run_is_refused(tmp_path):
    genzoo.train(config_for("ae", 1), tmp_path / "run", progress=False)
    with pytest.raises(RunDirError, match="already holds a run"):
        genzoo.train(config_for("ae", 1), tmp_path / "run", progress=False)
    with pytest.raises(RunDirError, match="does not exist"):
        genzoo.train(config_for("ae", 1), tmp_path / "nowhere", resume=True, progress=False)


def test_a_run_started_from_another_continues_its_model(tmp_path):
    """train.init_from: the new run (here with another objective) starts from the source's trained
    state, update counter included, not from a fresh initialisation."""
    genzoo.train(config_for("vae", 3), tmp_path / "source", progress=False)
    fine_tune = genzoo.apply_overrides(config_for("vae", 1), ["objective=iwae", "importance_samples=3",
                                                             f"train.init_from={tmp_path / 'source'}"])
    genzoo.train(fine_tune, tmp_path / "tuned", progress=False)
    fresh = genzoo.apply_overrides(config_for("vae", 1), ["objective=iwae", "importance_samples=3"])
    genzoo.train(fresh, tmp_path / "fresh", progress=False)
    source_loss = records(tmp_path / "source")[-1]["loss"]
    tuned, fresh_loss = records(tmp_path / "tuned")[0]["loss"], records(tmp_path / "fresh")[0]["loss"]
    assert tuned < source_loss + 10 < fresh_loss  # the IWAE bound is at most the ELBO in expectation
    assert int(weights(tmp_path / "tuned")["updates"]) == 36 + 12


def test_a_run_cannot_start_from_a_missing_or_different_model(tmp_path):
    genzoo.train(config_for("vae", 1), tmp_path / "vae", progress=False)
    genzoo.train(config_for("dae", 1), tmp_path / "dae", progress=False)
    cases = [(tmp_path / "nowhere", "train.init_from: run directory .* does not exist"),
             (tmp_path / "dae", "is a 'dae', not a 'vae'")]
    for source, message in cases:
        with pytest.raises(ConfigError, match=message):
            genzoo.train(genzoo.apply_overrides(config_for("vae", 1), [f"train.init_from={source}"]),
                         tmp_path / "new", progress=False)
    wider = genzoo.apply_overrides(config_for("vae", 1), ["latent_dim=3", f"train.init_from={tmp_path / 'vae'}"])
    with pytest.raises(ConfigError, match="do not fit this config"):
        genzoo.train(wider, tmp_path / "new", progress=False)
