"""Batch-norm statistics of a GAN's averaged generator recomputed from its own activations (the
"standing statistics" of Brock et al. 2019), against the shipped ones, which are the running
average of the trained generator's running statistics (``ParameterAverage``). Each line: the
benchmark's sample metrics of 10,000 samples (seed 0) against MNIST's test split. The pilot behind
README's note that the averaged statistics are not what holds the DCGAN back.

    python benchmarks/standing_statistics.py zoo:dcgan 100   (needs MNIST: GENZOO_DATA or ../shared/data)

The numbers are how many batches of 128 latents the recomputation runs. About a minute per line
for zoo:dcgan on 2 CPU cores. Not a genzoo option (it changed nothing)."""

from __future__ import annotations

import argparse

import torch
from shared_data import SampleScores, load_benchmark_run
from torch import nn

from genzoo.evaluation.suite import draw_samples
from genzoo.models.adversarial import AveragedGenerator


@torch.no_grad()
def recompute_statistics(model: AveragedGenerator, batches: int, seed: int = 1) -> None:
    """Every batch-norm layer of the sampling generator set to the plain mean of its batch
    statistics over ``batches`` batches of 128 fresh samples."""
    norms = [m for m in model.generators(False).modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None  # a cumulative average over the batches seen
        norm.train()
    generator = torch.Generator().manual_seed(seed)
    for _ in range(batches):
        model.sample(128, generator=generator)
    for norm in norms:
        norm.eval()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run", help="a zoo name or run directory of dcgan or lapgan")
    parser.add_argument("batches", nargs="+", type=int, help="batches of 128 latents for each recomputation")
    parser.add_argument("--samples", type=int, default=10_000)
    args = parser.parse_args()
    run = load_benchmark_run(parser, args.run, AveragedGenerator, "a GAN with a generator average (gan, cgan, dcgan or lapgan)")
    run.model.eval()
    scores = SampleScores(run, args.samples)
    print(f"{args.run}  shipped statistics:  {scores.line(*draw_samples(run, args.samples, seed=0))}", flush=True)
    for batches in args.batches:
        recompute_statistics(run.model, batches)
        print(f"{args.run}  standing statistics over {batches} x 128:  "
              f"{scores.line(*draw_samples(run, args.samples, seed=0))}", flush=True)


if __name__ == "__main__":
    main()
