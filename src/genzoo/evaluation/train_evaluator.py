"""Train the evaluator network for a 28x28 dataset, deterministically, on its training split only.

    python -m genzoo.evaluation.train_evaluator --dataset mnist --data-dir ../shared/data \
        --out src/genzoo/evaluation/weights/mnist-v1.safetensors

Seed 0, 12 epochs of AdamW with a one-cycle schedule, batch 128, random affine augmentation
(shifts up to 2 pixels, rotations up to 10 degrees, scaling 0.9..1.1). The test accuracy is
measured once at the end and stored in the file's metadata; the test split never guides training.
Bit-identical on the same machine and thread count (``torch.use_deterministic_algorithms``).
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from ..data import load_dataset
from .evaluator import EvaluatorNet, save_evaluator


def random_affine(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Per-image random shift (<= 2 px), rotation (<= 10 deg) and scale (0.9..1.1), vectorised."""
    n = images.shape[0]
    angle = (torch.rand(n, generator=generator) * 2 - 1) * math.radians(10)
    scale = 0.9 + torch.rand(n, generator=generator) * 0.2
    shift = (torch.rand(n, 2, generator=generator) * 2 - 1) * (2 / 14)  # 2 px in [-1, 1] units
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.stack([torch.stack([cos, -sin, shift[:, 0]], 1), torch.stack([sin, cos, shift[:, 1]], 1)], 1)
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)  # (N, H, W, 2)
    return F.grid_sample(images, grid, padding_mode="zeros", align_corners=False)


@torch.no_grad()
def accuracy(network: EvaluatorNet, images: torch.Tensor, labels: torch.Tensor) -> float:
    network.eval()
    predictions = torch.cat([network(chunk.float() / 255).argmax(1) for chunk in images.split(1000)])
    return float((predictions == labels).float().mean())


def train(dataset: str, data_dir: str | None, *, epochs: int = 12, batch_size: int = 128, seed: int = 0):
    torch.use_deterministic_algorithms(True)
    train_split = load_dataset(dataset, "train", data_dir=data_dir)
    test_split = load_dataset(dataset, "test", data_dir=data_dir)
    torch.manual_seed(seed)
    network = EvaluatorNet(num_classes=len(train_split.class_names))
    steps_per_epoch = len(train_split) // batch_size
    optimizer = torch.optim.AdamW(network.parameters(), lr=3e-3, weight_decay=5e-4)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=3e-3, total_steps=epochs * steps_per_epoch)
    generator = torch.Generator().manual_seed(seed)
    for epoch in range(epochs):
        network.train()
        started = time.perf_counter()
        order = torch.randperm(len(train_split), generator=generator)
        total = 0.0
        for step in range(steps_per_epoch):
            rows = order[step * batch_size : (step + 1) * batch_size]
            images = random_affine(train_split.images[rows].float() / 255, generator)
            loss = F.cross_entropy(network(images), train_split.labels[rows])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            total += float(loss.detach())
        print(f"epoch {epoch + 1}/{epochs}  loss {total / steps_per_epoch:.4f}  "
              f"{time.perf_counter() - started:.0f} s", file=sys.stderr, flush=True)
    network.eval()
    return network, accuracy(network, test_split.images, test_split.labels), train_split.class_names


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="mnist")
    parser.add_argument("--data-dir")
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--version", help="version name (default DATASET-v1)")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    network, test_accuracy, class_names = train(args.dataset, args.data_dir, epochs=args.epochs)
    version = args.version or f"{args.dataset}-v1"
    save_evaluator(network, args.out, version=version, dataset=args.dataset, test_accuracy=test_accuracy,
                   class_names=class_names)
    print(f"{version}: test accuracy {100 * test_accuracy:.2f} % -> {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
