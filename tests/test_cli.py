"""CLI smoke tests on fake data for every model, and one-line errors for bad input."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from genzoo.cli import main
from genzoo.models.base import Sampler
from genzoo.plots import PLOTS, kinds_for
from genzoo.registry import MODELS

from .tiny_configs import tiny_overrides

FAST = ["--dataset", "fake", "--epochs", "1", "--batch-size", "32", "--no-progress",
        "--set", "max_batches=3", "--set", "eval_batches=2"]


def run_cli(*argv) -> int:
    return main([str(a) for a in argv])


def tiny_set(name):
    return [arg for override in tiny_overrides(name) for arg in ("--set", override)]


@pytest.fixture(scope="module")
def trained_runs(tmp_path_factory):
    """One tiny run per model, trained through the CLI."""
    root = tmp_path_factory.mktemp("runs")
    runs = {}
    for name in MODELS:
        assert run_cli("train", name, *FAST, *tiny_set(name), "--run-dir", root / name) == 0
        runs[name] = root / name
    return runs


@pytest.mark.parametrize("name", sorted(MODELS))
def test_dry_run(name, capsys):
    assert run_cli("train", name, "--dry-run", "--no-progress") == 0
    assert "dry run" in capsys.readouterr().out


@pytest.mark.parametrize("name", sorted(MODELS))
def test_train_writes_a_complete_run(name, trained_runs):
    run = trained_runs[name]
    for path in ("config.toml", "model.safetensors", "checkpoint.pt", "metrics.jsonl",
                 "samples/epoch_0001.png", "plots/losses.png"):
        assert (run / path).exists(), path


@pytest.mark.parametrize("name", sorted(MODELS))
def test_every_applicable_plot(name, trained_runs, tmp_path):
    from genzoo.runs import load_run

    model = load_run(trained_runs[name]).model
    kinds = kinds_for(model)
    assert "losses" in kinds
    for kind in kinds:
        out = tmp_path / f"{kind}.png"
        assert run_cli("plot", trained_runs[name], kind, "--out", out, "--num", 4) == 0
        with Image.open(out) as image:
            assert image.width > 60 and image.height > 60
            assert np.asarray(image.convert("L")).std() > 5  # not a blank picture
    for kind in set(PLOTS) - set(kinds):
        assert run_cli("plot", trained_runs[name], kind, "--out", tmp_path / "x.png") == 1


def test_plot_all_writes_into_the_run_directory(trained_runs):
    assert run_cli("plot", trained_runs["vae"], "all") == 0
    written = {p.stem for p in (trained_runs["vae"] / "plots").iterdir()}
    assert {"samples", "latent", "manifold", "interpolation", "reconstructions", "losses"} <= written


@pytest.mark.parametrize("name", [n for n in sorted(MODELS) if issubclass(MODELS[n].model_class, Sampler)])
def test_sample_png_and_npy(name, trained_runs, tmp_path):
    run = trained_runs[name]
    assert run_cli("sample", run, "--num", 12, "--out", tmp_path / "s.png") == 0
    assert run_cli("sample", run, "--num", 12, "--out", tmp_path / "s.npy", "--seed", 1) == 0
    images = np.load(tmp_path / "s.npy")
    assert images.shape == (12, 1, 28, 28) and images.dtype == np.float32
    assert images.min() >= 0 and images.max() <= 1
    assert run_cli("sample", run, "--num", 12, "--out", tmp_path / "t.npy", "--seed", 2) == 0
    assert not np.array_equal(images, np.load(tmp_path / "t.npy"))
    labels_file = tmp_path / "s.labels.npy"
    if MODELS[name].config.conditional:
        labels = np.load(labels_file)
        assert np.bincount(labels).tolist() == [3, 3, 3, 3]  # balanced over the 4 fake classes
        assert run_cli("sample", run, "--num", 5, "--out", tmp_path / "one.npy", "--label", 2) == 0
    else:
        assert not labels_file.exists()


def test_resume_from_the_cli(trained_runs, tmp_path, capsys):
    import shutil

    run = tmp_path / "vae"
    shutil.copytree(trained_runs["vae"], run)
    assert run_cli("train", "--resume", run, "--epochs", 2, "--no-progress") == 0
    assert (run / "samples" / "epoch_0002.png").exists()
    assert "epochs = 2" in (run / "config.toml").read_text()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["train", "vea", "--dry-run"], "unknown model 'vea' (did you mean 'vae'?)"),
        (["train", "vae", "--dry-run", "--set", "latent_dims=3"], "unknown option 'latent_dims'"),
        (["train", "vae", "--dry-run", "--set", "latent_dim=-1"], "latent_dim must be positive"),
        (["train", "vae", "--dry-run", "--epochs", "0"], "--epochs must be at least 1"),
        (["train", "vae", "--dry-run", "--dataset", "nowhere"], "unknown dataset 'nowhere'"),
        (["train", "vae", "--dry-run", "--preset", "huge"], "no preset 'huge'"),
        (["train", "cvae", "--dry-run", "--dataset", "{flat}"], "needs a labelled dataset"),
        (["train", "vae", "--dataset", "mnist", "--data-dir", "{empty}", "--epochs", "1"], "could not be downloaded"),
        (["train", "--resume", "{missing}"], "does not exist"),
        (["sample", "{missing}", "--num", "4", "--out", "x.png"], "does not exist"),
        (["sample", "{runs}/ae", "--num", "4", "--out", "{tmp}/x.png"], "no prior to sample from"),
        (["sample", "{runs}/vae", "--num", "4", "--out", "{tmp}/x.jpg"], "expected a .png or .npy"),
        (["sample", "{runs}/vae", "--num", "4", "--out", "{tmp}/x.png", "--label", "1"], "not conditional"),
        (["sample", "{runs}/cvae", "--num", "4", "--out", "{tmp}/x.png", "--label", "7"], "--label must be in 0..3"),
        (["sample", "{runs}/vae", "--num", "4", "--out", "{tmp}/no/such/dir/x.png"], "does not exist"),
        (["plot", "{runs}/vae", "heatmap"], "unknown plot kind 'heatmap'"),
        (["plot", "{runs}/ae", "samples"], "needs a model that samples"),
        (["plot", "{runs}/vae", "denoising"], "needs a denoising model"),
        (["plot", "{runs}/ae", "denoising"], "trained without input noise"),
        (["plot", "{runs}/vae", "style-transfer"], "needs a conditional model"),
    ],
)
def test_bad_input_is_one_clear_line_and_nonzero_exit(argv, message, trained_runs, tmp_path, capsys):
    flat = tmp_path / "flat"
    flat.mkdir()
    for i in range(12):
        Image.new("L", (28, 28), color=i * 20).save(flat / f"{i:02d}.png")
    (tmp_path / "empty").mkdir()
    values = {"runs": trained_runs["vae"].parent, "tmp": tmp_path, "missing": tmp_path / "missing",
              "flat": flat, "empty": tmp_path / "empty"}
    code = run_cli(*[arg.format(**values) for arg in argv])
    lines = capsys.readouterr().err.strip().splitlines()
    assert code != 0
    notices = [line for line in lines if line.startswith("genzoo: downloading")]
    errors = [line for line in lines if line not in notices]
    assert len(errors) == 1, lines
    assert errors[0].startswith("genzoo: error:") and message in errors[0]


def test_console_script_reports_errors_without_a_traceback():
    result = subprocess.run([sys.executable, "-m", "genzoo", "train", "nosuchmodel"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    assert result.stderr.strip() == ("genzoo: error: unknown model 'nosuchmodel'; known models: "
                                     + ", ".join(MODELS))
    result = subprocess.run([sys.executable, "-m", "genzoo", "train", "vae", "--epoch", "3", "--bogus"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1
    assert "unrecognized arguments: --bogus" in result.stderr


def test_ctrl_c_saves_and_the_run_resumes(tmp_path):
    import json
    import signal
    import time

    import torch

    run = tmp_path / "run"
    process = subprocess.Popen(
        [sys.executable, "-m", "genzoo", "train", "vae", "--dataset", "fake", "--epochs", "1000",
         "--batch-size", "32", "--run-dir", str(run), "--no-progress", *tiny_set("vae")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not (run / "checkpoint.pt").exists():
        time.sleep(0.2)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 130, err
    assert "Traceback" not in err and "Continue with: genzoo train --resume" in err
    checkpoint = torch.load(run / "checkpoint.pt", weights_only=True)
    steps = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert steps[-1]["step"] == checkpoint["global_step"]  # nothing logged past the checkpoint
    finish = checkpoint["epoch"] + 1
    assert main(["train", "--resume", str(run), "--epochs", str(finish), "--no-progress"]) == 0
    assert (run / "samples" / f"epoch_{finish:04d}.png").exists()
