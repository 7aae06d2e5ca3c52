"""``genzoo benchmark speed``: how fast every model trains here, against the machine's own limit and
against the lectures' Keras code.

For every registered model and preset, on MNIST-shaped random data (the cost of a step does not
depend on pixel values) and through the training loop's own code paths (batch conversion, memory
layout, fused optimizers):

- training images per second at the model's default batch size, after a warm-up (the median of
  five bursts of steps);
- achieved GFLOP/s from a FLOP count of one training step (``torch.utils.flop_counter``: matrix
  products and convolutions, forward and backward; element-wise work is not counted, so this is
  a lower bound on the arithmetic done), and that as a share of the machine's float32 matrix-
  product peak, measured right before and after the row because this machine's speed drifts;
- the per-epoch overhead: the held-out evaluation on a 10,000-image test split, and the preview
  grid plus the sample-quality check (which the loop runs only within ``train.overhead_budget``),
  each as a share of a 60,000-image epoch.

With ``--keras-python`` (the Python of a venv holding keras, jax and tensorflow-cpu; see
``../shared/peers/README.md``), the four seed models run in Keras right after the matching genzoo
row, on their best backends, and the table gives genzoo's speed as a multiple of theirs.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

from ..config import apply_overrides
from ..data import ImageData, bernoulli
from ..errors import GenzooError
from ..models.base import Sampler
from ..registry import MODELS, get_entry
from ..runs import build_model, default_config
from ..trainer import Trainer
from .callbacks import SampleQuality
from .evaluator import bundled_evaluator

TRAIN_IMAGES, TEST_IMAGES = 60_000, 10_000  # an MNIST epoch and test split
BURSTS = 5  # timed steps are split into bursts; a row's rate is their median


@dataclass(frozen=True)
class KerasReference:
    """How the lectures' Keras model matching a genzoo row is timed (../shared/peers/keras_ref.py)."""

    model: str
    backend: str
    args: tuple[str, ...]
    work: str  # how its work per image compares with genzoo's row


# The four seed models on their fastest backend here (../shared/peers/README.md).
KERAS = {
    "vae:mlp-64": KerasReference("mlp_vae", "jax", ("--steps", "3000", "--mode", "fit"), "same network and batch"),
    "vae": KerasReference("conv_vae", "tensorflow", ("--steps", "150", "--mode", "tob"),
                          "same network and batch (Keras trains it with RMSprop, genzoo with Adam)"),
    "gan": KerasReference("mlp_gan", "jax", ("--steps", "200",),
                          "Keras runs the generator twice per iteration (predict, then the stacked model); genzoo "
                          "once: 3.7 vs 4.1 GFLOP per 128 real images"),
    "dcgan:upsampling": KerasReference("dcgan", "torch", ("--steps", "4", "--warmup", "2"),
                                       "Keras' generator step draws 256 latents, genzoo's 128; genzoo's generator "
                                       "has batch norm (Keras' collapsed without it, README)"),
}


def matmul_gflops(size: int = 1024, seconds: float = 0.5) -> float:
    """float32 matrix-product throughput with torch's current threads (best of short bursts)."""
    a, b = torch.randn(size, size), torch.randn(size, size)
    a @ b
    best, deadline = 0.0, time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        started = time.perf_counter()
        for _ in range(4):
            a @ b
        best = max(best, 4 * 2 * size**3 / (time.perf_counter() - started))
    return best / 1e9


def random_images(count: int, split: str, generator: torch.Generator, shape=(1, 28, 28)) -> ImageData:
    images = torch.randint(0, 256, (count, *shape), dtype=torch.uint8, generator=generator)
    labels = torch.randint(0, 10, (count,), generator=generator)
    return ImageData("random", split, images, labels, tuple(str(d) for d in range(10)))


