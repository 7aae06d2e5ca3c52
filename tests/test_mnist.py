"""Slow tests: real training on MNIST (../shared/data), 250 batches of 128 (about half an epoch)
each: 10 to 20 seconds each on 2 CPU cores."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch
import torch.nn.functional as F

import genzoo
from genzoo.data import DataFormat, load_dataset, to_model_input

pytestmark = pytest.mark.slow

# -log p(x) of the test set under the best image-independent model (each pixel a Bernoulli with
# its training-set mean), in nats: a VAE that has learned anything must do better.
MEAN_IMAGE_BCE = 205.8


def mnist_config(model: str, mnist_dir, **model_fields):
    config = genzoo.default_config(model)
    config = dataclasses.replace(
        config,
        model_config=dataclasses.replace(config.model_config, **model_fields),
        data=genzoo.DataConfig(dataset="mnist", data_dir=str(mnist_dir)),
        train=dataclasses.replace(config.train, epochs=1, device="cpu", max_batches=250),
    )
    return config


def test_conv_vae_half_an_epoch_beats_the_mean_image(mnist_dir, tmp_path):
    trainer = genzoo.train(mnist_config("vae", mnist_dir), tmp_path / "vae", progress=False)
    test_loss = trainer.evaluate()["loss"]  # negative ELBO on the held-out test split, nats
    assert test_loss < 200.0 < MEAN_IMAGE_BCE, test_loss


def test_dae_removes_most_salt_noise(mnist_dir, tmp_path):
    trainer = genzoo.train(mnist_config("dae", mnist_dir), tmp_path / "dae", progress=False)
    model = trainer.model.eval()
    test = load_dataset("mnist", "test", data_dir=mnist_dir)
    clean = to_model_input(test.images[:2000], DataFormat(), None)
    noisy = model.corrupt(clean, torch.Generator().manual_seed(0))
    with torch.no_grad():
        denoised = model.reconstruct(noisy)
    noisy_error = F.mse_loss(noisy, clean)
    denoised_error = F.mse_loss(denoised, clean)
    assert denoised_error < 0.25 * noisy_error, (float(denoised_error), float(noisy_error))


def test_cvae_samples_are_the_requested_digit(mnist_dir, tmp_path):
    from genzoo.evaluation.evaluator import bundled_evaluator

    trainer = genzoo.train(mnist_config("cvae", mnist_dir), tmp_path / "cvae", progress=False)
    model = trainer.model.eval()
    labels = torch.arange(10).repeat_interleave(100)
    with torch.no_grad():
        samples = model.sample(len(labels), labels=labels, generator=torch.Generator().manual_seed(0))
    _, probabilities = bundled_evaluator("mnist").features_and_probabilities(samples)
    accuracy = float((probabilities.argmax(1) == labels).float().mean())
    # chance is 0.1. Measured 0.25 after these 250 batches: with transposed convolutions initialised at
    # a convolution's scale the CVAE starts with its latent unused (KL ~ 0) and escapes in epoch 3
    # (zoo row cvae-2d: 0.31, 0.33, 0.52, 0.71 after epochs 1-4; 0.95 after 20). README, Known problems.
    assert accuracy > 0.2, accuracy


def test_a_stopped_benchmark_row_is_saved_not_evaluated_and_continues(mnist_dir, tmp_path, monkeypatch):
    from genzoo.errors import Stopped
    from genzoo.evaluation import benchmark
    from genzoo.trainer import Callback

    row = benchmark.Row("ae", "ae", 1, ("train.max_batches=6",),
                        evaluation=benchmark.EvaluationOptions(metrics=("test-loss",)))
    monkeypatch.setitem(benchmark.PROTOCOLS, "tiny", (row,))

    class CtrlCAt(Callback):  # what the Ctrl-C handler does, at step 3
        def on_step_end(self, trainer, values):
            if trainer.global_step == 3:
                trainer.request_stop()

    plain_train = benchmark.train
    monkeypatch.setattr(benchmark, "train", lambda *args, **kwargs: plain_train(*args, callbacks=(CtrlCAt(),), **kwargs))
    with pytest.raises(Stopped, match="ae stopped at epoch 1, step 3; saved"):
        benchmark.run_protocol("tiny", tmp_path, data_dir=str(mnist_dir), progress=False)
    assert not (tmp_path / "ae" / "eval.json").exists()
    monkeypatch.setattr(benchmark, "train", plain_train)
    [(_, result, _)] = benchmark.run_protocol("tiny", tmp_path, data_dir=str(mnist_dir), progress=False)
    steps = [line for line in (tmp_path / "ae" / "metrics.jsonl").read_text().splitlines() if '"kind": "step"' in line]
    assert result["trained_epochs"] == 1 and len(steps) == 6  # steps 1-3, then 4-6 after the resume


def test_benchmark_reuses_extends_and_reevaluates_rows(mnist_dir, tmp_path, monkeypatch):
    from genzoo.errors import GenzooError
    from genzoo.evaluation import benchmark

    evaluation = benchmark.EvaluationOptions(metrics=("test-loss", "reconstruction"))

    def protocol(epochs):
        row = benchmark.Row("ae", "ae", epochs, ("train.max_batches=5",), evaluation=evaluation)
        monkeypatch.setitem(benchmark.PROTOCOLS, "tiny", (row,))
        return benchmark.run_protocol("tiny", tmp_path, data_dir=str(mnist_dir), progress=False)

    (tmp_path / "ae").mkdir()
    (tmp_path / "ae" / "config.toml").write_text("")  # a run stopped before its first checkpoint
    [(_, first, _)] = protocol(1)
    assert first["trained_epochs"] == 1
    [(_, again, _)] = protocol(1)
    assert (again["seconds"], again["metrics"]) == (first["seconds"], first["metrics"])  # reused, not re-evaluated
    path = tmp_path / "ae" / "eval.json"
    path.write_text(json.dumps({key: value for key, value in again.items() if key != "evaluation_version"}))
    [(_, anew, _)] = protocol(1)  # an earlier version's evaluation is made again, not reused
    assert anew["evaluation_version"] == benchmark.EVALUATION_VERSION
    [(_, longer, _)] = protocol(2)  # a longer budget continues the run and evaluates it anew
    assert longer["trained_epochs"] == 2 and (tmp_path / "ae" / "samples" / "epoch_0002.png").exists()
    assert longer["metrics"]["test_loss"] != first["metrics"]["test_loss"]
    assert "epochs = 2" in (tmp_path / "ae" / "config.toml").read_text()
    with pytest.raises(GenzooError, match="trained for 2 epochs, more than the row's 1"):
        protocol(1)
