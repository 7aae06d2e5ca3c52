"""Boltzmann machines against exact references: brute-force free energies and partition
functions, autograd for the CD gradient, and AIS against enumeration."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from genzoo.models.boltzmann import (
    RBMLayer,
    ais_log_partition,
    ais_schedule,
    base_rate_bias,
    bridge_log_ratio,
    contrastive_divergence,
    exact_log_partition,
    hidden_log_partition,
)


def small_rbm(visible=12, hidden=8, scale=1.0, seed=0) -> RBMLayer:
    g = torch.Generator().manual_seed(seed)
    layer = RBMLayer(visible, hidden).double()
    with torch.no_grad():
        layer.weight.copy_(scale * torch.randn(visible, hidden, generator=g, dtype=torch.float64))
        layer.visible_bias.copy_(0.5 * torch.randn(visible, generator=g, dtype=torch.float64))
        layer.hidden_bias.copy_(0.5 * torch.randn(hidden, generator=g, dtype=torch.float64))
    return layer


def all_binary(n: int) -> torch.Tensor:
    codes = torch.arange(2**n)
    return ((codes[:, None] >> torch.arange(n)) & 1).double()


def energy(layer, v, h):
    return -(v @ layer.visible_bias) - (h @ layer.hidden_bias) - ((v @ layer.weight) * h).sum(1)


@torch.no_grad()
def test_free_energy_is_the_brute_force_marginal():
    layer = small_rbm()
    v = torch.bernoulli(torch.full((5, 12), 0.5, dtype=torch.float64), generator=torch.Generator().manual_seed(1))
    hidden = all_binary(8)
    for row in v:
        brute = -torch.logsumexp(-energy(layer, row.expand(len(hidden), -1), hidden), 0)
        assert float(layer.free_energy(row[None]).squeeze()) == pytest.approx(float(brute), abs=1e-10)


@torch.no_grad()
def test_exact_log_partition_matches_the_sum_over_both_layers():
    layer = small_rbm(visible=6, hidden=5)
    v, h = all_binary(6), all_binary(5)
    pairs_v = v.repeat_interleave(len(h), 0)
    pairs_h = h.repeat(len(v), 1)
    brute = float(torch.logsumexp(-energy(layer, pairs_v, pairs_h), 0))
    assert exact_log_partition(layer) == pytest.approx(brute, abs=1e-10)


@pytest.mark.parametrize("up", [1.0, 2.0])
def test_cd_gradient_is_the_free_energy_difference_gradient(up):
    """CD-0 against autograd. With p(h|v) = sigmoid(up (vW + c)) (up = 2: a DBM's doubled
    bottom layer) the free energy is -b.v - sum softplus(up (vW + c)), whose W and c gradients
    carry a factor ``up`` that the CD statistics leave out."""
    layer = small_rbm().float()
    g = torch.Generator().manual_seed(2)
    data = torch.bernoulli(torch.full((16, 12), 0.3), generator=g)
    negative = torch.bernoulli(torch.full((10, 12), 0.6), generator=g)
    contrastive_divergence(layer, data, negative, steps=0, generator=g, up=up)  # k = 0: negatives as given
    cd = [p.grad.clone() for p in layer.parameters()]
    layer.zero_grad()

    def free_energy(v):
        return -(v @ layer.visible_bias) - F.softplus(up * (v @ layer.weight + layer.hidden_bias)).sum(1)

    loss = free_energy(data).mean() - free_energy(negative).mean()  # d/dθ of -log-lik. surrogate
    loss.backward()
    factors = {"weight": up, "visible_bias": 1.0, "hidden_bias": up}
    for (name, parameter), ours in zip(layer.named_parameters(), cd, strict=True):
        assert torch.allclose(ours * factors[name], parameter.grad, atol=1e-5), name


@pytest.mark.parametrize("scale", [0.5, 1.5])
def test_ais_estimates_log_z_within_a_tenth_of_a_nat(scale):
    layer = small_rbm(visible=20, hidden=10, scale=scale, seed=3)
    exact = exact_log_partition(layer)
    data = torch.bernoulli(torch.full((200, 20), 0.4, dtype=torch.float64), generator=torch.Generator().manual_seed(4))
    base = base_rate_bias(data.sum(0), len(data))
    result = ais_log_partition(layer, base, num_chains=200, num_steps=3000, generator=torch.Generator().manual_seed(5))
    assert abs(result["log_z"] - exact) < 0.1, (result, exact)
    assert result["log_z_low"] <= result["log_z"] <= result["log_z_high"]


def test_ais_schedule_is_increasing_from_zero_to_one():
    betas = ais_schedule(14_500)
    assert len(betas) == 14_501 and betas[0] == 0 and betas[-1] == 1
    assert torch.all(betas[1:] > betas[:-1])
    assert abs(int((betas < 0.5).sum()) - 500) <= 1 and abs(int((betas < 0.9).sum()) - 4500) <= 1
    assert math.isclose(float(betas[500]), 0.5)


def test_dbn_trains_its_layers_greedily_bottom_up():
    import genzoo
    from genzoo.data import BatchLoader, load_dataset
    from genzoo.runs import build_model

    from .test_contract import tiny_config

    data = load_dataset("fake", "train")
    model = build_model(genzoo.apply_overrides(tiny_config("dbn"), ["updates_per_layer=3"]), data.spec)
    optimizers = model.configure_optimizers()
    loader = BatchLoader(data, batch_size=32, fmt=model.data_format, drop_last=True)
    generator = torch.Generator().manual_seed(0)
    trained = []
    for batch in loader.batches(None, generator, limit=8):
        before = [layer.weight.clone() for layer in model.layers]
        model.train_step(batch, optimizers, generator=generator)
        changed = [not torch.equal(b, layer.weight) for b, layer in zip(before, model.layers, strict=True)]
        assert sum(changed) == 1  # one layer at a time
        trained.append(changed.index(True))
    assert trained == [0, 0, 0, 1, 1, 1, 1, 1]


def tiny_dbm(seed=0):
    import genzoo
    from genzoo.data import DataSpec
    from genzoo.runs import build_model

    config = genzoo.apply_overrides(genzoo.default_config("dbm"), ["hidden_layers=5,4", "mean_field_steps=50"])
    model = build_model(config, DataSpec(1, 2, 4, 0)).double()  # 8 visible units
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.copy_(0.8 * torch.randn(parameter.shape, generator=g, dtype=torch.float64))
        model.pixel_sum.fill_(40.0)
        model.pixel_count.fill_(100.0)
    return model


@torch.no_grad()
def dbm_exact(model, visible):
    """log Z and log p*(v) by enumerating h1 and h2 (and v for Z analytically)."""
    h1, h2 = all_binary(5), all_binary(4)
    pairs1, pairs2 = h1.repeat_interleave(len(h2), 0), h2.repeat(len(h1), 1)
    b, c1, c2 = model.bottom.visible_bias, model.bottom.hidden_bias, model.top.hidden_bias
    w1, w2 = model.bottom.weight, model.top.weight
    coupling = pairs1 @ c1 + pairs2 @ c2 + ((pairs1 @ w2) * pairs2).sum(1)
    log_z = torch.logsumexp(coupling + F.softplus(pairs1 @ w1.T + b).sum(1), 0)
    log_p_star = torch.stack([torch.logsumexp(coupling + v @ b + pairs1 @ (w1.T @ v), 0) for v in visible])
    return float(log_z), log_p_star


def test_dbm_ais_and_variational_bound_against_enumeration():
    import torch.nn.functional  # noqa: F401

    model = tiny_dbm()
    visible = all_binary(8)[::17]  # 16 visible configurations
    log_z, log_p_star = dbm_exact(model, visible)
    ais = model.ais_log_partition(num_chains=200, num_steps=3000, generator=torch.Generator().manual_seed(1))
    assert abs(ais["log_z"] - log_z) < 0.1, (ais, log_z)
    bound = model.variational_bound(visible)
    assert torch.all(bound <= log_p_star + 1e-9)  # a lower bound on log p*(v) for every v
    assert float((log_p_star - bound).mean()) < 1.0  # and not a vacuous one


def test_dbm_importance_sampled_log_p_star_against_enumeration():
    """Importance sampling h1 from the mean field lands on the exact log p*(v) and, on average,
    above the variational bound, which it refines."""
    model = tiny_dbm()
    visible = all_binary(8)[::17]
    _, log_p_star = dbm_exact(model, visible)
    estimate = model.importance_log_p_star(visible, samples=20_000, generator=torch.Generator().manual_seed(3))
    assert torch.allclose(estimate, log_p_star, atol=0.03), (estimate - log_p_star).abs().max()
    assert float(estimate.mean()) > float(model.variational_bound(visible).mean()) + 0.05


def test_dbm_log_partition_from_a_posterior_mixture_and_in_reverse_against_enumeration():
    model = tiny_dbm()
    visible = all_binary(8)[::17]
    log_z, _ = dbm_exact(model, visible)
    middle = all_binary(5)
    assert float(torch.logsumexp(model.log_p_star_h1(middle), 0)) == pytest.approx(log_z, abs=1e-9)
    estimates = hidden_log_partition(model.log_p_star_h1, model.posterior_mixture(visible), model.chain_hidden,
                                     samples=4000, chains=4000, runs=3, generator=torch.Generator().manual_seed(2))
    mixture = estimates["mixture"]
    assert abs(mixture["log_z"] - log_z) < 0.05 and len(mixture["log_z_runs"]) == 3
    assert abs(estimates["reverse"] - log_z) < 0.05 and abs(estimates["bridge"] - log_z) < 0.05
    assert len(estimates["bridge_runs"]) == 3 and all(abs(x - log_z) < 0.1 for x in estimates["bridge_runs"])
    assert 0 < estimates["bridge_run_std"] < 0.1


@torch.no_grad()
def annealed_model_log_marginal(model, num_steps):
    """log p_ann(v) of the annealed model behind the DBM's AIS, v by code (256,): x_0 = (v, h2)
    from the base-rate model, then one transition at each beta of the schedule, every state and
    transition enumerated (h1: 32 states, x: 4096)."""
    x, h1 = all_binary(12), all_binary(5)
    v, h2 = x[:, :8], x[:, 8:]  # code = v code + 256 * h2 code
    b, c1, c2 = model.bottom.visible_bias, model.bottom.hidden_bias, model.top.hidden_bias
    base = model.base_rate().double()

    def bernoulli_table(probabilities, states):  # (N, D), (S, D) -> P(state s | row n), (N, S)
        return torch.exp(probabilities.log() @ states.T + (1 - probabilities).log() @ (1 - states).T)

    p = torch.exp(v @ base - F.softplus(base).sum()) / 2**4
    activation = c1 + v @ model.bottom.weight + h2 @ model.top.weight.T
    for beta in ais_schedule(num_steps).tolist()[1:]:
        given_x = bernoulli_table(torch.sigmoid(beta * activation), h1)
        given_h1 = (bernoulli_table(torch.sigmoid((1 - beta) * base + beta * (b + h1 @ model.bottom.weight.T)), v)
                    * bernoulli_table(torch.sigmoid(beta * (c2 + h1 @ model.top.weight)), h2))
        p = (p @ given_x) @ given_h1
    return p.view(16, 256).sum(0).log()


def test_dbm_reverse_annealing_is_unbiased_for_the_annealed_model_and_reaches_log_p_from_below():
    """RAISE's weights average to p_ann(v), the annealed model's marginal (enumerated), not to
    p(v): with 3 steps the two differ by up to 0.3 nats. With 300 steps the mean log weight
    sits below log p(v), within a few tenths."""
    model = tiny_dbm()
    visible = all_binary(8)[::17]
    log_z, log_p_star = dbm_exact(model, visible)
    exact = log_p_star - log_z
    annealed = annealed_model_log_marginal(model, 3)[(visible * 2 ** torch.arange(8)).sum(1).long()]
    draws = 20_000
    log_w = model.reverse_annealed_log_likelihood(visible.repeat_interleave(draws, 0), num_steps=3,
                                                  generator=torch.Generator().manual_seed(1)).view(-1, draws)
    estimate = torch.logsumexp(log_w, 1) - math.log(draws)
    assert float((estimate - annealed).abs().mean()) < 0.05 and float((estimate - annealed).abs().max()) < 0.15
    far = (annealed - exact).abs() > 0.2
    assert far.sum() >= 3 and bool(torch.all((estimate - exact)[far].abs() > 0.15))

    log_w = model.reverse_annealed_log_likelihood(visible.repeat_interleave(50, 0), num_steps=300,
                                                  generator=torch.Generator().manual_seed(2)).view(-1, 50)
    gap = float((exact - log_w.mean(1)).mean())
    assert 0 < gap < 0.3, gap


def test_the_bridge_recovers_a_known_ratio_where_both_one_sided_estimates_fail():
    """q = N(0, 1) and p* = 7 N(4, 1) (so log Z_p/Z_q = log 7) overlap little: the one-sided
    estimates from 2,000 draws each miss by nats, the bridge lands within 0.1."""
    g = torch.Generator().manual_seed(0)
    def log_w(x):  # log p*(x) - log q(x)
        return math.log(7) - 0.5 * (x - 4) ** 2 + 0.5 * x**2
    forward = log_w(torch.randn(2000, generator=g, dtype=torch.float64))
    backward = log_w(4 + torch.randn(2000, generator=g, dtype=torch.float64))
    one_sided = (float(torch.logsumexp(forward, 0)) - math.log(2000), -float(torch.logsumexp(-backward, 0)) + math.log(2000))
    assert all(abs(x - math.log(7)) > 1 for x in one_sided), one_sided
    assert abs(bridge_log_ratio(forward, backward) - math.log(7)) < 0.1


def test_the_bridge_leans_on_the_side_with_more_draws():
    """Meng & Wong's weights: with 100,000 draws of q and 5 of p, the bridge is about plain
    importance sampling from q (accurate here, as q = N(0, 1) and p = N(1, 1) overlap well); with
    the sizes swapped, about the reverse estimate from 100,000 draws of p. A 5-draw estimate of
    either side alone misses by 0.9 nats for this seed."""
    g = torch.Generator().manual_seed(3)

    def log_w(x):  # log p*(x) - log q(x), p* = 7 N(1, 1)
        return math.log(7) - 0.5 * (x - 1) ** 2 + 0.5 * x**2

    many_q = log_w(torch.randn(100_000, generator=g, dtype=torch.float64))
    few_p = log_w(1 + torch.randn(5, generator=g, dtype=torch.float64))
    assert abs(-float(torch.logsumexp(-few_p, 0)) + math.log(5) - math.log(7)) > 0.5  # the few draws alone
    assert abs(bridge_log_ratio(many_q, few_p) - math.log(7)) < 0.02
    few_q, many_p = many_q[:5], log_w(1 + torch.randn(100_000, generator=g, dtype=torch.float64))
    assert abs(bridge_log_ratio(few_q, many_p) - math.log(7)) < 0.02


def test_dbm_likelihood_uses_the_bridge_with_its_one_sided_estimates_as_the_interval():
    """A one-step AIS is plain importance sampling from the base rate: far below log Z, and only
    reported. The NLL's log Z is the bridge, pooled over the runs; the mixture's estimate and the
    reverse one are its interval; every estimate over h1 lands on the exact log Z."""
    model = tiny_dbm()
    visible = all_binary(8)[::17]
    log_z, _ = dbm_exact(model, visible)
    report = model.estimate_log_likelihood(visible, num_chains=5, num_steps=1, runs=2,
                                           generator=torch.Generator().manual_seed(0))
    bound = float(model.variational_bound(visible).mean())
    assert report["log_z_ais"] < log_z - 0.2 and report["nll_ais"] == pytest.approx(report["log_z_ais"] - bound)
    assert report["log_z_estimator"] == "bridge" and report["log_z"] == report["log_z_bridge"]
    assert report["nll"] == pytest.approx(report["log_z"] - bound) and len(report["log_z_runs"]) == 2
    assert report["nll_low"] == pytest.approx(report["nll_mixture"]) and report["nll_high"] == pytest.approx(report["nll_reverse"])
    for name in ("mixture", "reverse", "bridge"):
        assert abs(report[f"log_z_{name}"] - log_z) < 0.1, name


def tiny_rbm(seed=0):
    import genzoo
    from genzoo.data import DataSpec
    from genzoo.runs import build_model

    config = genzoo.apply_overrides(genzoo.default_config("rbm"), ["hidden_units=6", "gibbs_steps=50"])
    model = build_model(config, DataSpec(1, 2, 4, 0)).double()  # 8 visible units
    model.layer.load_state_dict(small_rbm(visible=8, hidden=6, seed=seed).state_dict())
    with torch.no_grad():
        model.pixel_sum.fill_(40.0)
        model.pixel_count.fill_(100.0)
    return model


@torch.no_grad()
def test_rbm_hidden_marginal_sums_to_the_partition_function_over_the_visible_units():
    """sum_h p*(h) (v summed out) = sum_v exp(-F(v)) (h summed out): both are Z."""
    layer = small_rbm(visible=8, hidden=6)
    assert float(torch.logsumexp(layer.hidden_log_p_star(all_binary(6)), 0)) == pytest.approx(
        float(torch.logsumexp(-layer.free_energy(all_binary(8)), 0)), abs=1e-9)


@torch.no_grad()
def test_rbm_likelihood_is_ais_with_the_estimates_over_h_beside_it():
    """The RBM's NLL keeps AIS's log Z; the posterior mixture's, the chains' reverse and the bridge
    estimates are reported beside it, each on the exact log Z of an enumerable RBM."""
    model = tiny_rbm()
    log_z = exact_log_partition(model.layer)
    visible = all_binary(8)[::17]
    report = model.estimate_log_likelihood(visible, num_chains=200, num_steps=2000, runs=2,
                                           generator=torch.Generator().manual_seed(0))
    log_p_star = -float(model.layer.free_energy(visible).mean())
    assert report["log_z_estimator"] == "AIS" and abs(report["log_z"] - log_z) < 0.1
    assert report["nll"] == pytest.approx(report["log_z"] - log_p_star)
    for name in ("mixture", "reverse", "bridge"):
        assert abs(report[f"log_z_{name}"] - log_z) < 0.1, name
        assert report[f"nll_{name}"] == pytest.approx(report[f"log_z_{name}"] - log_p_star)


def dbm_on_fake_batches(*, pretrain_updates: int, count: int):
    """A tiny DBM (one Gibbs sweep per update), its optimizers, a seeded generator and ``count``
    batches of 16 fake images."""
    import genzoo
    from genzoo.data import BatchLoader, load_dataset
    from genzoo.runs import build_model

    from .test_contract import tiny_config

    data = load_dataset("fake", "train")
    overrides = [f"pretrain_updates={pretrain_updates}", "chain_steps=1"]
    model = build_model(genzoo.apply_overrides(tiny_config("dbm"), overrides), data.spec)
    loader = BatchLoader(data, batch_size=16, fmt=model.data_format, drop_last=True)
    generator = torch.Generator().manual_seed(0)
    return model, model.configure_optimizers(), generator, list(loader.batches(None, generator, limit=count))


def test_dbm_joint_training_starts_from_the_composed_pretrained_layers():
    """At the switch to joint training h1's total input is kept (the two RBMs' biases for it are
    summed into one), the pretraining's momentum is dropped, and the persistent chains restart."""
    model, optimizer, generator, batches = dbm_on_fake_batches(pretrain_updates=2, count=5)
    for batch in batches[:4]:  # two updates of each RBM
        model.train_step(batch, optimizer, generator=generator)
    c1, b2 = model.bottom.hidden_bias.detach().clone(), model.top.visible_bias.detach().clone()
    chains = model.chain_visible.clone()
    weight = model.bottom.weight.detach().clone()
    model.train_step(batches[4], optimizer, generator=generator)  # the first joint update
    assert torch.equal(model.top.visible_bias, b2)  # no longer part of the model: not trained
    step = model.bottom.hidden_bias.detach() - (c1 + b2)  # the joint update's own change, after composing
    assert float(step.abs().max()) < 0.25 * float(b2.abs().max())
    # A fresh momentum buffer holds exactly this update's gradient (plus weight decay).
    buffer = optimizer["model"].state[model.bottom.weight]["momentum_buffer"]
    assert torch.allclose(buffer, model.bottom.weight.grad + model.config.weight_decay * weight, atol=1e-6)
    assert not torch.equal(chains, model.chain_visible)