def measure(name: str, *, steps: int, warmup: int, overrides: tuple[str, ...] = ()) -> dict:
    """One row: ``name`` is MODEL or MODEL:PRESET, trained for ``warmup`` then ``steps`` timed steps."""
    model_name, _, preset = name.partition(":")
    config = apply_overrides(default_config(model_name, preset=preset or None), ["train.device=cpu", *overrides])
    generator = torch.Generator().manual_seed(0)
    batch_size = config.train.batch_size
    shape = image_shape(name)
    train_data = random_images(batch_size * (warmup + steps + 1), "train", generator, shape)
    test_data = random_images(TEST_IMAGES, "test", generator, shape)
    model = build_model(config, train_data.spec)
    evaluator = bundled_evaluator("mnist")
    # The check is timed, not read: an untrained model on random images covers few classes, so no warning.
    callbacks = (SampleQuality(evaluator, min_classes=0),) if isinstance(model, Sampler) and shape == (1, 28, 28) else ()
    peak_before = matmul_gflops()
    with tempfile.TemporaryDirectory(prefix="genzoo-speed-") as tmp:
        trainer = Trainer(model, train_data, test_data, config.train, run_dir=Path(tmp), device=torch.device("cpu"),
                          progress=False, callbacks=callbacks)
        (Path(tmp) / "samples").mkdir()
        batches = list(trainer.train_loader.batches(None, trainer.noise_generator))
        for batch in batches[:warmup]:
            trainer._train_step(batch)
        # The FLOPs of a step like the timed ones: after the warm-up, a phased model (the DBM's
        # pretraining, then joint training) is in the phase its timed steps run.
        with FlopCounterMode(display=False) as counter:
            trainer._train_step(batches[warmup])
        bursts = []  # this machine's speed drifts within seconds: the median of several bursts
        timed = batches[warmup + 1 : warmup + 1 + steps]
        for burst in (timed[i::BURSTS] for i in range(BURSTS)):
            if burst:
                started = time.perf_counter()
                for batch in burst:
                    trainer._train_step(batch)
                bursts.append((time.perf_counter() - started) / len(burst))
        step_seconds = statistics.median(bursts)
        started = time.perf_counter()
        trainer.evaluate()
        eval_seconds = time.perf_counter() - started
        started = time.perf_counter()
        for callback in callbacks:
            callback.epoch_metrics(trainer)
        trainer._save_preview()
        extras_seconds = time.perf_counter() - started
    peak = (peak_before + matmul_gflops()) / 2
    flops = counter.get_total_flops()
    epoch_seconds = TRAIN_IMAGES // batch_size * step_seconds
    return {
        "name": name if shape == (1, 28, 28) else f"{name} ({shape[0]} x {shape[1]} x {shape[2]})",
        "batch_size": batch_size, "images_per_second": batch_size / step_seconds,
        "gflop_per_step": flops / 1e9, "gflop_per_second": flops / step_seconds / 1e9, "peak_gflops": peak,
        "share_of_peak": flops / step_seconds / 1e9 / peak, "epoch_seconds": epoch_seconds,
        "eval_share": eval_seconds / epoch_seconds, "extras_share": extras_seconds / epoch_seconds,
        "eval_seconds": eval_seconds, "extras_seconds": extras_seconds,
    }


def keras_images_per_second(reference: KerasReference, python: str, script: Path) -> dict:
    """Run the Keras reference in its own interpreter; returns its JSON line (images_per_s, calib)."""
    command = [python, str(script), reference.model, *reference.args]
    env = {**os.environ, "KERAS_BACKEND": reference.backend}
    try:
        done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=1800, check=True)
    except (OSError, subprocess.SubprocessError) as exc:
        raise GenzooError(f"the Keras reference failed ({' '.join(command)}): {exc}") from None
    return json.loads(done.stdout.strip().splitlines()[-1])


# Presets made for 64-pixel colour images (the seeds' face examples); "mlp-64" is 64 hidden units.
COLOUR_64 = ("radford-64", "conv-64")


# Rows whose first steps are not the ones most of their training runs, timed again in that phase:
# the DBM's first 12,000 updates (20 epochs) are cheap CD-1 pretraining, its other 130 epochs joint
# training (mean field and persistent chains).
LATER_PHASES = {"dbm": ("joint training", ("pretrain_updates=1",))}


def image_shape(name: str) -> tuple[int, int, int]:
    """MNIST's shape, or 3 x 64 x 64 for presets made for 64-pixel colour images."""
    model, _, preset = name.partition(":")
    return (3, 64, 64) if preset in COLOUR_64 else (1, 28, 28)


