"""A LAPGAN's coarsest level trained alone: a GAN on the real images' coarsest pyramid level (7x7
for MNIST; with ``--level 1`` the next finer one, 14x14), its samples run up a trained LAPGAN's
residual generators above that level and scored by the benchmark's sample metrics against
MNIST's test split.

    python benchmarks/lapgan_coarse.py RUN [--level 1] [--architecture conv] [--rate 1e-3] [--epochs 20] ...

Levels of a LAPGAN train independently on real pyramids, so a recipe for the coarsest level can be
tried in seconds an epoch instead of the whole cascade's minutes (`benchmarks/lapgan_levels.py`
says which level holds a model back). RUN should have good residual levels: its cascade from the
real coarsest images is this script's ceiling. The networks: ``--architecture conv`` is lapgan's
own ``coarse_convolutional_gan``; ``radford`` its ``coarse_radford_gan``, dcgan's networks with
one strided layer (for ``--level 1``); ``mlp`` has the layout of lapgan's MLPs (LeakyReLU, tanh output)
with this script's variants (separate generator widths, a minibatch-std head), its discriminator's
head drawn before its hidden layers, so not lapgan's initial weights for a seed. Seed 0; Adam with beta1 0.5, the non-saturating
logistic game, one discriminator step per generator step (real and fake batches apart for a
discriminator with batch norm), batches of 128 (optionally a cosine
schedule), and the generator's running average (decay 0.999) sampled. Scores use ``--samples``
images (5,000: FDs run higher than the benchmark's 10,000-sample ones)."""

from __future__ import annotations

import argparse
import math
import time
from collections.abc import Iterator

import torch
from lapgan_levels import cascade_from, load_lapgan
from shared_data import SampleScores
from torch import nn

from genzoo.data import to_unit_range
from genzoo.models.adversarial import (
    ParameterAverage,
    adam_pair,
    adversarial_iteration,
    mixes_batch,
)
from genzoo.models.gan import MinibatchStd
from genzoo.models.lapgan import (
    LAPGANConfig,
    coarse_convolutional_gan,
    coarse_radford_gan,
    laplacian_pyramid,
)
from genzoo.models.layers import leaky_relu, mlp
from genzoo.runs import load_split

SCORED_EPOCHS = {1, 2, 3, 5, 10, 15, 20, 30, 40, 60, 80, 100}


def dims(text: str) -> tuple[int, ...]:
    return tuple(int(d) for d in text.split(","))


