"""The speed work keeps results identical or equivalent: fused Adam, the frozen discriminator in the
generator step, the joint real/fake discriminator batch, the rand-based dropout, channels-last
layout, float32 AIS chains, and the overhead budget of the per-epoch extras."""

from __future__ import annotations

import contextlib
import copy
import math
import time

import pytest
import torch
import torch.nn.functional as F

import genzoo
from genzoo.data import BatchLoader, bernoulli, load_dataset
from genzoo.evaluation.speed import markdown, measure
from genzoo.models import adversarial
from genzoo.models.boltzmann import (
    RBMLayer,
    ais_log_partition,
    exact_log_partition,
    softplus_difference,
)
from genzoo.models.layers import Dropout
from genzoo.runs import build_model
from genzoo.trainer import Callback

from .test_contract import tiny_config


@pytest.fixture(scope="module")
def fake_train():
    return load_dataset("fake", "train")


def batches(model, data, count, seed=0, memory_format=torch.contiguous_format):
    loader = BatchLoader(data, batch_size=32, fmt=model.data_format, drop_last=True, memory_format=memory_format)
    return list(loader.batches(None, torch.Generator().manual_seed(seed), limit=count))


def train(model, optimizers, data, steps, memory_format=torch.contiguous_format):
    torch.manual_seed(0)  # dropout draws from the global generator
    generator = torch.Generator().manual_seed(1)
    for batch in batches(model, data, steps, memory_format=memory_format):
        model.train_step(batch, optimizers, generator=generator)
    return model


