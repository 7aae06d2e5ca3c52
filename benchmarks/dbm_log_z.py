"""Diagnostics of a DBM's log Z: the pilots behind README's *Known problems* entry on AIS missing most
of the zoo DBM's partition function.

    python benchmarks/dbm_log_z.py zoo:dbm [--steps 14500]   (needs MNIST: GENZOO_DATA or ../shared/data)
    python benchmarks/dbm_log_z.py zoo:dbm --sweeps 1000,5000   (the last three only, at each chain length)
    python benchmarks/dbm_log_z.py zoo:dbm --raise-images 100 --steps 14500   (RAISE only: a conservative NLL)

Prints, for the first 10,000 dynamically binarised test images (seed 0, as the benchmark):
- for a first hidden layer of at most 26 units, log Z exactly, by enumerating h1;
- a deterministic lower bound on log Z: the largest log p*(h1) over the h1 states found from the
  images' mean field, thresholded and then improved by zero-temperature sweeps (Z >= p*(h1) for
  any single h1);
- genzoo's two lower bounds in expectation (base-rate AIS, one run; the posterior mixture), its
  reverse check from above and the bridge between the last two (the three share one timing);
- AIS in (n, h1) from the posterior mixture itself (n the mixture component, an auxiliary
  variable, so that every transition is a Gibbs step): a path that starts at the data, tried
  and not shipped;
- the same three from a mixture of the model's own chains' conditionals p(h1 | v, h2) instead of
  the test images' posteriors (the reverse check and the bridge use other chains): if the chains
  have mixed, that mixture tends to p(h1) itself as it grows;
- the mean-field bound on log p*(v) and, above it, the importance-sampled log p*(v) (h1 drawn from
  the mean field, h2 summed out): how much of the NLL's uncertainty is the bound's (the rest is
  log Z's).

About 30 minutes for zoo:dbm at the default 14,500 steps on a 2-core machine about 3.9 times slower
than the one the earlier figures came from (single state 56 s, AIS 192 s, mixture AIS 404 s, the
test-image mixture with reverse and bridge 204 s, the chains' mixture 596 s, importance-sampled
log p*(v) 46 s); on that machine the exact sum took 13 s for a first layer of 20 units and 244 s
for 24.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import time

import torch
from shared_data import mnist_root

import genzoo
from genzoo.data import bernoulli
from genzoo.models.boltzmann import (
    MIXTURE_FLOOR,
    MIXTURE_SAMPLES,
    REVERSE_CHAINS,
    ais_schedule,
    factorial_mixture,
    hidden_log_partition,
    softplus_difference,
)

MAX_EXACT_UNITS = 26  # first layers up to this size also get log Z exactly, by enumeration
CHAIN_COMPONENTS = 4000  # Gibbs chains whose conditionals p(h1 | v, h2) make the second mixture


def best_single_state(model, visible: torch.Tensor, sweeps: int = 30) -> float:
    """max log p*(h1) over h1 = [mean field > 1/2], each then moved to its zero-temperature fixed
    point: h1 = [c1 + E[v|h1] W1 + W2 E[h2|h1] > 0]."""
    middle = (model.mean_field(visible)[0] > 0.5).float()
    best = model.log_p_star_h1(middle).max()
    for _ in range(sweeps):
        field = model.bottom.visible_probabilities(middle) @ model.bottom.weight
        field = field + model.h2_given(middle) @ model.top.weight.T + model.bottom.hidden_bias
        middle = (field > 0).float()
        best = torch.maximum(best, model.log_p_star_h1(middle).max())
    return float(best)


def exact_log_partition(model, chunk: int = 1 << 16) -> float:
    """log Z = log sum over every h1 of p*(h1) (v and h2 summed out analytically): 2^H1 states, so
    for small first layers only (H1 <= MAX_EXACT_UNITS; each unit more doubles the time: 13 s for 20
    units, 244 s for 24, on a slow 2-core machine)."""
    size = model.bottom.weight.shape[1]
    bits = 2 ** torch.arange(size)
    parts = []
    for start in range(0, 2**size, chunk):
        states = ((torch.arange(start, min(start + chunk, 2**size)).unsqueeze(1) & bits) > 0).float()
        parts.append(torch.logsumexp(model.log_p_star_h1(states), 0))
    return float(torch.logsumexp(torch.stack(parts), 0))


def mixture_ais(model, visible: torch.Tensor, *, chains: int, steps: int, generator) -> float:
    """log Z by AIS over (n, h1) with v and h2 summed out in the weights:
        f_beta(n, h1) = (q_n(h1) / N)^(1 - beta) (p*(h1) / N)^beta,
    q_n the n-th image's clamped mean-field posterior: summed over n, the mixture at beta = 0
    (times 2^(V + H2) from v and h2) and p*(h1) at beta = 1. The N's cancel in the weights.
    Transitions: v, h2 | h1; h1 | v, h2, n; n | h1."""
    w1, w2 = model.bottom.weight, model.top.weight
    b, c1, c2 = model.bottom.visible_bias, model.bottom.hidden_bias, model.top.hidden_bias
    mu = model.mean_field(visible)[0].clamp(MIXTURE_FLOOR, 1 - MIXTURE_FLOOR)
    logit, log_off = mu.log() - (1 - mu).log(), (1 - mu).log().sum(1)
    n = torch.randint(len(mu), (chains,), generator=generator)
    middle = bernoulli(mu[n], generator)
    log_w = torch.zeros(chains, dtype=torch.float64)
    betas = ais_schedule(steps).tolist()
    for beta_previous, beta in zip(betas[:-1], betas[1:], strict=True):
        to_visible, to_top = torch.addmm(b, middle, w1.T), torch.addmm(c2, middle, w2)
        log_q = (middle * logit[n]).sum(1).double() + log_off[n].double()
        log_w += ((beta - beta_previous) * ((middle @ c1).double() - log_q)
                  + softplus_difference(to_visible, beta, beta_previous) + softplus_difference(to_top, beta, beta_previous))
        v, top = bernoulli(torch.sigmoid(beta * to_visible), generator), bernoulli(torch.sigmoid(beta * to_top), generator)
        middle = bernoulli(torch.sigmoid(beta * (torch.addmm(c1, v, w1) + top @ w2.T) + (1 - beta) * logit[n]), generator)
        if beta < 1:
            scores = (1 - beta) * (middle @ logit.T + log_off)
            n = torch.multinomial(torch.softmax(scores, 1), 1, generator=generator).squeeze(1)
    num_visible, num_top = w1.shape[0], w2.shape[1]
    return float(torch.logsumexp(log_w, 0)) - math.log(chains) + (num_visible + num_top) * math.log(2.0)


def both_sides(model, mixture, *, generator, samples: int = MIXTURE_SAMPLES) -> dict:
    """log Z over h1 from ``mixture`` and REVERSE_CHAINS of the model's chains, one run (the mixture,
    reverse and bridge estimates of genzoo's DBM likelihood)."""
    return hidden_log_partition(model.log_p_star_h1, mixture, model.chain_hidden, samples=samples, chains=REVERSE_CHAINS,
                                generator=generator)


