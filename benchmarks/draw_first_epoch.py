"""DRAW's first epoch with attention, under changes to its start: the pilots behind README's
*Known problems* entry on DRAW. Each variant trains the default DRAW (T = 16, read 2x2, write 5x5)
for BATCHES batches on MNIST with the same seed and prints the test KL and loss (nats).

    python benchmarks/draw_first_epoch.py [VARIANT ...] [--batches 600]   (needs MNIST: GENZOO_DATA or ../shared/data)

About two minutes per variant on 2 CPU cores. The changes are applied to the model from outside
(none of them is in genzoo's DRAW: none helped enough to be)."""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import tempfile
from pathlib import Path

import torch
from shared_data import mnist_root

import genzoo
from genzoo.models import draw
from genzoo.models.layers import adam


def kl_warmup(model, batches: int) -> None:
    """The KL weight ramped from 0 to 1 over the first ``batches`` training batches."""
    loss_terms, seen = model.loss_terms, [0]

    def warmed(images, generator):
        terms = loss_terms(images, generator)
        if model.training:
            seen[0] += 1
            terms["loss"] = terms["reconstruction"] + min(1.0, seen[0] / batches) * terms["kl"]
        return terms
    model.loss_terms = warmed


def set_bias(layer, *, log_variance: float, stride_factor: float) -> None:
    """The window's parameters at a zero decoder state: centred, variance and stride as given."""
    with torch.no_grad():
        layer.bias.copy_(torch.tensor([0.0, 0.0, log_variance, math.log(stride_factor), 0.0]))


def tanh_centres() -> None:
    """Window centres squashed by tanh, so that they stay on the image."""
    filterbank = draw.filterbank
    draw.filterbank = lambda p, *a: filterbank(torch.cat([torch.tanh(p[:, :2]), p[:, 2:]], 1), *a)


def slow_attention(model) -> None:
    """The attention layers at a tenth of the learning rate."""
    heads = [p for n, p in model.named_parameters() if "params" in n]
    rest = [p for n, p in model.named_parameters() if "params" not in n]

    def optimizers():
        optimizer = adam(rest, lr=model.config.learning_rate)
        optimizer.add_param_group({"params": heads, "lr": model.config.learning_rate / 10})
        return {"model": optimizer}
    model.configure_optimizers = optimizers


BROAD_READ = dict(log_variance=math.log(49.0), stride_factor=14 / 27)  # points 14 px apart, sigma 7
BROAD_WRITE = dict(log_variance=math.log(12.0), stride_factor=1.0)  # the 5x5 grid tiles the image smoothly
VARIANTS = {  # name: (config overrides, change to the built model, change to the module)
    "default": ((), None, None),
    "no-attention": (("attention=false",), None, None),
    "kl-warmup": ((), lambda m, b: kl_warmup(m, b // 2), None),
    "broad-read+kl-warmup": ((), lambda m, b: (set_bias(m.to_read_params, **BROAD_READ), kl_warmup(m, b // 2)), None),
    "tanh-centres": ((), None, tanh_centres),
    "broad-write": ((), lambda m, b: set_bias(m.to_write_params, **BROAD_WRITE), None),
    "broad-read+broad-write+tanh-centres": (
        (), lambda m, b: (set_bias(m.to_read_params, **BROAD_READ), set_bias(m.to_write_params, **BROAD_WRITE)),
        tanh_centres),
    "slow-attention": ((), lambda m, b: slow_attention(m), None),
    "read-5x5": (("read_size=5",), None, None),
    "read-28x28": (("read_size=28",), None, None),
    "read-28x28+write-28x28": (("read_size=28", "write_size=28"), None, None),
}


def run(name: str, batches: int, data_dir: str) -> dict[str, float]:
    overrides, change_model, change_module = VARIANTS[name]
    filterbank, init = draw.filterbank, draw.DRAW.__init__
    if change_module:
        change_module()
    if change_model:
        def patched(self, config, spec):
            init(self, config, spec)
            change_model(self, batches)
        draw.DRAW.__init__ = patched
    try:
        config = genzoo.apply_overrides(genzoo.default_config("draw"), [
            *overrides, f"train.max_batches={batches}", "train.eval_batches=20", "train.epochs=1", "train.device=cpu"])
        config = dataclasses.replace(config, data=dataclasses.replace(config.data, data_dir=data_dir))
        with tempfile.TemporaryDirectory() as tmp:
            genzoo.train(config, Path(tmp) / "run", progress=False)
            last = [json.loads(line) for line in open(Path(tmp) / "run" / "metrics.jsonl")][-1]
    finally:
        draw.filterbank, draw.DRAW.__init__ = filterbank, init
    return {"kl": last["test/kl"], "loss": last["test/loss"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("variants", nargs="*", metavar="VARIANT", help=f"any of: {', '.join(VARIANTS)} (default: all)")
    parser.add_argument("--batches", type=int, default=600)
    args = parser.parse_args()
    if unknown := [name for name in args.variants if name not in VARIANTS]:
        parser.error(f"unknown variant {unknown[0]!r}; choose from {', '.join(VARIANTS)}")
    data_dir = mnist_root()
    print(f"| variant | test KL | test loss |  ({args.batches} batches of T = 16 DRAW)\n|---|---:|---:|")
    for name in args.variants or VARIANTS:
        result = run(name, args.batches, data_dir)
        print(f"| {name} | {result['kl']:.2f} | {result['loss']:.1f} |", flush=True)


if __name__ == "__main__":
    main()
