"""Fault injection: bad input of every kind is one clear line and a non-zero exit; a run killed
(SIGKILL, as a power cut) at chosen moments resumes to the weights of an uninterrupted run; a run
that diverges, fills the disk or dies before its first checkpoint loses no work."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file, save_file

import genzoo
from genzoo import fileio
from genzoo.cli import main
from genzoo.config import to_toml
from genzoo.errors import RunDirError, TrainingDiverged
from genzoo.trainer import Callback

from .test_contract import tiny_config


def tiny(name="vae", epochs=2, **train):
    config = tiny_config(name, epochs=epochs, max_batches=8, eval_batches=1, **train)
    return genzoo.apply_overrides(config, ["binarize=dynamic"]) if name == "vae" else config


def cli_config(tmp_path, name="vae", epochs=2):
    path = tmp_path / f"{name}.toml"
    path.write_text(to_toml(tiny(name, epochs)))
    return path


def weights(run):
    return load_file(str(run / "model.safetensors"))


def assert_same_weights(a, b):
    wa, wb = weights(a), weights(b)
    assert wa.keys() == wb.keys()
    for key in wa:
        assert torch.equal(wa[key], wb[key]), key


def one_line_error(capsys, argv) -> str:
    code = main([str(a) for a in argv])
    err = capsys.readouterr().err.strip()
    assert code != 0, err
    assert "Traceback" not in err and len(err.splitlines()) == 1, err
    return err


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A finished two-epoch tiny VAE run."""
    path = tmp_path_factory.mktemp("runs") / "vae"
    genzoo.train(tiny(), path, progress=False)
    return path


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("folders")
    rng = np.random.default_rng(0)
    flat = root / "flat"
    flat.mkdir()
    for i in range(12):
        Image.fromarray((rng.random((28, 28)) * 255).astype(np.uint8)).save(flat / f"{i:02d}.png")
    bomb = root / "bomb" / "a"
    bomb.mkdir(parents=True)
    for i in range(10):
        Image.new("L", (8, 8)).save(bomb / f"{i}.png")
    Image.new("1", (20_000, 20_000)).save(bomb / "9-huge.png")  # 400 M pixels, a few KB on disk
    deep = root / "deep" / "a"
    deep.mkdir(parents=True)
    for i in range(10):
        Image.fromarray(np.full((8, 8), 32768 + i, dtype=np.uint16)).save(deep / f"{i}.png")
    (root / "binary.toml").write_bytes(bytes(range(256)))
    (root / "utf16.toml").write_bytes('[model]\nname = "vae"\n'.encode("utf-16"))
    (root / "flat-model.toml").write_text('model = "vae"\n')
    (root / "data-number.toml").write_text('data = 5\n[model]\nname = "vae"\n')
    return root


BAD_INPUT = [
    (["train", "vae", "--dry-run", "--seed", str(2**64)], "train.seed must be at least 0 and at most"),
    (["train", "vae", "--dry-run", "--set", "conv_channels=-4,8"], "model.conv_channels must be at least 1"),
    (["train", "vae", "--dry-run", "--set", "learning_rate=nan"], "model.learning_rate must be a finite number"),
    (["train", "vae", "--dry-run", "--set", "learning_rate=-0.001"], "model.learning_rate must be positive"),
    (["train", "vae", "--dry-run", "--set", "learning_rate=inf"], "model.learning_rate must be a finite number"),
    (["train", "vae", "--dry-run", "--set", "gaussian_std=0"], "model.gaussian_std must be positive"),
    (["train", "rbm", "--dry-run", "--set", "persistent_chains=0"], "model.persistent_chains must be at least 1"),
    (["train", "vae", "--dry-run", "--set", "data.image_size=-4"], "data.image_size must be at least 4"),
    (["train", "vae", "--dry-run", "--set", "latent_dim=1e8"], "expected an integer"),
    (["train", "vae", "--dry-run", "--set", "latent_dim=100000000"], "latent_dim must be at least 1 and at most 65536"),
    (["train", "gan", "--dry-run", "--set", "generator_dims=65536,65536,65536"], "needs about"),
    (["train", "ae", "--dry-run", "--set", "hidden_dims=0"], "model.hidden_dims must be at least 1"),
    (["train", "vae", "--dry-run", "--set", "train.max_batches=-1"], "train.max_batches must be at least 0"),
    (["train", "vae", "--dry-run", "--set", "train.eval_batches=-1"], "train.eval_batches must be at least 0"),
    (["train", "vae", "--dry-run", "--set", "data.channels=2"], "data.channels: 2 is not one of 1, 3"),
    (["train", "vae", "--dry-run", "--dataset", "mnist", "--set", "data.image_size=32"], "28 x 28 grayscale"),
    (["train", "vae", "--dry-run", "--dataset", "/no/such/dir"], "dataset folder /no/such/dir does not exist"),
    (["train", "gan", "--dry-run", "--set", "dropout=1.5"], "model.dropout must be at least 0 and less than 1"),
    (["train", "--config", "{folders}/binary.toml"], "not a UTF-8 text file"),
    (["train", "--config", "{folders}/utf16.toml"], "not a UTF-8 text file"),
    (["train", "--config", "{folders}/flat-model.toml"], "model must be a table"),
    (["train", "--config", "{folders}/data-number.toml"], "data must be a table"),
    (["train", "ae", "--dataset", "{folders}/bomb", "--epochs", "1", "--run-dir", "{tmp}/b"], "decompression bomb"),
    (["plot", "{run}", "samples", "--num", "-5"], "--num must be between 0"),
    (["sample", "{run}", "--num", "3000000", "--out", "{tmp}/x.png"], "a PNG grid holds at most"),
    (["sample", "{run}", "--num", "30000000", "--out", "{tmp}/x.npy"], "GiB as float32"),
    (["sample", "{run}", "--num", "4", "--out", "/proc/x.png"], "cannot write /proc/x.png"),
    (["sample", "{run}", "--num", "4", "--out", "{tmp}"], "expected a .png or .npy"),
    (["plot", "{tmp}/file.txt", "samples"], "is a file, not a run directory"),
    (["train", "--resume", "{run}", "--set", "latent_dim=4"], "--set model.latent_dim: a resumed run may change only"),
    (["train", "--resume", "{run}", "--epochs", "1"], "has trained 2 epochs; --epochs must be more than 2"),
]


