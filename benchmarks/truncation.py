"""The truncation trick (Brock et al. 2019) on a zoo GAN: every latent coordinate redrawn from
N(0, 1) until |z_i| <= t, then the benchmark's sample metrics (10,000 samples, seed 0, MNIST's
test split as the reference). The pilot behind README's note that truncation does not lift the
unconditional GANs' classifier score. t = 0 is the untruncated prior.

    python benchmarks/truncation.py zoo:gan 0 2 1.5 1 0.5   (needs MNIST: GENZOO_DATA or ../shared/data)

About a minute per value of t for zoo:gan on 2 CPU cores, two for zoo:dcgan. The truncation is
applied to the model from outside: it is not a genzoo option (it did not help)."""

from __future__ import annotations

import argparse

import torch
from shared_data import SampleScores, load_benchmark_run

from genzoo.evaluation.suite import draw_samples
from genzoo.models.adversarial import LatentGAN


def truncated(latents, threshold: float):
    """``latents(num, generator)`` with every coordinate beyond +-threshold redrawn until none is."""

    def draw(num: int, generator: torch.Generator | None) -> torch.Tensor:
        z = latents(num, generator)
        while threshold and (outside := z.abs() > threshold).any():
            z[outside] = latents(num, generator)[outside]
        return z

    return draw


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run", help="a zoo name or run directory of gan, cgan or dcgan")
    parser.add_argument("thresholds", nargs="+", type=float, help="t values; 0 = no truncation")
    parser.add_argument("--samples", type=int, default=10_000)
    args = parser.parse_args()
    run = load_benchmark_run(parser, args.run, LatentGAN, "a latent-variable GAN")
    model = run.model.eval()
    scores = SampleScores(run, args.samples)
    untruncated = model.latents
    for threshold in args.thresholds:
        model.latents = truncated(untruncated, threshold)
        fake, labels = draw_samples(run, args.samples, seed=0)
        print(f"{args.run}  t = {threshold:g}:  {scores.line(fake, labels)}", flush=True)


if __name__ == "__main__":
    main()