def train_alone(config: LAPGANConfig, optimizers: dict[str, torch.optim.Optimizer], discriminate, batch,
                size: int, *, epochs: int, anneal: float | None, average: ParameterAverage, trained: nn.Module,
                joint_batch: bool) -> Iterator[tuple[int, float, dict]]:
    """One level's GAN trained alone: epochs of batches of 128 (``batch(indices, rng)`` -> real and
    fake, the fake still carrying the generator's graph) through the adversarial iteration, the
    running ``average`` of the ``trained`` generator updated after every step; yields (epoch,
    seconds so far, the last step's metrics) after the scored epochs. Seed 0 for the order and the
    noise; optionally both rates cosine-annealed to ``anneal`` times their starting values."""
    rng = torch.Generator().manual_seed(0)
    steps = epochs * (size // 128)
    groups = [(group, group["lr"]) for optimizer in optimizers.values() for group in optimizer.param_groups]
    start, step = time.time(), 0
    for epoch in range(1, epochs + 1):
        order = torch.randperm(size, generator=rng)
        for i in range(0, size - 127, 128):
            if anneal is not None:
                fraction = anneal + (1 - anneal) * 0.5 * (1 + math.cos(math.pi * step / steps))
                for group, rate in groups:
                    group["lr"] = rate * fraction
            step += 1
            real, fake = batch(order[i:i + 128], rng)
            metrics = adversarial_iteration(config, discriminate, optimizers, real=real, fake=fake, joint_batch=joint_batch)
            average.update(trained)
        if epoch in SCORED_EPOCHS or epoch == epochs:
            yield epoch, time.time() - start, metrics


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run", help="a zoo name or run directory of a lapgan (its residual generators are used)")
    parser.add_argument("--level", type=int, default=0,
                        help="the pyramid level to train the GAN at (0 = the coarsest, 1 = the next finer, ...); "
                             "its samples run up RUN's residual levels above it")
    parser.add_argument("--architecture", choices=("mlp", "conv", "radford"), default="mlp",
                        help="conv: lapgan's coarse_architecture; radford: dcgan's networks (even sides only: "
                             "--level 1); both take --channels, radford --extra-convs and --full-size-convs, mlp the other network flags")
    parser.add_argument("--channels", type=int, default=64, help="width of the conv or radford networks")
    parser.add_argument("--extra-convs", type=int, default=1, help="extra_convs of the radford networks")
    parser.add_argument("--full-size-convs", type=int, default=0,
                        help="coarse_full_size_convs of the radford networks (3x3 convolutions at the level's own size)")
    parser.add_argument("--rate", type=float, default=2e-4, help="Adam's rate for both players")
    parser.add_argument("--generator-rate-ratio", type=float, default=1.0,
                        help="the generator's rate as a multiple of --rate (2 with --rate 5e-4: D at 5e-4, G at 1e-3)")
    parser.add_argument("--r1", type=float, default=0.0, help="gamma of the R1 penalty (0 = off)")
    parser.add_argument("--minibatch-std", type=int, default=0, help="group of a minibatch-std feature in D (0 = off)")
    parser.add_argument("--dims", type=dims, default=(512, 512), help="hidden layers of D (and of G unless --generator-dims)")
    parser.add_argument("--generator-dims", type=dims, default=None)
    parser.add_argument("--dropout", type=float, default=0.3, help="in the discriminator")
    parser.add_argument("--epochs", type=int, default=20, help="scored after epochs 1, 2, 3, 5, 10, 15, 20, 30, ... and the last")
    parser.add_argument("--anneal", type=float, default=None, metavar="FINAL",
                        help="cosine-anneal both rates to this fraction of --rate over the run, every step (0.02 as the gan row)")
    parser.add_argument("--samples", type=int, default=5000)
    args = parser.parse_args()
    run, model = load_lapgan(parser, args.run)
    if not 0 <= args.level < model.config.levels - 1:
        parser.error(f"--level must be 0 .. {model.config.levels - 2} for a lapgan of {model.config.levels} levels")
    scores = SampleScores(run, args.samples)
    train = load_split(run.config.data, "train").images.float() / 255
    coarse, _ = laplacian_pyramid(train * 2 - 1, model.config.levels - args.level)
    shape = coarse.shape[1:]
    if args.architecture == "radford" and (shape[1] % 2 or shape[2] % 2):
        parser.error(f"--architecture radford needs even sides, not {shape[1]}x{shape[2]} (use --level 1)")
    coarse = coarse.flatten(1)
    pixels, latent = coarse.shape[1], model.config.latent_dim

    torch.manual_seed(0)
    group = args.minibatch_std
    if args.architecture == "conv":
        generator, discriminator = coarse_convolutional_gan(latent, tuple(shape), args.channels)
    elif args.architecture == "radford":
        generator, discriminator = coarse_radford_gan(latent, tuple(shape), args.channels, args.extra_convs,
                                                      args.full_size_convs)
    else:
        g_dims = args.generator_dims or args.dims
        generator = nn.Sequential(mlp((latent, *g_dims), activation=leaky_relu), nn.Linear(g_dims[-1], pixels), nn.Tanh())
        head = nn.Sequential(MinibatchStd(group), nn.Linear(args.dims[-1] + 1, 1)) if group else nn.Linear(args.dims[-1], 1)
        discriminator = nn.Sequential(mlp((pixels, *args.dims), activation=leaky_relu, dropout=args.dropout), head)
    average = ParameterAverage(generator, 0.999)
    config = LAPGANConfig(learning_rate=args.rate, generator_rate_ratio=args.generator_rate_ratio, r1_weight=args.r1)
    optimizers = adam_pair(config, generator.parameters(), discriminator.parameters())

    def discriminate(images: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return discriminator(images).squeeze(1)

    def batch(indices: torch.Tensor, rng: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        return coarse[indices], generator(torch.randn(len(indices), latent, generator=rng)).flatten(1)

    for epoch, elapsed, metrics in train_alone(config, optimizers, discriminate, batch, len(coarse), epochs=args.epochs,
                                               anneal=args.anneal, average=average, trained=generator,
                                               joint_batch=not (group or mixes_batch(discriminator))):
        with torch.no_grad():
            noise = torch.Generator().manual_seed(1)
            images = average.network.eval()(torch.randn(args.samples, latent, generator=noise)).view(-1, *shape)
            images = cascade_from(model, images, args.level, noise)
        print(f"epoch {epoch}  {elapsed:.0f} s  D(x) {float(metrics['d_real']):.2f}  "
              f"{scores.line(to_unit_range(images, model.data_format))}", flush=True)


if __name__ == "__main__":
    main()
