"""What a new user hits after the README's two commands: a quick default evaluation, run
directories that remember their data, plots of small folders, fitting advice and messages."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import genzoo
from genzoo.cli import main

from .test_contract import tiny_config

REPO = Path(__file__).resolve().parents[1]


def run_cli(*argv):
    return main([str(a) for a in argv])


@pytest.fixture(scope="module")
def vae(tmp_path_factory):
    path = tmp_path_factory.mktemp("runs") / "vae"
    genzoo.train(tiny_config("vae", epochs=1, max_batches=4, eval_batches=1), path, progress=False)
    return path


def test_evaluate_defaults_to_a_quick_protocol_and_names_the_full_one(vae, capsys):
    assert run_cli("evaluate", vae, "--metrics", "test-loss,likelihood") == 0
    out = capsys.readouterr().out
    result = json.loads((vae / "eval.json").read_text())
    assert result["options"]["importance_samples"] == 500 and result["options"]["likelihood_images"] == 1000
    assert f"genzoo evaluate {vae} --full" in out


def test_a_run_remembers_its_data_and_sample_plots_need_none(mnist_dir, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("GENZOO_DATA", str(mnist_dir / "mnist"))  # the dataset folder itself is understood
    config = genzoo.apply_overrides(genzoo.default_config("vae"),
                                    ["train.epochs=1", "train.max_batches=2", "train.eval_batches=1", "conv_channels=4,8"])
    genzoo.train(config, tmp_path / "run", progress=False, sample_quality=False)
    recorded = genzoo.read_config(tmp_path / "run" / "config.toml").data.data_dir
    assert Path(recorded) == (mnist_dir / "mnist").resolve()
    monkeypatch.delenv("GENZOO_DATA")  # a new shell: the run still finds its data
    assert run_cli("plot", tmp_path / "run", "reconstructions", "--out", tmp_path / "r.png") == 0
    text = (tmp_path / "run" / "config.toml").read_text().replace(recorded, str(tmp_path / "gone"))
    (tmp_path / "run" / "config.toml").write_text(text)
    assert run_cli("plot", tmp_path / "run", "samples", "--out", tmp_path / "s.png") == 0  # reads no data


def test_plots_of_a_small_unlabelled_folder_fill_their_rows(tmp_path, capsys):
    folder = tmp_path / "flat"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(12):  # a test split of one image
        Image.fromarray((rng.random((28, 28)) * 255).astype(np.uint8)).save(folder / f"{i:02d}.png")
    assert run_cli("train", "ae", "--dataset", folder, "--batch-size", 4, "--epochs", 1, "--run-dir", tmp_path / "ae",
                   "--no-progress") == 0
    assert run_cli("plot", tmp_path / "ae", "all") == 0
    assert {"reconstructions.png", "interpolation.png"} <= {p.name for p in (tmp_path / "ae" / "plots").iterdir()}
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert run_cli("train", "ae", "--dataset", folder, "--epochs", 1, "--run-dir", tmp_path / "big") == 1
    assert "use --batch-size 2 or less" in capsys.readouterr().err


@pytest.mark.parametrize(("name", "present", "absent"), [
    ("ae", ["genzoo plot", "genzoo evaluate"], ["genzoo sample"]),
    ("context-encoder", ["genzoo inpaint"], ["genzoo sample"]),
    ("gan", ["genzoo sample"], ["genzoo inpaint"]),
])
def test_next_steps_fit_what_the_model_can_do(name, present, absent, tmp_path, capsys):
    config = tmp_path / "c.toml"
    config.write_text(genzoo.config.to_toml(tiny_config(name, epochs=1, max_batches=2, eval_batches=1)))
    assert run_cli("train", "--config", config, "--run-dir", tmp_path / "run", "--no-progress") == 0
    out = capsys.readouterr().out
    assert all(p in out for p in present) and not any(a in out for a in absent)
    if name == "context-encoder":
        assert run_cli("sample", tmp_path / "run", "--num", 4, "--out", tmp_path / "x.png") == 1
        assert "genzoo plot" in (err := capsys.readouterr().err) and "inpainting" in err and "reconstructions" not in err


def test_few_classes_warnings_speak_of_the_model_family():
    from genzoo.models.dbm import DBM
    from genzoo.models.gan import GAN
    from genzoo.models.vae import VAE

    assert "mode collapse" in GAN.few_classes_hint
    assert "mode collapse" not in VAE.few_classes_hint and "latent_dim" in VAE.few_classes_hint
    assert "Gibbs" in DBM.few_classes_hint


def test_models_verbose_lists_every_field_and_preset(capsys):
    assert run_cli("models", "--verbose") == 0
    out = capsys.readouterr().out
    for text in ("train.batch_size = 128", "data.image_size = 28", "train.lr_schedule = 'constant'",
                 "--preset dense-2d: hidden_dims=(512, 128), latent_dim=2", "--preset radford-64: layers=4"):
        assert text in out, text


def test_plot_of_a_file_says_so(tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("x")
    assert run_cli("plot", tmp_path / "notes.txt", "samples") == 1
    assert "is a file, not a run directory" in capsys.readouterr().err


@pytest.mark.skipif(not (REPO / ".venv" / "bin" / "python").exists(), reason="needs the .venv of scripts/setup.sh")
def test_setup_stops_when_pip_fails():
    done = subprocess.run(["bash", "scripts/setup.sh"], cwd=REPO, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "GENZOO_TORCH": "torch==0.0.1"})
    assert done.returncode != 0 and "setup: pip install torch==0.0.1 failed" in done.stderr
