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


def is_conditional(name: str) -> bool:
    from genzoo.data import load_dataset
    from genzoo.runs import build_model

    from .test_contract import tiny_config

    return build_model(tiny_config(name), load_dataset("fake", "test").spec).conditional


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
    if is_conditional(name):
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
        (["train", "vae", "--dry-run", "--set", "latent_dim=-1"], "latent_dim must be at least 1"),
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


@pytest.fixture(scope="module")
def fake_evaluator(tmp_path_factory):
    """An evaluator for the 4-class fake data (random weights: enough to exercise the machinery)."""
    import torch

    from genzoo.evaluation.evaluator import EvaluatorNet, save_evaluator

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("evaluator") / "fake-v0.safetensors"
    save_evaluator(EvaluatorNet(num_classes=4).eval(), path, version="fake-v0", dataset="fake",
                   test_accuracy=0.25, class_names=("square", "disc", "cross", "ring"))
    return path


QUICK_EVAL = ["--num-samples", "64", "--importance-samples", "20", "--likelihood-images", "30",
              "--ais-chains", "10", "--ais-steps", "100"]


@pytest.mark.parametrize("name", sorted(MODELS))
def test_evaluate_every_model(name, trained_runs, fake_evaluator, capsys):
    import json

    run = trained_runs[name]
    assert run_cli("evaluate", run, *QUICK_EVAL) == 0
    result = json.loads((run / "eval.json").read_text())
    assert "test_loss" in result["metrics"]
    if issubclass(MODELS[name].model_class, Sampler):
        assert "no evaluator for dataset 'fake'" in result["skipped"]["fd"]
    assert run_cli("evaluate", run, *QUICK_EVAL, "--evaluator", fake_evaluator) == 0
    result = json.loads((run / "eval.json").read_text())
    metrics = result["metrics"]
    if issubclass(MODELS[name].model_class, Sampler):
        assert {"fd", "kid_x1000", "precision", "classifier_score", "classes_covered"} <= set(metrics)
        assert {"fd", "kid_x1000", "precision"} <= set(result["floors"])
        assert result["protocol"]["evaluator"]["version"] == "fake-v0"
        assert ("conditional_accuracy" in metrics) == is_conditional(name)
    if name == "rbm":
        assert metrics["nll_low"] <= metrics["nll"] <= metrics["nll_high"]
        assert result["protocol"]["likelihood"]["ais_steps"] == 100
    if name in ("vae", "cvae"):
        assert metrics["nll"] <= metrics["neg_iwae_20"] + 1e-6 <= metrics["neg_elbo"] + 2e-6
        assert result["protocol"]["likelihood"]["importance_samples"] == 20
    if name == "dae":
        assert metrics["denoising_gain"] > 0
    if name in ("ae", "dae"):
        assert 0 < metrics["reconstruction_mse"] < 1
    assert ("fake-v0" in capsys.readouterr().out) == issubclass(MODELS[name].model_class, Sampler)


def test_evaluate_row_takes_that_benchmark_rows_options(trained_runs):
    """--row NAME evaluates with the options of `genzoo benchmark mnist`'s row NAME (for zoo:draw,
    K = 100 and IWAE k = 10, not the quick protocol's or --full's), flags still overriding them."""
    import json

    from genzoo.evaluation.benchmark import row_named

    run = trained_runs["draw"]
    assert run_cli("evaluate", run, "--row", "draw", "--metrics", "likelihood", "--likelihood-images", "4") == 0
    options = json.loads((run / "eval.json").read_text())["options"]
    assert (options["importance_samples"], options["iwae_k"]) == (100, 10) == (
        row_named("draw").evaluation.importance_samples, row_named("draw").evaluation.iwae_k)
    assert options["likelihood_images"] == 4


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["evaluate", "{runs}/vae", "--metrics", "fd,nonsense"], "unknown metric 'nonsense'"),
        (["evaluate", "{runs}/vae", "--metrics", "fd"], "does not apply: no evaluator for dataset 'fake'"),
        (["evaluate", "{runs}/ae", "--metrics", "likelihood"], "does not apply: ae has no likelihood estimate"),
        (["evaluate", "{runs}/vae", "--num-samples", "0"], "--num-samples must be at least 1"),
        (["evaluate", "{runs}/vae", "--evaluator", "{runs}/vae/config.toml"], "not a genzoo evaluator"),
        (["evaluate", "{runs}/vae", "--row", "nosuchrow"], "has no row 'nosuchrow'"),
        (["evaluate", "{runs}/vae", "--row", "vae", "--full"], "--row and --full each choose the protocol"),
        (["benchmark", "nosuch"], "unknown benchmark protocol 'nosuch'"),
        (["benchmark", "mnist", "--rows", "nosuchrow"], "has no row 'nosuchrow'"),
    ],
)
def test_evaluation_errors_are_one_line(argv, message, trained_runs, capsys):
    values = {"runs": trained_runs["vae"].parent}
    assert run_cli(*[arg.format(**values) for arg in argv]) != 0
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("genzoo: error:") and message in lines[0], lines


def test_inpaint_command(trained_runs, tmp_path, capsys):
    source = tmp_path / "digit.png"
    Image.new("L", (40, 40), color=200).save(source)
    out = tmp_path / "filled.png"
    assert run_cli("inpaint", trained_runs["context-encoder"], "--input", source, "--mask", "centre", "--out", out) == 0
    with Image.open(out) as image:
        filled = np.asarray(image)
    assert filled.shape == (28, 28)
    assert abs(int(filled[0, 0]) - 200) <= 1  # context pixels are the input's (resized)
    assert run_cli("inpaint", trained_runs["vae"], "--input", source, "--out", out) == 1
    assert "does not inpaint" in capsys.readouterr().err
    (tmp_path / "broken.png").write_bytes(b"not a png")
    assert run_cli("inpaint", trained_runs["context-encoder"], "--input", tmp_path / "broken.png", "--out", out) == 1
    assert "cannot read image" in capsys.readouterr().err


def test_progress_animation(trained_runs, tmp_path):
    out = tmp_path / "progress.gif"
    assert run_cli("plot", trained_runs["gan"], "progress", "--out", out) == 0
    with Image.open(out) as image:
        assert image.format == "GIF" and image.n_frames == 1  # one epoch trained


def test_a_reader_that_stops_early_gets_no_traceback():
    """`genzoo models -v | head -1`: the CLI ends quietly (status 141, as after SIGPIPE)."""
    code = ("import sys, genzoo.cli as cli\n"
            "cli.cmd_models = lambda args: [print('x' * 100) for _ in range(20000)] and 0\n"
            "sys.exit(cli.main(['models']))\n")
    process = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    process.stdout.read(10)
    process.stdout.close()
    stderr = process.stderr.read().decode()
    process.stderr.close()
    assert process.wait(timeout=60) == 141, stderr
    assert "Traceback" not in stderr and "Exception ignored" not in stderr