@torch.no_grad()
def test_dbm_mean_field_and_joint_step_loss():
    """The mean field is the fixed-point iteration of h1_given / h2_given (its cached bottom-up term
    changes no bit), and a joint update reports the mean-field reconstruction error of its batch
    before the update, as evaluate_step gives it."""
    model, optimizer, generator, batches = dbm_on_fake_batches(pretrain_updates=1, count=4)
    for batch in batches[:3]:  # one update of each RBM, then the first joint update
        model.train_step(batch, optimizer, generator=generator)
    visible = batches[3].images.flatten(1)
    mu1 = torch.sigmoid(2 * (visible @ model.bottom.weight) + model.bottom.hidden_bias)
    mu2 = model.h2_given(mu1)
    for _ in range(model.config.mean_field_steps):
        mu1 = model.h1_given(visible, mu2)
        mu2 = model.h2_given(mu1)
    fast = model.mean_field(visible)
    assert torch.equal(fast[0], mu1) and torch.equal(fast[1], mu2)
    before = float(model.evaluate_step(batches[3], generator=generator)["loss"])
    weight = model.bottom.weight.detach().clone()
    reported = float(model.train_step(batches[3], optimizer, generator=generator)["loss"])
    assert reported == before and not torch.equal(weight, model.bottom.weight)


