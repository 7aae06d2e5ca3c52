"""Which level of a LAPGAN limits its samples: the benchmark's sample metrics of the full cascade,
and of the cascade started from real images at a coarser level (the first 10,000 training images'
pyramids, so not the test images the metrics compare against), against MNIST's test split.

    python benchmarks/lapgan_levels.py zoo:lapgan   (needs MNIST: GENZOO_DATA or ../shared/data)

Rows: "generated from noise" is what `genzoo sample` draws; "real IxI, generated above" replaces
every level up to that side by the real image's and generates the finer residuals; "real IxI,
upsampled" adds no residuals at all (the blur the residual generators have to undo). If the
cascade from the real coarsest image scores near the real data's floor while the full cascade does
not, the coarsest GAN is what holds the model back. The real data's own figures are the floors in
the run's eval.json (FD 0.23, classifier score 9.89 for MNIST). About 3 minutes on 2 CPU cores."""

from __future__ import annotations

import argparse

import torch
from shared_data import SampleScores, load_benchmark_run

from genzoo.data import to_unit_range
from genzoo.evaluation.suite import draw_samples
from genzoo.models.lapgan import LAPGAN, laplacian_pyramid, upsample
from genzoo.runs import Run, load_split


@torch.no_grad()
def cascade_from(model: LAPGAN, start: torch.Tensor, first_level: int, generator: torch.Generator,
                 residuals: bool = True) -> torch.Tensor:
    """Images in [-1, 1] at the coarse-to-fine level ``first_level`` (0 = coarsest) run up the
    remaining levels, with generated residuals (or none)."""
    _, *residual_generators = model.generators(training=False)
    level = start
    for g in residual_generators[first_level:]:
        condition = upsample(level)
        noise = torch.randn((len(level), 1, *condition.shape[2:]), generator=generator)
        level = condition + g(condition, noise) if residuals else condition
    return level


def load_lapgan(parser: argparse.ArgumentParser, name: str) -> tuple[Run, LAPGAN]:
    """The lapgan run ``name`` and its model in eval mode (a parser error if it is none)."""
    run = load_benchmark_run(parser, name, LAPGAN, "a lapgan")
    return run, run.model.eval()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run", help="a zoo name or run directory of a lapgan")
    parser.add_argument("--samples", type=int, default=10_000)
    args = parser.parse_args()
    run, model = load_lapgan(parser, args.run)
    scores = SampleScores(run, args.samples)
    fake, _ = draw_samples(run, args.samples, seed=0)
    print(f"generated from noise:  {scores.line(fake)}", flush=True)
    train = load_split(run.config.data, "train").images[: args.samples].float() / 255
    coarse, residuals = laplacian_pyramid(train * 2 - 1, model.config.levels)
    levels = [coarse]
    for residual in residuals:
        levels.append(upsample(levels[-1]) + residual)
    fmt = model.data_format
    for first, image in enumerate(levels[:-1]):  # the finest level is the real image itself
        side = f"{image.shape[-2]}x{image.shape[-1]}"
        for with_residuals, what in ((True, "generated above"), (False, "upsampled")):
            out = cascade_from(model, image, first, torch.Generator().manual_seed(0), residuals=with_residuals)
            print(f"real {side}, {what}:  {scores.line(to_unit_range(out, fmt))}", flush=True)


if __name__ == "__main__":
    main()
