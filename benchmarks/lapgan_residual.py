"""A LAPGAN's residual level trained alone: the conditional GAN of one finer level (by default the
first above the coarsest, 7x7 -> 14x14 for MNIST), trained on real pyramids with a chosen width and
depth, swapped into a trained LAPGAN's cascade and scored by the benchmark's sample metrics
against MNIST's test split.

    python benchmarks/lapgan_residual.py RUN [--level 0] [--channels 64] [--extra-convs 3] [--epochs 10] ...

Levels of a LAPGAN train independently (each residual generator is conditioned on the real
coarser image), so one level's recipe can be tried without the others'. Every scored epoch prints
two lines: the cascade started from real images at the level's input side (the first
``--samples`` training images' pyramids, as `benchmarks/lapgan_levels.py`), which shows what the
level costs, and the cascade from noise, RUN's own coarser levels below it, which is what
`genzoo sample` would draw with it swapped in. RUN's own level is scored the same way first, as the
baseline. The networks are lapgan's ``ResidualGenerator`` and ``residual_discriminator``; Adam
with beta1 0.5, the non-saturating logistic game, one discriminator step per generator step,
batches of 128, the generator's running average (decay 0.999) sampled, seed 0 (the loop of
`benchmarks/lapgan_coarse.py`). Scores use ``--samples`` images (5,000: FDs run higher than the
benchmark's 10,000-sample ones)."""

from __future__ import annotations

import argparse

import torch
from lapgan_coarse import train_alone
from lapgan_levels import cascade_from, load_lapgan
from shared_data import SampleScores

from genzoo.data import to_unit_range
from genzoo.models.adversarial import ParameterAverage, adam_pair, mixes_batch
from genzoo.models.lapgan import (
    LAPGANConfig,
    ResidualGenerator,
    laplacian_pyramid,
    residual_discriminator,
    upsample,
)
from genzoo.runs import load_split


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "run", help="a zoo name or run directory of a lapgan (its other levels are used)"
    )
    parser.add_argument(
        "--level",
        type=int,
        default=0,
        help="the residual level to train (0 = the first above the coarsest image, 1 = the next, ...)",
    )
    parser.add_argument(
        "--channels",
        type=int,
        default=None,
        help="width of both networks (default: RUN's residual_channels)",
    )
    parser.add_argument(
        "--extra-convs",
        type=int,
        default=None,
        help="extra_convs of both networks (default: RUN's)",
    )
    parser.add_argument("--rate", type=float, default=1e-3, help="Adam's rate for both players")
    parser.add_argument("--r1", type=float, default=0.0, help="gamma of the R1 penalty (0 = off)")
    parser.add_argument(
        "--epochs",
        type=int,
        default=10,
        help="scored after epochs 1, 2, 3, 5, 10, 15, 20, 30, ... and the last",
    )
    parser.add_argument(
        "--anneal",
        type=float,
        default=None,
        metavar="FINAL",
        help="cosine-anneal both rates to this fraction of --rate over the run, every step",
    )
    parser.add_argument("--samples", type=int, default=5000)
    args = parser.parse_args()
    run, model = load_lapgan(parser, args.run)
    residual_levels = model.config.levels - 1
    if not 0 <= args.level < residual_levels:
        parser.error(
            f"--level must be 0 .. {residual_levels - 1} for a lapgan of {model.config.levels} levels"
        )
    channels = args.channels or model.config.residual_channels
    extra_convs = model.config.extra_convs if args.extra_convs is None else args.extra_convs
    if not 0 <= extra_convs <= 4 or channels < 1:
        parser.error("--extra-convs must be 0 .. 4 and --channels positive")

    train = load_split(run.config.data, "train").images.float() / 255
    coarse, residuals = laplacian_pyramid(train * 2 - 1, model.config.levels)
    level = coarse
    for residual in residuals[: args.level]:
        level = upsample(level) + residual
    condition, target = (
        upsample(level),
        residuals[args.level],
    )  # the level's input l_k and its residual h_k
    scores = SampleScores(run, args.samples)
    real_start = level[: args.samples]

    def score(generator: torch.nn.Module, what: str) -> None:
        """Both cascades with ``generator`` (eval mode) at the level, RUN's networks elsewhere."""
        noise = torch.Generator().manual_seed(1)
        from_noise = model.sample_pyramid(args.samples, generator=noise)[args.level]
        for start, name in ((real_start, "from real"), (from_noise, "from noise")):
            with torch.no_grad():
                up = upsample(start)
                finer = up + generator(
                    up, torch.randn((len(up), 1, *up.shape[2:]), generator=noise)
                )
                images = cascade_from(model, finer, args.level + 1, noise)
            print(
                f"{what}, {name} {start.shape[-2]}x{start.shape[-1]}:  "
                f"{scores.line(to_unit_range(images, model.data_format))}",
                flush=True,
            )

    _, *own = model.generators(training=False)
    score(own[args.level], f"{args.run}'s own level")

    torch.manual_seed(0)
    c, size = model.spec.channels, tuple(condition.shape[2:])
    generator = ResidualGenerator(c, channels, extra_convs)
    discriminator = residual_discriminator(c, channels, size, extra_convs)
    average = ParameterAverage(generator, 0.999)
    config = LAPGANConfig(learning_rate=args.rate, r1_weight=args.r1)
    optimizers = adam_pair(config, generator.parameters(), discriminator.parameters())

    def discriminate(pairs: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return discriminator(pairs).squeeze(1)

    def batch(indices: torch.Tensor, rng: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        up, residual = condition[indices], target[indices]
        fake = generator(up, torch.randn((len(up), 1, *size), generator=rng))
        return torch.cat([up, residual], dim=1), torch.cat([up, fake], dim=1)

    for epoch, elapsed, metrics in train_alone(
        config,
        optimizers,
        discriminate,
        batch,
        len(condition),
        epochs=args.epochs,
        anneal=args.anneal,
        average=average,
        trained=generator,
        joint_batch=not mixes_batch(discriminator),
    ):
        score(
            average.network.eval(),
            f"epoch {epoch}  {elapsed:.0f} s  D(x) {float(metrics['d_real']):.2f}",
        )


if __name__ == "__main__":
    main()
