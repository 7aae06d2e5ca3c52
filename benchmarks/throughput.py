"""Training throughput of every registered model: images per second at its default batch size, and
the achieved GFLOP/s from a FLOP count of one training step (forward and backward).

    .venv/bin/python benchmarks/throughput.py [--models vae cvae] [--steps 30] [--device cpu]

The data are random MNIST-shaped batches (1 x 28 x 28, 10 classes): the cost of a step does not
depend on pixel values. FLOPs are counted by ``torch.utils.flop_counter.FlopCounterMode``
(matrix multiplications and convolutions, forward and backward; element-wise work and the
optimizer update are not counted), so GFLOP/s is a lower bound on the arithmetic done.
"""

from __future__ import annotations

import argparse
import sys
import time

import torch
from torch.utils.flop_counter import FlopCounterMode

import genzoo
from genzoo.data import BatchLoader, ImageData
from genzoo.registry import MODELS
from genzoo.runs import build_model, select_device


def random_mnist(count: int, generator: torch.Generator) -> ImageData:
    images = torch.randint(0, 256, (count, 1, 28, 28), dtype=torch.uint8, generator=generator)
    labels = torch.randint(0, 10, (count,), generator=generator)
    return ImageData("random", "train", images, labels, tuple(str(d) for d in range(10)))


def measure(name: str, *, steps: int, warmup: int, device: torch.device) -> dict[str, float]:
    """``name`` is a model, or MODEL:PRESET."""
    model_name, _, preset = name.partition(":")
    config = genzoo.default_config(model_name, preset=preset or None)
    batch_size = config.train.batch_size
    generator = torch.Generator().manual_seed(0)
    data = random_mnist(batch_size * (steps + warmup + 1), generator).to(device)
    model = build_model(config, data.spec).to(device)
    optimizers = model.configure_optimizers()
    loader = BatchLoader(data, batch_size=batch_size, fmt=model.data_format, drop_last=True)
    noise = torch.Generator(device=device).manual_seed(0)
    batches = list(loader.batches(None, noise))
    with FlopCounterMode(display=False) as counter:
        model.train_step(batches[0], optimizers, generator=noise)
    flops_per_step = counter.get_total_flops()
    for batch in batches[1 : warmup + 1]:
        model.train_step(batch, optimizers, generator=noise)
    if device.type == "cuda":
        torch.cuda.synchronize()
    started = time.perf_counter()
    for batch in batches[warmup + 1 : warmup + 1 + steps]:
        metrics = model.train_step(batch, optimizers, generator=noise)
    float(metrics["loss"])  # wait for the last step
    seconds = time.perf_counter() - started
    return {
        "batch_size": batch_size,
        "images_per_second": steps * batch_size / seconds,
        "gflop_per_step": flops_per_step / 1e9,
        "gflop_per_second": steps * flops_per_step / seconds / 1e9,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="*", default=[*MODELS, "dcgan:upsampling"],
                        help="models, or MODEL:PRESET (default: every model, and the upsampling DCGAN)")
    parser.add_argument("--steps", type=int, default=30, help="timed training steps per model")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--device", default="cpu", choices=["auto", "cpu", "cuda", "mps"])
    args = parser.parse_args(argv)
    for name in args.models:
        genzoo.get_entry(name.partition(":")[0])  # a clear error for a misspelt model
    device = select_device(args.device)
    print(f"device {device}, torch {torch.__version__}, {torch.get_num_threads()} threads", file=sys.stderr)
    print("| model | batch | images/s | GFLOP/step (fwd+bwd) | GFLOP/s |")
    print("|---|---:|---:|---:|---:|")
    for name in args.models:
        row = measure(name, steps=args.steps, warmup=args.warmup, device=device)
        print(f"| {name} | {row['batch_size']} | {row['images_per_second']:.0f} | "
              f"{row['gflop_per_step']:.3f} | {row['gflop_per_second']:.1f} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