def test_fused_adam_matches_the_for_loop_implementation(fake_train):
    config = tiny_config("vae")
    fused = build_model(config, fake_train.spec)
    loop = copy.deepcopy(fused)
    train(fused, fused.configure_optimizers(), fake_train, 10)
    assert fused.configure_optimizers()["model"].defaults["fused"]
    train(loop, {"model": torch.optim.Adam(loop.parameters(), lr=config.model_config.learning_rate)}, fake_train, 10)
    for a, b in zip(fused.parameters(), loop.parameters(), strict=True):
        assert torch.allclose(a, b, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("name", ["gan", "dcgan", "context-encoder"])
def test_frozen_discriminator_leaves_the_generator_step_unchanged(name, fake_train, monkeypatch):
    """Skipping D's weight gradients in the generator step changes no weight, bit for bit, and
    leaves D's .grad as its own step left it."""
    model = build_model(tiny_config(name), fake_train.spec)
    reference = copy.deepcopy(model)
    frozen_run = train(model, model.configure_optimizers(), fake_train, 3)
    monkeypatch.setattr(adversarial, "frozen", lambda optimizer: contextlib.nullcontext())
    reference_optimizers = reference.configure_optimizers()
    train(reference, reference_optimizers, fake_train, 3)
    for (key, a), b in zip(frozen_run.state_dict().items(), reference.state_dict().values(), strict=True):
        assert torch.equal(a, b), key
    assert all(p.requires_grad for p in frozen_run.parameters())


def test_frozen_discriminator_gradients_are_the_discriminator_steps_own(fake_train):
    model = build_model(tiny_config("gan"), fake_train.spec)
    optimizers = model.configure_optimizers()
    batch = batches(model, fake_train, 1)[0]
    snapshot = {}
    step = optimizers["discriminator"].step

    def remember_then_step(*args, **kwargs):
        snapshot.update({id(p): p.grad.clone() for p in model.discriminator_parameters()})
        return step(*args, **kwargs)

    optimizers["discriminator"].step = remember_then_step
    model.train_step(batch, optimizers, generator=torch.Generator().manual_seed(0))
    for parameter in model.discriminator_parameters():
        assert torch.equal(parameter.grad, snapshot[id(parameter)])


@pytest.mark.parametrize("name", ["gan", "cgan", "lapgan"])
def test_joint_real_and_fake_batch_matches_separate_passes(name, fake_train, monkeypatch):
    """Without dropout, one discriminator pass over real and fake images together gives the same
    updates as two passes (to float rounding)."""
    config = genzoo.apply_overrides(tiny_config(name), ["dropout=0"])
    joint = build_model(config, fake_train.spec)
    separate = copy.deepcopy(joint)

    def sgd(model):  # plain SGD: Adam's normalised steps would magnify rounding in tiny gradients
        return {name: torch.optim.SGD([p for g in opt.param_groups for p in g["params"]], lr=0.05)
                for name, opt in model.configure_optimizers().items()}

    train(joint, sgd(joint), fake_train, 3)
    iteration = adversarial.adversarial_iteration
    monkeypatch.setattr(adversarial, "adversarial_iteration",
                        lambda *args, **kwargs: iteration(*args, **{**kwargs, "joint_batch": False}))
    from genzoo.models import lapgan

    monkeypatch.setattr(lapgan, "adversarial_iteration", adversarial.adversarial_iteration)
    train(separate, sgd(separate), fake_train, 3)
    for (key, a), b in zip(joint.state_dict().items(), separate.state_dict().values(), strict=True):
        assert torch.allclose(a, b, rtol=1e-4, atol=1e-6), key


def test_dropout_keeps_the_expected_share_and_scale():
    dropout = Dropout(0.3)
    x = torch.ones(200, 500, requires_grad=True)
    torch.manual_seed(0)
    y = dropout(x)
    kept = (y > 0).float().mean()
    assert abs(float(kept) - 0.7) < 0.01
    assert torch.allclose(y[y > 0], torch.full_like(y[y > 0], 1 / 0.7))
    y.sum().backward()
    assert torch.equal(x.grad, y.detach())  # gradient flows only through kept units, scaled alike
    assert torch.equal(dropout.eval()(x), x)
    with pytest.raises(ValueError):
        Dropout(1.0)


def test_bernoulli_has_the_requested_probabilities():
    probabilities = torch.tensor([0.0, 0.1, 0.5, 0.9, 1.0]).expand(20_000, -1)
    draws = bernoulli(probabilities, torch.Generator().manual_seed(0))
    assert set(draws.unique().tolist()) <= {0.0, 1.0}
    assert torch.allclose(draws.mean(0), probabilities[0], atol=0.01)
    assert draws[:, 0].sum() == 0 and draws[:, 4].sum() == len(draws)


def test_channels_last_trains_the_same_model(fake_train):
    model = build_model(tiny_config("vae"), fake_train.spec)
    last = copy.deepcopy(model).to(memory_format=torch.channels_last)
    train(model, model.configure_optimizers(), fake_train, 3)
    train(last, last.configure_optimizers(), fake_train, 3, memory_format=torch.channels_last)
    for (key, a), b in zip(model.state_dict().items(), last.state_dict().values(), strict=True):
        assert torch.allclose(a, b, rtol=1e-3, atol=1e-5), key


def test_the_trainer_uses_channels_last_only_for_convolutional_models(tmp_path):
    conv = genzoo.train(tiny_config("dae", epochs=1, max_batches=2, eval_batches=1), tmp_path / "dae", progress=False)
    mlp = genzoo.train(tiny_config("gan", epochs=1, max_batches=2, eval_batches=1), tmp_path / "gan", progress=False)
    assert conv.memory_format == torch.channels_last and mlp.memory_format == torch.contiguous_format
    conv_weight = next(p for p in conv.model.parameters() if p.dim() == 4)
    assert conv_weight.is_contiguous(memory_format=torch.channels_last)


@pytest.mark.parametrize("beta, beta_previous", [(0.001, 0.0), (0.5005, 0.5), (1.0, 0.9999), (0.9, 0.2)])
def test_softplus_difference_agrees_with_float64(beta, beta_previous):
    activation = 30 * torch.randn(64, 500, generator=torch.Generator().manual_seed(0))
    a = activation.double()
    exact = (F.softplus(beta * a) - F.softplus(beta_previous * a)).sum(1)
    assert torch.allclose(softplus_difference(activation, beta, beta_previous), exact, rtol=1e-5, atol=1e-4)


def test_independent_ais_runs_agree_with_enumeration_and_report_their_spread():
    generator = torch.Generator().manual_seed(3)
    layer = RBMLayer(20, 10, generator=generator)
    with torch.no_grad():
        layer.weight.mul_(100)  # weights of about 1: a far-from-trivial partition function
    base = torch.full((20,), -1.0)
    result = ais_log_partition(layer, base, num_chains=100, num_steps=1000, generator=generator, runs=4)
    exact = exact_log_partition(layer)
    assert len(result["log_z_runs"]) == 4 and result["log_z_run_std"] > 0
    assert abs(result["log_z_run_mean"] - exact) < 0.1 and abs(result["log_z"] - exact) < 0.1
    assert abs(result["log_z_run_mean"] - sum(result["log_z_runs"]) / 4) < 1e-9


class Slow(Callback):
    """An epoch-end extra costing 0.3 s: far above a 10 % share of these tiny epochs."""

    def __init__(self):
        self.epochs = []

    def epoch_metrics(self, trainer):
        self.epochs.append(trainer.epoch + 1)
        time.sleep(0.3)
        return {}


@pytest.mark.parametrize("budget, expected", [(0.1, [1, 5]), (1000.0, [1, 2, 3, 4, 5])])
def test_per_epoch_extras_run_within_the_overhead_budget(budget, expected, tmp_path):
    config = tiny_config("vae", epochs=5, max_batches=1, eval_batches=1, overhead_budget=budget)
    slow = Slow()
    genzoo.train(config, tmp_path / "run", progress=False, callbacks=(slow,))
    assert slow.epochs == expected
    grids = sorted(p.name for p in (tmp_path / "run" / "samples").iterdir())
    assert grids == [f"epoch_{e:04d}.png" for e in expected]


def test_speed_row_reports_rates_and_shares():
    row = measure("ae", steps=5, warmup=1)
    assert row["images_per_second"] > 0 and 0 < row["share_of_peak"] < 1.5
    assert row["gflop_per_step"] > 0 and row["eval_share"] > 0
    text = markdown([row], [], threads=torch.get_num_threads())
    assert "`ae`" in text and "share of peak" in text and not math.isnan(row["epoch_seconds"])


def test_only_the_colour_presets_are_timed_at_64_pixels():
    from genzoo.evaluation.speed import default_rows, image_shape

    sixty_four = sorted(name for name in default_rows() if image_shape(name) == (3, 64, 64))
    assert sixty_four == ["cvae:conv-64", "dcgan:radford-64", "vae:conv-64"]
    assert image_shape("vae:mlp-64") == (1, 28, 28)  # 784-64-2: 64 hidden units, MNIST-sized


def test_speed_times_the_dbm_again_in_its_joint_phase(monkeypatch):
    """The DBM's first steps are cheap pretraining; its row is timed again past them."""
    import io

    from genzoo.evaluation import speed

    calls = []
    monkeypatch.setattr(speed, "measure", lambda name, *, steps, warmup, overrides=(): calls.append(overrides) or {"name": name})
    results = speed.run_speed(["dbm"], steps=8, keras_python=None, keras_script=None, log=io.StringIO())
    assert [r["name"] for r in results] == ["dbm", "dbm (joint training)"]
    assert calls == [(), ("pretrain_updates=1",)]


def test_the_flops_counted_are_those_of_the_phase_the_timed_steps_run():
    """Past its first update per layer, a DBM's steps are joint training (mean field and persistent
    chains), dearer than a pretraining step: the counted step must be one of those."""
    small = ("hidden_layers=20,30", "gibbs_steps=2")
    pretraining = measure("dbm", steps=1, warmup=2, overrides=small)
    joint = measure("dbm", steps=1, warmup=2, overrides=(*small, "pretrain_updates=1"))
    assert joint["gflop_per_step"] > 1.5 * pretraining["gflop_per_step"]


def test_likelihood_speed_names_every_protocol_it_extrapolates():
    """The speed table's likelihood section (run by every `genzoo benchmark speed`) measures a slice
    of each likelihood protocol at the zoo rows' sizes and extrapolates a positive cost."""
    from genzoo.evaluation.speed import likelihood_speed

    results = likelihood_speed(images=1, importance_samples=2, ais_steps=2)
    whats = [r["what"] for r in results]
    assert len(whats) == 7 and any("`draw` row (T = " in w for w in whats), whats
    assert "`rbm` row" in whats[-2] and "`dbm` row" in whats[-1] and "posterior-mixture draws" in whats[-1]
    assert all(r["minutes"] > 0 for r in results)