@pytest.mark.parametrize(("argv", "message"), BAD_INPUT, ids=[" ".join(a)[:60] for a, _ in BAD_INPUT])
def test_bad_input_is_one_clear_line(argv, message, run, folders, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("GENZOO_DATA", str(tmp_path / "nowhere"))
    (tmp_path / "file.txt").write_text("x")
    argv = [a.format(run=run, folders=folders, tmp=tmp_path) for a in argv]
    assert message in one_line_error(capsys, argv)


def test_sixteen_bit_and_flat_folders_train(folders, tmp_path, capsys):
    deep = genzoo.load_dataset(str(folders / "deep"), "train", image_size=8)
    assert 120 <= int(deep.images.float().mean()) <= 130  # 32768 / 65535 of 255, not clipped to 255
    assert main(["train", "ae", "--dataset", str(folders / "flat"), "--batch-size", "4", "--epochs", "1",
                 "--run-dir", str(tmp_path / "flat"), "--no-progress"]) == 0
    assert (tmp_path / "flat" / "samples" / "epoch_0001.png").exists()


def test_resuming_a_finished_run_without_more_epochs_changes_nothing(run, tmp_path, capsys):
    copy = tmp_path / "vae"
    shutil.copytree(run, copy)
    before = (copy / "config.toml").read_text()
    assert main(["train", "--resume", str(copy), "--epochs", "2", "--no-progress"]) == 0
    assert "has already trained its 2 epochs" in capsys.readouterr().err
    assert (copy / "config.toml").read_text() == before


def test_an_edited_config_names_the_field_that_differs(run, tmp_path, capsys):
    copy = tmp_path / "vae"
    shutil.copytree(run, copy)
    text = (copy / "config.toml").read_text()
    (copy / "config.toml").write_text(text.replace("latent_dim = 2", "latent_dim = 8"))
    err = one_line_error(capsys, ["train", "--resume", copy, "--epochs", "3"])
    assert "model.latent_dim is 8" in err and "but 2 in the checkpoint" in err
    (copy / "config.toml").write_text(text.replace('name = "vae"', 'name = "cvae"'))
    assert "the checkpoint is a 'vae'" in one_line_error(capsys, ["train", "--resume", copy, "--epochs", "3"])


def test_resume_at_a_lower_learning_rate_is_recorded(run, tmp_path, capsys):
    copy = tmp_path / "vae"
    shutil.copytree(run, copy)
    assert main(["train", "--resume", str(copy), "--epochs", "3", "--set", "learning_rate=0.0001",
                 "--no-progress"]) == 0
    assert "learning_rate = 0.0001" in (copy / "config.toml").read_text()
    records = [json.loads(line) for line in (copy / "metrics.jsonl").read_text().splitlines()]
    [note] = [r for r in records if r["kind"] == "resume"]
    assert note["changed"]["model.learning_rate"] == [0.001, 0.0001]
    assert note["changed"]["train.epochs"] == [2, 3]


class PoisonLastStep(Callback):
    """Makes a weight NaN at the last step of epoch 2, after the step's (finite) loss was taken."""

    def on_step_end(self, trainer, metrics):
        if trainer.epoch == 1 and trainer.batch_index == trainer._batches_per_epoch():
            with torch.no_grad():
                next(trainer.model.parameters()).view(-1)[0] = float("nan")


def test_nan_in_the_last_step_is_never_saved(tmp_path, capsys):
    with pytest.raises(TrainingDiverged, match="became non-finite in epoch 2"):
        genzoo.train(tiny(epochs=3), tmp_path / "run", progress=False, callbacks=(PoisonLastStep(),))
    saved = weights(tmp_path / "run")
    assert all(torch.isfinite(t).all() for t in saved.values() if t.is_floating_point())
    assert torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=True)["epoch"] == 1
    assert main(["sample", str(tmp_path / "run"), "--num", "4", "--out", str(tmp_path / "s.png")]) == 0
    capsys.readouterr()
    broken = {k: (v * float("nan") if v.is_floating_point() else v) for k, v in saved.items()}
    save_file(broken, str(tmp_path / "run" / "model.safetensors"))
    assert "hold NaN or infinite values" in one_line_error(
        capsys, ["sample", tmp_path / "run", "--num", "4", "--out", tmp_path / "s.png"])


