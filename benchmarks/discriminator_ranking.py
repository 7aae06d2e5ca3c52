"""Keeping a GAN's samples that its own discriminator likes best (in the spirit of discriminator
rejection sampling, Azadi et al. 2019): draw a pool of samples, rank them by the discriminator's
logit (batch norm by batch statistics, as in training), keep the top ``--samples``, and score them
with the benchmark's sample metrics (MNIST's test split as the reference). Also prints how well the
logit tracks the bundled classifier's confidence. The pilot behind README's note that the
discriminator does not know which digits are ambiguous.

    python benchmarks/discriminator_ranking.py zoo:dcgan 10000 20000 40000   (needs MNIST: GENZOO_DATA or ../shared/data)

A pool equal to --samples is the unranked sampler. About a minute per pool size for zoo:dcgan on
2 CPU cores. Not a genzoo option (it did not help enough)."""

from __future__ import annotations

import argparse

import torch
from shared_data import SampleScores, load_benchmark_run

from genzoo.evaluation.suite import draw_samples
from genzoo.models.adversarial import LatentGAN, batch_statistics


@torch.no_grad()
def logits(model: LatentGAN, images: torch.Tensor, batch: int = 128) -> torch.Tensor:
    """The discriminator's logits for [0, 1] images."""
    symmetric = images * 2 - 1
    with batch_statistics(model.discriminator):
        return torch.cat([model.discriminate(symmetric[i : i + batch]) for i in range(0, len(images), batch)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run", help="a zoo name or run directory of an unconditional gan or dcgan")
    parser.add_argument("pools", nargs="+", type=int, help="candidate pool sizes (at least --samples)")
    parser.add_argument("--samples", type=int, default=10_000)
    args = parser.parse_args()
    run = load_benchmark_run(parser, args.run, LatentGAN, "a latent-variable GAN")
    if run.model.conditional:
        parser.error(f"{args.run} is not an unconditional latent-variable GAN")
    if min(args.pools) < args.samples:
        parser.error("every pool must hold at least --samples images")
    sample_scores = SampleScores(run, args.samples)
    pool, _ = draw_samples(run, max(args.pools), seed=0)
    scores = logits(run.model, pool)
    _, probabilities = sample_scores.evaluator.features_and_probabilities(pool)
    correlation = torch.corrcoef(torch.stack([scores, probabilities.max(1).values]))[0, 1]
    print(f"{args.run}: correlation of the discriminator's logit with the classifier's confidence {correlation:.2f}")
    for size in args.pools:
        candidates = scores[:size]
        kept = pool[:size][candidates.argsort(descending=True)[: args.samples]]
        print(f"{args.run}  best {args.samples} of {size}:  {sample_scores.line(kept)}", flush=True)


if __name__ == "__main__":
    main()
