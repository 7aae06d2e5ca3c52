"""VAE specifics: the importance weights agree with the ELBO, the IWAE objective trains."""

from __future__ import annotations

import math

import torch

import genzoo
from genzoo.data import Batch, BatchLoader, load_dataset
from genzoo.runs import build_model

from .test_contract import tiny_config


def test_mean_log_weight_is_the_elbo():
    data = load_dataset("fake", "train")
    model = build_model(tiny_config("vae"), data.spec).eval()
    x = data.images[:4].float() / 255
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        weights = model.log_importance_weights(x, None, num_samples=1000, generator=generator)  # (K, B)
        # loss_terms: single-sample reconstruction term + analytic KL; average many draws.
        draws = 1000
        repeated = [Batch(x[i : i + 1].expand(draws, -1, -1, -1), torch.zeros(draws, dtype=torch.int64)) for i in range(4)]
        mean, log_var = model.posterior(x)
        kl = -0.5 * (1 + log_var - mean.pow(2) - log_var.exp()).sum(1)
        reconstruction = torch.stack([model.loss_terms(b, generator)["reconstruction"] for b in repeated])
    elbo_from_weights = weights.mean(0)
    elbo_from_loss = -(reconstruction + kl)  # the training loss: one-sample reconstruction + analytic KL
    standard_error = weights.std(0) / math.sqrt(draws)
    assert torch.all((elbo_from_weights - elbo_from_loss).abs() < 4 * standard_error)


def test_iwae_objective_trains_and_is_a_tighter_bound():
    config = genzoo.apply_overrides(tiny_config("vae"), ["objective=iwae", "importance_samples=8"])
    data = load_dataset("fake", "train")
    model = build_model(config, data.spec)
    optimizers = model.configure_optimizers()
    loader = BatchLoader(data, batch_size=64, fmt=model.data_format, drop_last=True)
    generator = torch.Generator().manual_seed(0)
    losses = []
    for _ in range(4):
        for batch in loader.batches(None, generator):
            metrics = model.train_step(batch, optimizers, generator=generator)
            losses.append(float(metrics["loss"]))
            assert float(metrics["loss"]) <= float(metrics["neg_elbo"]) + 1e-3  # IWAE_k >= ELBO
    assert sum(losses[-10:]) / 10 < 0.97 * sum(losses[:10]) / 10


def test_iwae_refuses_a_weighted_kl():
    import pytest

    from genzoo.errors import ConfigError

    config = genzoo.apply_overrides(tiny_config("vae"), ["objective=iwae", "kl_weight=0.5"])
    with pytest.raises(ConfigError, match="needs kl_weight=1"):
        genzoo.get_entry("vae").build(config.model_config, load_dataset("fake", "test").spec)


def test_a_vae_that_ignores_its_latent_code_is_warned_about(tmp_path, capsys):
    """A heavy KL weight on a short run drives KL(q(z|x) || p(z)) to ~0: the run says so."""
    from genzoo.evaluation.callbacks import UnusedLatent

    config = genzoo.apply_overrides(tiny_config("vae", epochs=1, max_batches=10, eval_batches=1), ["kl_weight=30"])
    trainer = genzoo.train(config, tmp_path / "run", progress=False, sample_quality=False)
    assert "posterior collapse" in capsys.readouterr().err
    UnusedLatent().on_epoch_end(trainer, {"epoch": 2, "test/kl": 5.0})  # a used code
    UnusedLatent().on_epoch_end(trainer, {"epoch": 2, "test/loss": 1.0})  # a model without a KL
    assert "posterior collapse" not in capsys.readouterr().err