@torch.no_grad()
def test_dbm_pretraining_reports_the_training_layers_reconstruction_error():
    """A pretraining update reports its own RBM's one-step reconstruction error before the update
    (the bottom RBM with doubled bottom-up input, the top one with doubled top-down input, on h1
    sampled from the bottom one), as the DBN does, not the whole DBM's mean-field error."""
    from genzoo.data import bernoulli

    model, optimizer, generator, batches = dbm_on_fake_batches(pretrain_updates=1, count=2)

    def error(layer, data, up, down):
        reconstruction = layer.visible_probabilities(layer.hidden_probabilities(data, up), down)
        return float(F.binary_cross_entropy(reconstruction, data, reduction="none").sum(1).mean())

    visible = batches[0].images.flatten(1)
    expected = error(model.bottom, visible, 2.0, 1.0)
    assert expected != float(model.evaluate_step(batches[0], generator=generator)["loss"])
    step = model.train_step(batches[0], optimizer, generator=generator)
    assert (float(step["loss"]), float(step["phase"])) == (expected, 0.0)

    visible = batches[1].images.flatten(1)
    replay = torch.Generator().manual_seed(0)
    replay.set_state(generator.get_state())  # the step's first draw is h1 for the top RBM
    middle = bernoulli(model.bottom.hidden_probabilities(visible, 2.0), replay)
    expected = error(model.top, middle, 1.0, 2.0)
    step = model.train_step(batches[1], optimizer, generator=generator)
    assert (float(step["loss"]), float(step["phase"])) == (expected, 1.0)


def test_dbn_top_layer_learns_from_persistent_chains():
    import genzoo
    from genzoo.data import BatchLoader, load_dataset
    from genzoo.runs import build_model

    from .test_contract import tiny_config

    data = load_dataset("fake", "train")
    model = build_model(genzoo.apply_overrides(tiny_config("dbn"), ["updates_per_layer=2", "persistent_chains=7",
                                                                    "persistent_top=true"]),
                        data.spec)
    optimizer = model.configure_optimizers()
    loader = BatchLoader(data, batch_size=16, fmt=model.data_format, drop_last=True)
    generator = torch.Generator().manual_seed(0)
    states = []
    for batch in loader.batches(None, generator, limit=5):
        model.train_step(batch, optimizer, generator=generator)
        states.append(model.chains.clone())
    assert torch.count_nonzero(states[0]) == 0 and torch.equal(states[0], states[1])  # untouched below the top
    assert not torch.equal(states[2], states[3]) and not torch.equal(states[3], states[4])  # moved every top update
    assert "chains" in model.state_dict()  # saved with the model, so a resumed run continues its chains
