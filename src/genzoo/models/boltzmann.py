"""Shared pieces of the Boltzmann machines: a Bernoulli-Bernoulli RBM layer, Gibbs steps,
contrastive-divergence statistics, annealed importance sampling, and the estimates of log Z over
one hidden layer (posterior mixture, reverse, bridge) that check AIS from both sides.

Notation (the lectures'): visible units v (V), hidden units h (H), weights W (V, H), visible
biases b (V), hidden biases c (H).

    E(v, h) = -b.v - c.h - v.W.h
    F(v)    = -b.v - sum_j softplus(c_j + (v W)_j)        (free energy: p(v) = exp(-F(v)) / Z)
    p(h_j = 1 | v) = sigmoid(c_j + (v W)_j),   p(v_i = 1 | h) = sigmoid(b_i + (W h)_i)
"""

from __future__ import annotations

import math
import sys
import warnings
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from ..data import bernoulli


def reconstruction_nats(probabilities: torch.Tensor, data: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of binary ``data`` (B, V) under Bernoulli ``probabilities``, summed over units and
    averaged over rows: nats per image."""
    return F.binary_cross_entropy(probabilities, data, reduction="none").sum(1).mean()


class RBMLayer(nn.Module):
    """The parameters of one RBM and its conditionals. Training is done by the model that owns
    it (contrastive divergence fills in ``.grad``; no autograd)."""

    def __init__(self, visible: int, hidden: int, *, generator: torch.Generator | None = None):
        super().__init__()
        # Small random weights, zero biases (Hinton 2010, "A practical guide to training RBMs", sec. 8).
        self.weight = nn.Parameter(0.01 * torch.randn(visible, hidden, generator=generator))
        self.visible_bias = nn.Parameter(torch.zeros(visible))
        self.hidden_bias = nn.Parameter(torch.zeros(hidden))

    def hidden_probabilities(self, visible: torch.Tensor, scale: float = 1.0) -> torch.Tensor:
        """p(h = 1 | v); ``scale`` 2 doubles the input, as in a DBM's bottom-layer pretraining."""
        return torch.sigmoid(scale * (visible @ self.weight + self.hidden_bias))

    def visible_probabilities(self, hidden: torch.Tensor, scale: float = 1.0) -> torch.Tensor:
        """p(v = 1 | h); ``scale`` 2 doubles the input, as in a DBM's top-layer pretraining."""
        return torch.sigmoid(scale * (hidden @ self.weight.T + self.visible_bias))

    def reconstruction_error(self, visible: torch.Tensor, up: float = 1.0, down: float = 1.0) -> torch.Tensor:
        """Cross-entropy of the one-step mean-field reconstruction p(v | p(h|v)), nats per image: a
        cheap progress signal, not a likelihood (``up`` / ``down`` as in :meth:`gibbs_step`)."""
        return reconstruction_nats(self.visible_probabilities(self.hidden_probabilities(visible, up), down), visible)

    def free_energy(self, visible: torch.Tensor) -> torch.Tensor:
        """F(v) per row (B,), in nats."""
        return -(visible @ self.visible_bias) - F.softplus(visible @ self.weight + self.hidden_bias).sum(1)

    def hidden_log_p_star(self, hidden: torch.Tensor) -> torch.Tensor:
        """log p*(h) = c.h + sum_i softplus((b + W h)_i) per row (B,), v summed out, in float64."""
        hidden = hidden.double()
        return hidden @ self.hidden_bias.double() + F.softplus(hidden @ self.weight.double().T
                                                                + self.visible_bias.double()).sum(1)

    def gibbs_step(self, visible: torch.Tensor, generator: torch.Generator | None, *, up: float = 1.0,
                   down: float = 1.0):
        """v -> h ~ p(h|v) -> v' ~ p(v|h'); returns (v' samples, p(v'|h))."""
        hidden = bernoulli(self.hidden_probabilities(visible, up), generator)
        probabilities = self.visible_probabilities(hidden, down)
        return bernoulli(probabilities, generator), probabilities


class BaseRate:
    """Mixin for Boltzmann machines (nn.Modules): running pixel means of the training data, the
    base-rate model made from them (the start of AIS) and samples from it, where the Gibbs
    samplers start. Chains started from fair coin flips (half the pixels on, against about 13 %
    in MNIST) can fall into a spurious mode that chains started near the data never visit."""

    def init_base_rate(self, num_pixels: int) -> None:
        self.register_buffer("pixel_sum", torch.zeros(num_pixels))
        self.register_buffer("pixel_count", torch.zeros(()))

    def count_pixels(self, visible: torch.Tensor) -> None:
        self.pixel_sum += visible.sum(0)
        self.pixel_count += len(visible)

    def base_rate(self) -> torch.Tensor:
        """Visible biases of the base-rate model (fair coins before any training)."""
        return base_rate_bias(self.pixel_sum, float(self.pixel_count))

    def base_rate_sample(self, num: int, generator: torch.Generator | None) -> torch.Tensor:
        return bernoulli(torch.sigmoid(self.base_rate()).expand(num, -1), generator)


@torch.no_grad()
def contrastive_divergence(
    layer: RBMLayer,
    data: torch.Tensor,
    negative_start: torch.Tensor,
    *,
    steps: int,
    generator: torch.Generator | None,
    up: float = 1.0,
    down: float = 1.0,
) -> torch.Tensor:
    """Fill ``layer``'s ``.grad`` with the negative log-likelihood gradient estimated by CD-k
    (negative chains started at the data) or PCD-k (started at persistent chains):

        -dlog p/dW = -(<v h>_data - <v h>_model), with h replaced by p(h|v) in both terms
        (Hinton 2002; Tieleman 2008 for persistent chains).

    ``up`` / ``down`` scale the inputs of p(h|v) / p(v|h): 2 gives the doubled conditionals of
    a DBM's greedy pretraining (Salakhutdinov & Hinton 2009, sec. 3.1); 1 is a plain RBM.
    Returns the chains' final visible samples (the new persistent state).
    """
    positive_hidden = layer.hidden_probabilities(data, up)
    visible = negative_start
    for _ in range(steps):
        visible, _ = layer.gibbs_step(visible, generator, up=up, down=down)
    negative_hidden = layer.hidden_probabilities(visible, up)
    layer.weight.grad = -(data.T @ positive_hidden / len(data) - visible.T @ negative_hidden / len(visible))
    layer.visible_bias.grad = -(data.mean(0) - visible.mean(0))
    layer.hidden_bias.grad = -(positive_hidden.mean(0) - negative_hidden.mean(0))
    return visible


def sgd_with_momentum(layers: list[RBMLayer], *, learning_rate: float, momentum: float, weight_decay: float):
    """SGD with momentum; L2 weight decay on the weights only, not the biases (Hinton 2010, sec. 10)."""
    weights = [layer.weight for layer in layers]
    biases = [p for layer in layers for p in (layer.visible_bias, layer.hidden_bias)]
    return torch.optim.SGD(
        [{"params": weights, "weight_decay": weight_decay}, {"params": biases, "weight_decay": 0.0}],
        lr=learning_rate, momentum=momentum,
    )


def base_rate_bias(pixel_sum: torch.Tensor, count: float, *, pseudocount: float = 0.05) -> torch.Tensor:
    """Visible biases of the base-rate model: the log-odds of each pixel's mean over ``count``
    training images, smoothed (Salakhutdinov & Murray 2008, sec. 4.2)."""
    mean = (pixel_sum + pseudocount) / (count + 2 * pseudocount)
    return torch.log(mean) - torch.log1p(-mean)


def ais_schedule(num_steps: int) -> torch.Tensor:
    """Inverse temperatures 0 = beta_0 < ... < beta_K = 1 in Salakhutdinov & Murray's proportions:
    500 / 4000 / 10000 of 14500 steps on [0, 0.5], [0.5, 0.9], [0.9, 1]."""
    counts = [max(1, round(num_steps * share)) for share in (500 / 14500, 4000 / 14500)]
    counts.append(max(1, num_steps - sum(counts)))
    pieces = [torch.linspace(lo, hi, n + 1, dtype=torch.float64)[:-1] for (lo, hi), n in
              zip(((0.0, 0.5), (0.5, 0.9), (0.9, 1.0)), counts, strict=True)]
    return torch.cat([*pieces, torch.ones(1, dtype=torch.float64)])


@torch.no_grad()
def ais_log_partition(
    layer: RBMLayer,
    base_bias: torch.Tensor,
    *,
    num_chains: int,
    num_steps: int,
    generator: torch.Generator | None,
    runs: int = 1,
    progress: bool = False,
) -> dict[str, float]:
    """log Z of an RBM by annealed importance sampling from a base-rate model
    (Salakhutdinov & Murray 2008, sec. 4), as ``runs`` independent runs of ``num_chains`` chains.

    The intermediate distributions are p_beta(v) proportional to
        exp((1 - beta) b_A.v + beta b.v) prod_j (1 + exp(beta (c_j + (v W)_j))),
    sampled by one Gibbs sweep each. The chains and their matrix products are float32 (the cost);
    the log-weight increments are formed and summed in float64 from the same activations, so the
    rounding of a product changes the state a weight is computed for, not the weight's
    consistency (checked against float64 throughout, tests/test_boltzmann.py).
    """
    weight, b, c = layer.weight.float(), layer.visible_bias.float(), layer.hidden_bias.float()
    base = base_bias.float().to(weight.device)
    hidden_units = weight.shape[1]
    log_z_base = float(F.softplus(base.double()).sum()) + hidden_units * math.log(2.0)
    visible_term = (b - base).double()  # d/dbeta of the visible part of log p*_beta

    v = bernoulli(torch.sigmoid(base).expand(runs * num_chains, -1), generator)
    log_w = torch.zeros(runs * num_chains, dtype=torch.float64, device=weight.device)
    betas = ais_schedule(num_steps).tolist()
    for beta_previous, beta in annealing(betas, progress):
        activation = torch.addmm(c, v, weight)  # (chains, H), shared by both terms and the transition
        log_w += (beta - beta_previous) * (v.double() @ visible_term) + softplus_difference(activation, beta, beta_previous)
        hidden = bernoulli(torch.sigmoid(beta * activation), generator)
        v = bernoulli(torch.sigmoid((1 - beta) * base + beta * torch.addmm(b, hidden, weight.T)), generator)
    return ais_result(log_w, log_z_base, runs=runs)


def annealing(betas: list[float], progress: bool):
    """Consecutive pairs of inverse temperatures, with a progress bar if asked for."""
    pairs = zip(betas[:-1], betas[1:], strict=True)
    return tqdm(pairs, total=len(betas) - 1, desc="AIS", unit="step", leave=False, disable=not progress,
                file=sys.stderr, mininterval=0.5)


def softplus_difference(activation: torch.Tensor, beta: float, beta_previous: float) -> torch.Tensor:
    """sum_j softplus(beta a_j) - softplus(beta' a_j) per row, summed in float64.

    The two terms are close, and their float32 difference would lose most of its digits; with
    x = beta' a and d = (beta - beta') a the difference is log1p(sigmoid(x) expm1(d)), accurate to
    float32's relative precision for small d (for |d| >= 1 the plain difference is accurate)."""
    x = beta_previous * activation
    d = (beta - beta_previous) * activation
    small = torch.log1p(torch.sigmoid(x) * torch.expm1(d.clamp(max=1.0)))
    difference = torch.where(d.abs() < 1, small, F.softplus(x + d) - F.softplus(x))
    return difference.double().sum(1)


def _mean_and_std(values: list[float]) -> tuple[float, float]:
    mean = sum(values) / len(values)
    return mean, (sum((x - mean) ** 2 for x in values) / (len(values) - 1)) ** 0.5 if len(values) > 1 else 0.0


def ais_result(log_weights: torch.Tensor, log_z_base: float, *, runs: int = 1) -> dict[str, float]:
    """log Z = log Z_A + log mean(w) over all chains, with error bars log(mean(w) -/+ 3 standard
    errors) (Salakhutdinov & Murray 2008); with several runs also each run's own estimate and their
    standard deviation, the spread a reader can trust when a few chains carry most of the weight."""
    log_mean = float(torch.logsumexp(log_weights, 0)) - math.log(len(log_weights))
    relative = torch.exp(log_weights - log_weights.max())
    spread = float(3 * relative.std() / math.sqrt(len(log_weights)) / relative.mean())
    per_run = [log_z_base + float(torch.logsumexp(w, 0)) - math.log(len(w)) for w in log_weights.view(runs, -1)]
    mean, std = _mean_and_std(per_run)
    return {
        "log_z": log_z_base + log_mean,
        "log_z_low": log_z_base + log_mean + math.log1p(-min(spread, 1 - 1e-12)),
        "log_z_high": log_z_base + log_mean + math.log1p(spread),
        "log_z_runs": per_run,
        "log_z_run_mean": mean,
        "log_z_run_std": std,
    }


def likelihood_report(log_p_star: float, partition: dict, *, num_chains: int, num_steps: int, runs: int,
                      num_images: int) -> dict:
    """Mean test NLL = log Z - mean log p*(v) (nats per image) from an estimate of log Z with the
    keys of :func:`ais_result`: the pooled estimate with its interval (AIS: 3 standard errors; a
    DBM's bridge: its estimates from below and from above), and the mean and standard deviation over
    the runs."""
    return {
        "nll": partition["log_z"] - log_p_star,
        "nll_low": partition["log_z_low"] - log_p_star,
        "nll_high": partition["log_z_high"] - log_p_star,
        "nll_run_mean": partition["log_z_run_mean"] - log_p_star,
        "nll_run_std": partition["log_z_run_std"],
        "log_z": partition["log_z"],
        "log_z_runs": partition["log_z_runs"],
        "ais_chains": num_chains,
        "ais_steps": num_steps,
        "ais_runs": runs,
        "num_images": num_images,
    }


# -- log Z over one hidden layer, from both sides ----------------------------------------------
# For a model whose unnormalised marginal p*(h) of one hidden layer is known in closed form (an RBM's
# h with v summed out; a DBM's h1 with v and h2 summed out), log Z = log sum_h p*(h) can be estimated
# from draws of a proposal q(h) and from the model's own Gibbs chains, beside AIS.
MIXTURE_SAMPLES = 10_000  # proposal draws per run: on the 400-epoch DBM 5 runs' bridges spread 0.36 nats (std)
MIXTURE_FLOOR = 0.005  # each component's probabilities clamped to [floor, 1 - floor]: 0.003-0.02 agreed within 1 nat
REVERSE_CHAINS = 2000  # Gibbs chains of `gibbs_steps` sweeps per run (48 s on 2 cores for the DBM row)


def factorial_mixture(means: torch.Tensor):
    """The mixture q(h) = (1/N) sum_n prod_j Bernoulli(h_j; mu_nj) of N factorial components
    (``means`` (N, H), clamped to [MIXTURE_FLOOR, 1 - MIXTURE_FLOOR]): (component means, log q)."""
    mu = means.double().clamp(MIXTURE_FLOOR, 1 - MIXTURE_FLOOR)
    logit, log_off = (mu.log() - (1 - mu).log()).T, (1 - mu).log().sum(1)

    def log_q(hidden: torch.Tensor) -> torch.Tensor:
        return torch.logsumexp(torch.addmm(log_off, hidden.double(), logit), 1) - math.log(len(mu))

    return mu, log_q


def bridge_log_ratio(forward: torch.Tensor, backward: torch.Tensor, *, iterations: int = 200) -> float:
    """log(Z_p / Z_q) by the optimal bridge sampler (Meng & Wong 1996, eq. 4.1) from log w =
    log(p* / q) on n_q draws of q (``forward``) and n_p draws of p (``backward``): the fixed point of
        r = mean_q[w / (s_p w + s_q r)] / mean_p[1 / (s_p w + s_q r)],   s_p = n_p / n, s_q = n_q / n,
    iterated in log space from the forward estimate. With n_q >> n_p it tends to plain importance
    sampling from q, mean_q[w]; with n_p >> n_q to the reverse estimate, 1 / mean_p[1 / w]."""
    forward, backward = forward.double(), backward.double()
    n_q, n_p = len(forward), len(backward)
    log_s_p, log_s_q = math.log(n_p / (n_q + n_p)), math.log(n_q / (n_q + n_p))
    log_r = float(torch.logsumexp(forward, 0)) - math.log(n_q)
    for _ in range(iterations):
        shift = forward.new_tensor(log_s_q + log_r)
        numerator = float(torch.logsumexp(forward - torch.logaddexp(log_s_p + forward, shift), 0)) - math.log(n_q)
        denominator = float(torch.logsumexp(-torch.logaddexp(log_s_p + backward, shift), 0)) - math.log(n_p)
        updated, log_r = log_r, numerator - denominator
        if abs(updated - log_r) < 1e-9:
            return log_r
    warnings.warn(f"the bridge estimate moved {abs(updated - log_r):.2g} nats in its last of {iterations} iterations",
                  RuntimeWarning, stacklevel=2)
    return log_r


@torch.no_grad()
def hidden_log_partition(
    log_p_star: Callable[[torch.Tensor], torch.Tensor],
    mixture,
    chain_hidden: Callable[[int, torch.Generator | None], torch.Tensor],
    *,
    samples: int,
    chains: int,
    generator: torch.Generator | None,
    runs: int = 1,
    chunk: int = 1000,
) -> dict:
    """Three estimates of log Z = log sum_h p*(h), from ``runs`` independent runs, each of
    ``samples`` draws of a proposal q (``mixture``: :func:`factorial_mixture`) and ``chains`` draws of
    the model's Gibbs chains (``chain_hidden(n, generator)`` -> (n, H)), with w = p*(h) / q(h):
    - ``mixture``: Z = E_q[w] (an :func:`ais_result`). The floor gives q every state, so the
      estimate of Z is unbiased whatever the components (they only decide where it looks): in
      expectation a lower bound on log Z.
    - ``reverse``: 1/Z = E_p[1/w]: in expectation an upper bound on log Z, if the chains are draws
      from p.
    - ``bridge``: Meng & Wong's optimal bridge between the two sets (:func:`bridge_log_ratio`):
      consistent, and far less variable than either side when q and p overlap little. Each run's
      own bridge gives the spread (``bridge_runs``, ``bridge_run_std``); ``bridge`` pools them all.
    Reverse and bridge need the chains' draws from p. On the 500-unit RBM row, whose AIS converges
    (log Z 234.74 over five runs at 14,500 steps, 234.67 in one at 100,000), five runs of 10,000
    draws and 2,000 chains put the bridge 0.27 nats above AIS, the mixture 2.07 below, the reverse
    2.09 above; on a 20-40 DBM whose chains do not mix, the bridge was 0.36 nats under the exact
    log Z."""
    mu, log_q = mixture

    def log_weights(hidden: torch.Tensor) -> torch.Tensor:
        return log_p_star(hidden) - log_q(hidden)

    forward, backward = [], []
    for _ in range(runs):
        draws = []
        for start in range(0, samples, chunk):
            picks = torch.randint(len(mu), (min(chunk, samples - start),), generator=generator, device=mu.device)
            draws.append(log_weights(bernoulli(mu[picks], generator)))
        forward.append(torch.cat(draws))
        backward.append(log_weights(chain_hidden(chains, generator)))
    bridges = [bridge_log_ratio(f, b) for f, b in zip(forward, backward, strict=True)]
    pooled_backward = torch.cat(backward)
    mean, std = _mean_and_std(bridges)
    return {"mixture": ais_result(torch.cat(forward), 0.0, runs=runs),
            "reverse": -(float(torch.logsumexp(-pooled_backward, 0)) - math.log(len(pooled_backward))),
            "bridge": bridge_log_ratio(torch.cat(forward), pooled_backward),
            "bridge_runs": bridges, "bridge_run_mean": mean, "bridge_run_std": std}


def partition_checks(estimates: dict, log_p_star: float) -> dict[str, float]:
    """The report's entries for :func:`hidden_log_partition`'s three estimates: each log Z and the
    NLL it gives, log Z - mean log p*(v)."""
    values = {"mixture": estimates["mixture"]["log_z"], "reverse": estimates["reverse"], "bridge": estimates["bridge"]}
    return {key: value for name, log_z in values.items()
            for key, value in ((f"log_z_{name}", log_z), (f"nll_{name}", log_z - log_p_star))}


@torch.no_grad()
def exact_log_partition(layer: RBMLayer) -> float:
    """log Z by enumerating every hidden configuration (for tests; H <= 20)."""
    hidden_units = layer.weight.shape[1]
    codes = torch.arange(2**hidden_units)
    hidden = ((codes[:, None] >> torch.arange(hidden_units)) & 1).double()  # (2^H, H)
    weight, b, c = layer.weight.double(), layer.visible_bias.double(), layer.hidden_bias.double()
    return float(torch.logsumexp(hidden @ c + F.softplus(hidden @ weight.T + b).sum(1), 0))