def test_a_full_disk_at_the_first_save_leaves_a_restartable_run(tmp_path, monkeypatch, capsys):
    real = fileio.atomic_write_bytes
    calls = {"n": 0}

    def full_disk(path, data):
        if path.name == "checkpoint.pt":
            calls["n"] += 1
            raise RunDirError(f"disk full while writing {path}; its previous version is intact")
        return real(path, data)

    monkeypatch.setattr("genzoo.trainer.atomic_write_bytes", full_disk)
    with pytest.raises(RunDirError, match="disk full"):
        genzoo.train(tiny(), tmp_path / "run", progress=False)
    monkeypatch.undo()
    genzoo.train(tiny(), tmp_path / "run", progress=False)  # restarts in place
    assert "stopped before its first checkpoint; starting it again" in capsys.readouterr().err
    genzoo.train(tiny(), tmp_path / "clean", progress=False)
    assert_same_weights(tmp_path / "run", tmp_path / "clean")


def test_unwritable_plots_and_samples_are_clear_errors(run, tmp_path, capsys):
    copy = tmp_path / "vae"
    shutil.copytree(run, copy)
    shutil.rmtree(copy / "plots", ignore_errors=True)
    (copy / "plots").write_text("not a folder")
    assert "is not a directory" in one_line_error(capsys, ["plot", copy, "samples"])
    shutil.rmtree(copy / "samples")
    (copy / "samples").write_text("not a folder")
    assert "exists and is not a directory" in one_line_error(capsys, ["train", "--resume", copy, "--epochs", "3"])


def test_a_cut_metrics_line_and_orphan_files_are_handled(run, tmp_path, capsys):
    copy = tmp_path / "vae"
    shutil.copytree(run, copy)
    with open(copy / "metrics.jsonl", "a") as log:
        log.write('{"kind": "step", "epo')  # a crash mid-write
    (copy / ".checkpoint.pt.abc123.tmp").write_bytes(b"half")
    (copy / "samples" / ".epoch_0003.png.xyz.tmp").write_bytes(b"half")
    assert main(["plot", str(copy), "losses", "--out", str(tmp_path / "l.png")]) == 0
    assert main(["train", "--resume", str(copy), "--epochs", "3", "--no-progress"]) == 0
    assert not list(copy.glob(".*.tmp")) and not list((copy / "samples").glob(".*.tmp"))
    lines = (copy / "metrics.jsonl").read_text().splitlines()
    assert all(json.loads(line) for line in lines)


def test_different_process_random_states_train_identical_weights(tmp_path):
    torch.manual_seed(1)
    genzoo.train(tiny("gan"), tmp_path / "a", progress=False)
    torch.manual_seed(2)
    torch.rand(100)
    genzoo.train(tiny("gan"), tmp_path / "b", progress=False)
    assert_same_weights(tmp_path / "a", tmp_path / "b")


# kill -9 at chosen points of the loop (see genzoo.faults), then resume: the weights must equal an
# uninterrupted run's, bit for bit. "checkpoint:1" is right after the checkpoint a run saves before
# its first step; "weights:2" between the two files of the first epoch's checkpoint; "write:4" with a
# temporary file written but not renamed; "step"/"log" mid-epoch.
KILLS = ["checkpoint:1", "step:5", "log:11", "weights:2", "write:4", "step:13"]


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    path = tmp_path_factory.mktemp("reference") / "run"
    config = path.parent / "vae.toml"
    config.write_text(to_toml(tiny()))
    assert main(["train", "--config", str(config), "--run-dir", str(path), "--no-progress"]) == 0
    return path


@pytest.mark.parametrize("fault", KILLS)
def test_killed_runs_resume_to_identical_weights(fault, uninterrupted, tmp_path):
    config = cli_config(tmp_path)
    run = tmp_path / "run"
    # the same number of threads as the reference run in this process: float sums depend on it
    env = {**os.environ, "GENZOO_FAULT": fault, "OMP_NUM_THREADS": str(torch.get_num_threads())}
    done = subprocess.run([sys.executable, "-m", "genzoo.cli", "train", "--config", str(config), "--run-dir",
                           str(run), "--no-progress"], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == -9, done.stderr[-2000:]
    assert main(["train", "--resume", str(run), "--no-progress"]) == 0
    assert_same_weights(run, uninterrupted)
    steps = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    reference = [json.loads(line) for line in (uninterrupted / "metrics.jsonl").read_text().splitlines()]
    assert [r["loss"] for r in steps if r["kind"] == "step"] == [r["loss"] for r in reference if r["kind"] == "step"]
    assert not list(run.glob(".*.tmp"))