def default_rows() -> list[str]:
    """Every registered model and every preset that is not its default."""
    rows = []
    for name, entry in MODELS.items():
        rows.append(name)
        rows += [f"{name}:{preset}" for preset, config in entry.presets.items() if config != entry.config]
    return rows


def run_speed(rows: list[str] | None, *, steps: int, keras_python: str | None, keras_script: Path | None,
              compile_rows: tuple[str, ...] = ("vae:mlp-64", "gan"), log=sys.stderr) -> list[dict]:
    """Measure ``rows`` (default: :func:`default_rows`), plus compiled variants of ``compile_rows``."""
    rows = rows or default_rows()
    for row in rows:
        model, _, preset = row.partition(":")
        if preset:
            get_entry(model).preset(preset)
        else:
            get_entry(model)
    results = []
    for row in rows:
        heavy = row in ("dcgan:upsampling", "context-encoder")  # seconds per step: fewer of them
        variants = [("", ())]
        if row in compile_rows:
            variants.append((" (compiled)", ("train.compile=true",)))
        if row in LATER_PHASES:
            phase, phase_overrides = LATER_PHASES[row]
            variants.append((f" ({phase})", phase_overrides))
        for suffix, overrides in variants:
            label = row + suffix
            print(f"genzoo benchmark speed: {label}", file=log, flush=True)
            result = measure(row, steps=max(3, steps // 8) if heavy else steps, warmup=2 if heavy else 10,
                             overrides=overrides)
            result["name"] = result["name"].replace(row, label, 1)
            if not overrides and keras_python and row in KERAS:
                reference = KERAS[row]
                print(f"genzoo benchmark speed: Keras {reference.model} ({reference.backend})", file=log, flush=True)
                keras = keras_images_per_second(reference, keras_python, keras_script)
                result["keras"] = {"backend": reference.backend, "images_per_second": keras["images_per_s"],
                                   "calib_sgemm_gflops": keras.get("calib_sgemm_gflops"), "work": reference.work}
            results.append(result)
    return results


def likelihood_speed(*, images: int = 8, importance_samples: int = 500, ais_steps: int = 725) -> list[dict]:
    """Extrapolated cost of the benchmark's likelihood protocols from short measured slices:
    importance sampling on all 10,000 test images (K = 5000 for the VAEs, K = 100 for DRAW) and
    one AIS run (100 chains x 14,500 steps) for the RBM and the DBM, at the zoo rows' sizes."""
    from ..data import DataSpec
    from .benchmark import BINARIZED_CONV_VAE, row_named
    from .likelihood import estimate_log_likelihood

    spec = DataSpec(1, 28, 28, 10)
    generator = torch.Generator().manual_seed(0)
    binary = (torch.rand(images, 1, 28, 28, generator=generator) < 0.13).float()
    conv = apply_overrides(default_config("vae"), list(BINARIZED_CONV_VAE))
    results = []
    draw = row_named("draw").config("")
    for what, config, samples in (("`vae` row (MLP VAE), K = 5000", row_named("vae").config(""), 5000),
                                  ("conv VAE (16/32 channels, dense 256, 32-D), K = 5000", conv, 5000),
                                  (f"`draw` row (T = {draw.model_config.steps}), K = 100", draw, 100)):
        model = build_model(config, spec).eval().to(memory_format=torch.channels_last)
        per_image = min(importance_samples, samples) if "draw" not in what else 20
        started = time.perf_counter()
        estimate_log_likelihood(model, binary, None, importance_samples=per_image, iwae_k=10, generator=generator)
        per_pass = (time.perf_counter() - started) / (images * per_image)
        results.append({"what": f"importance-sampled NLL, {what}, 10,000 test images",
                        "rate": f"{1 / per_pass:,.0f} samples/s", "minutes": samples * 10_000 * per_pass / 60})
    boltzmann = {name: build_model(row_named(name).config(""), spec).eval() for name in ("rbm", "dbm")}
    for name, model in boltzmann.items():
        started = time.perf_counter()
        model.ais_log_partition(num_chains=100, num_steps=ais_steps, generator=generator)
        per_step = (time.perf_counter() - started) / ais_steps
        results.append({"what": f"AIS log Z, `{name}` row, 100 chains x 14,500 steps, one run",
                        "rate": f"{1 / per_step:,.0f} steps/s", "minutes": 14_500 * per_step / 60})
    results += [partition_checks_speed("rbm", boltzmann["rbm"], boltzmann["rbm"].layer.hidden_log_p_star,
                                       samples=importance_samples, generator=generator),
                partition_checks_speed("dbm", boltzmann["dbm"], boltzmann["dbm"].log_p_star_h1,
                                       samples=importance_samples, generator=generator)]
    return results


def partition_checks_speed(name: str, model, log_p_star, *, samples: int, generator: torch.Generator) -> dict:
    """A Boltzmann machine's log Z over one hidden layer from both sides on the full protocol (5 runs,
    each of MIXTURE_SAMPLES draws of the posterior mixture of 10,000 test images and REVERSE_CHAINS
    Gibbs chains of ``gibbs_steps`` sweeps), from slices, timed on random images of MNIST's density;
    ``log_p_star`` is the model's p*(h) of that layer."""
    from ..models.boltzmann import MIXTURE_SAMPLES, REVERSE_CHAINS

    components = (torch.rand(10_000, model.spec.num_pixels, generator=generator) < 0.13).float()
    started = time.perf_counter()
    mu, log_q = model.posterior_mixture(components)  # paid once per estimate, not per sample
    mean_field = time.perf_counter() - started
    started = time.perf_counter()
    hidden = bernoulli(mu[torch.randint(len(mu), (samples,), generator=generator)], generator)
    log_p_star(hidden) - log_q(hidden)
    per_sample = (time.perf_counter() - started) / samples
    sweeps, seconds = model.config.gibbs_steps, {}
    for steps in (1, 3):  # the chains' cost per sweep, start and final draw of h left out
        model.config = replace(model.config, gibbs_steps=steps)
        started = time.perf_counter()
        model.chain_hidden(REVERSE_CHAINS, generator)
        seconds[steps] = time.perf_counter() - started
    model.config = replace(model.config, gibbs_steps=sweeps)
    per_sweep = max(seconds[3] - seconds[1], 0.0) / 2
    total = mean_field + 5 * (MIXTURE_SAMPLES * per_sample + seconds[1] + (sweeps - 1) * per_sweep)
    return {"what": f"log Z from both sides, `{name}` row: 5 runs of {MIXTURE_SAMPLES:,} posterior-mixture draws and "
                    f"{REVERSE_CHAINS:,} chains x {sweeps:,} sweeps",
            "rate": f"{1 / per_sample:,.0f} samples/s", "minutes": total / 60}


def markdown(results: list[dict], likelihood: list[dict], *, threads: int) -> str:
    lines = [f"CPU, torch {torch.__version__}, {threads} threads; MNIST-shaped batches; peak = float32 1024 x 1024 "
             "matrix product measured before and after each row.", "",
             "| model | batch | images/s | GFLOP/step | GFLOP/s | peak GFLOP/s | share of peak | "
             "eval / epoch | preview + quality / epoch | Keras images/s (backend) | genzoo / Keras |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in results:
        keras = r.get("keras")
        keras_cells = (f"{keras['images_per_second']:,.0f} ({keras['backend']}) | "
                       f"**{r['images_per_second'] / keras['images_per_second']:.2f}x**") if keras else "- | -"
        lines.append(
            f"| `{r['name']}` | {r['batch_size']} | {r['images_per_second']:,.0f} | {r['gflop_per_step']:.3f} | "
            f"{r['gflop_per_second']:.1f} | {r['peak_gflops']:.0f} | {100 * r['share_of_peak']:.0f} % | "
            f"{100 * r['eval_share']:.1f} % | {100 * r['extras_share']:.1f} % | {keras_cells} |")
    works = [f"- `{r['name']}` against Keras: {r['keras']['work']}." for r in results if r.get("keras")]
    if works:
        lines += ["", *works]
    if likelihood:
        lines += ["", "| likelihood protocol | measured rate | full protocol (extrapolated) |", "|---|---:|---:|"]
        lines += [f"| {row['what']} | {row['rate']} | {row['minutes']:.1f} min |" for row in likelihood]
    return "\n".join(lines) + "\n"