def sweep_counts(text: str) -> list[int]:
    """'1000,5000' -> [1000, 5000] (argparse reports anything else as an invalid value)."""
    return [int(n) for n in text.split(",")]


@torch.no_grad()
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run", help="a DBM run directory or zoo name")
    parser.add_argument("--steps", type=int, default=14_500, help="intermediate distributions of both AIS paths")
    parser.add_argument("--images", type=int, default=10_000)
    parser.add_argument("--sweeps", type=sweep_counts, default=None,
                        help="only the mixture, reverse and bridge estimates, once for each of these sweeps of "
                             "the reverse check's chains (comma-separated; the model's gibbs_steps otherwise)")
    parser.add_argument("--raise-images", type=int, default=0, metavar="N",
                        help="only RAISE: the conservative NLL of the first N test images, by annealing each back "
                             "to the base rate over --steps distributions")
    args = parser.parse_args()
    data_dir = mnist_root()
    model = genzoo.load(args.run)
    test = genzoo.load_dataset("mnist", "test", data_dir=data_dir, download=False)
    generator = torch.Generator().manual_seed(0)
    visible = bernoulli(test.images[: args.images].flatten(1).float() / 255, generator)

    def report(what: str, started: float, value: float) -> None:
        print(f"{what:<58} {value:8.2f}   ({time.perf_counter() - started:.0f} s)", flush=True)

    if args.raise_images:
        subset = visible[: args.raise_images]
        started = time.perf_counter()
        log_w = torch.cat([model.reverse_annealed_log_likelihood(part, num_steps=args.steps, generator=generator)
                           for part in subset.split(500)])
        spread = float(log_w.std()) / math.sqrt(len(log_w))
        report(f"RAISE NLL of {len(subset)} images, {args.steps} steps (+- {spread:.2f})", started, -float(log_w.mean()))
        print(f"mean-field bound on log p*(v) of those images: {float(model.variational_bound(subset).double().mean()):.2f}")
        return
    if args.sweeps:
        for sweeps in args.sweeps:
            model.config = dataclasses.replace(model.config, gibbs_steps=sweeps)
            started = time.perf_counter()
            estimates = both_sides(model, model.posterior_mixture(visible), generator=generator)
            report(f"{sweeps} sweeps: mixture", started, estimates["mixture"]["log_z"])
            report(f"{sweeps} sweeps: reverse, {REVERSE_CHAINS} chains", started, estimates["reverse"])
            report(f"{sweeps} sweeps: bridge", started, estimates["bridge"])
        return
    if model.bottom.weight.shape[1] <= MAX_EXACT_UNITS:
        started = time.perf_counter()
        report(f"exact, by enumerating all 2^{model.bottom.weight.shape[1]} h1 states", started, exact_log_partition(model))
    started = time.perf_counter()
    report("best single h1 state (a sure lower bound)", started, best_single_state(model, visible))
    started = time.perf_counter()
    ais = model.ais_log_partition(num_chains=100, num_steps=args.steps, generator=generator)
    report(f"AIS from the base rate, 100 chains x {args.steps}", started, ais["log_z"])
    started = time.perf_counter()
    report(f"AIS from the posterior mixture, 100 chains x {args.steps}", started,
           mixture_ais(model, visible[:2000], chains=100, steps=args.steps, generator=generator))
    started = time.perf_counter()
    estimates = both_sides(model, model.posterior_mixture(visible), generator=generator)
    report(f"posterior mixture, {MIXTURE_SAMPLES} samples", started, estimates["mixture"]["log_z"])
    report(f"reverse, {REVERSE_CHAINS} chains (an upper bound if they mixed)", started, estimates["reverse"])
    report("bridge between the two", started, estimates["bridge"])
    started = time.perf_counter()
    chain_v, chain_top, _ = model.chain_states(CHAIN_COMPONENTS, generator)
    estimates = both_sides(model, factorial_mixture(model.h1_given(chain_v, chain_top)), generator=generator,
                           samples=2 * MIXTURE_SAMPLES)
    report(f"mixture of {CHAIN_COMPONENTS} chains' p(h1 | v, h2), {2 * MIXTURE_SAMPLES} samples", started,
           estimates["mixture"]["log_z"])
    report(f"reverse from it, {REVERSE_CHAINS} other chains", started, estimates["reverse"])
    report("bridge between the two", started, estimates["bridge"])
    bound = float(model.variational_bound(visible).double().mean())
    print(f"mean-field bound on log p*(v): {bound:.2f}; NLL = log Z - {bound:.2f}")
    started = time.perf_counter()
    refined = torch.cat([model.importance_log_p_star(part, samples=100, generator=generator)
                         for part in visible.split(500)])
    report("log p*(v) by importance sampling 100 draws of h1 (mean)", started, float(refined.mean()))


if __name__ == "__main__":
    main()
