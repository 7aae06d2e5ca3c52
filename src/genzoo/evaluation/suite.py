"""The evaluation suite: every metric that applies to a run, beside its real-vs-real floor.

``evaluate_run`` is what ``genzoo evaluate`` calls. Which metrics apply follows from the model's
capabilities (sampling, encoding, denoising, importance sampling) and from whether an evaluator
exists for the dataset; what does not apply is listed under ``skipped`` with the reason.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from tqdm.auto import tqdm

from ..data import BatchLoader, ImageData, to_model_input, to_unit_range
from ..errors import GenzooError
from ..fileio import atomic_write_text
from ..models.base import (
    Denoiser,
    ImportanceSampled,
    Inpainter,
    LatentCodec,
    PartitionFunctionModel,
    Sampler,
)
from ..models.context_encoder import mean_fill
from ..runs import Run, load_split
from ..trainer import evaluate_loss
from .evaluator import Evaluator, bundled_evaluator, load_evaluator
from .likelihood import estimate_log_likelihood
from .metrics import (
    ClassCoverage,
    ClassifierScore,
    ConditionalAccuracy,
    DenoisingGain,
    FrechetDistance,
    KernelDistance,
    PrecisionRecall,
    ReconstructionError,
)

SAMPLE_METRICS = ("fd", "kid", "prdc", "classifier-score", "class-coverage", "conditional-accuracy")
METRICS = ("test-loss", *SAMPLE_METRICS, "reconstruction", "denoising", "inpainting", "likelihood")
CHUNK = 1000  # images generated / encoded at once
# Raised whenever an estimator changes what it reports, so that the benchmark does not reuse a
# result made by an earlier one (2: the Boltzmann machines' log Z over one hidden layer).
EVALUATION_VERSION = 2


@dataclass(frozen=True)
class EvaluationOptions:
    metrics: tuple[str, ...] = ()  # empty = every metric that applies
    exclude: tuple[str, ...] = ()  # metrics to leave out of "every metric that applies"
    num_samples: int = 10_000  # generated images for the sample metrics
    split: str = "test"  # the reference split
    seed: int = 0
    importance_samples: int = 1000  # K of the NLL estimate (5000 for the README's figures)
    iwae_k: int = 50
    ais_chains: int = 100  # annealed importance sampling of log Z (Boltzmann machines)
    ais_steps: int = 14_500  # intermediate distributions (Salakhutdinov & Murray 2008)
    ais_runs: int = 1  # independent AIS runs: their spread is the error bar a reader can trust
    likelihood_images: int = 0  # images of the split used for likelihoods; 0 = all
    evaluator: str = ""  # path of a user evaluator; "" = the one genzoo ships for the dataset


# What `genzoo evaluate` runs: a quick protocol by default (about a minute for most zoo models on 2
# CPU cores), and the benchmark's with --full (the README's figures; minutes to an hour).
QUICK = EvaluationOptions(num_samples=2000, importance_samples=500, likelihood_images=1000, ais_runs=1)
FULL = EvaluationOptions(num_samples=10_000, importance_samples=5000, likelihood_images=0, ais_runs=5)


def applicable(run: Run, evaluator: Evaluator | None) -> tuple[list[str], dict[str, str]]:
    """(metrics that apply, {metric: why it does not})."""
    model, name = run.model, run.config.model
    reasons: dict[str, str] = {}
    for metric in SAMPLE_METRICS:
        if not isinstance(model, Sampler):
            reasons[metric] = f"{name} does not sample"
        elif evaluator is None:
            reasons[metric] = (f"no evaluator for dataset {run.config.data.dataset!r}; pass --evaluator "
                               "(train one with python -m genzoo.evaluation.train_evaluator)")
    if "conditional-accuracy" not in reasons and not model.conditional:
        reasons["conditional-accuracy"] = f"{name} is not conditional"
    elif "conditional-accuracy" not in reasons and len(evaluator.class_names) != len(run.class_names):
        reasons["conditional-accuracy"] = (f"the evaluator knows {len(evaluator.class_names)} classes, "
                                           f"the data {len(run.class_names)}")
    if not isinstance(model, LatentCodec):
        reasons["reconstruction"] = f"{name} does not reconstruct"
    if not isinstance(model, Denoiser) or model.corruption == "none":
        reasons["denoising"] = f"{name} is not a denoising model"
    if not isinstance(model, Inpainter):
        reasons["inpainting"] = f"{name} does not inpaint"
    if not isinstance(model, (ImportanceSampled, PartitionFunctionModel)):
        reasons["likelihood"] = f"{name} has no likelihood estimate"
    return [m for m in METRICS if m not in reasons], reasons


def binarization_protocol(run: Run, seed: int) -> str:
    kind = run.model.data_format.binarize
    if kind == "dynamic":
        return f"dynamic: one fresh Bernoulli draw of each image, seed {seed}"
    if kind == "static":
        return "static: thresholded at 0.5"
    return ("none: grey levels in a Bernoulli likelihood (not a likelihood of binary data; "
            "not comparable with binarised-MNIST figures)")


def _device(run: Run) -> torch.device:
    return next(run.model.parameters()).device


def _model_inputs(run: Run, data: ImageData, seed: int, count: int | None = None):
    """The split's images in the model's format (binarised with a fixed seed) on its device."""
    images = data.images[:count] if count else data.images
    labels = data.labels[: len(images)].to(_device(run)) if run.model.conditional else None
    inputs = to_model_input(images, run.model.data_format, torch.Generator().manual_seed(seed))
    return inputs.to(_device(run)), labels


@torch.no_grad()
def draw_samples(run: Run, num: int, seed: int, *, progress: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``num`` samples in [0, 1] (balanced labels for conditional models) and their labels."""
    generator = torch.Generator(device=_device(run)).manual_seed(seed)
    labels = torch.arange(num, device=_device(run)) % len(run.class_names) if run.model.conditional else None
    chunks = []
    for start in tqdm(range(0, num, CHUNK), desc="sampling", unit="chunk", disable=not progress, leave=False,
                      file=sys.stderr):
        chunk_labels = None if labels is None else labels[start : start + CHUNK]
        chunks.append(run.model.sample(min(CHUNK, num - start), labels=chunk_labels, generator=generator).cpu())
    return torch.cat(chunks), None if labels is None else labels.cpu()


def sample_set_metrics(evaluator: Evaluator, real: torch.Tensor, fake: torch.Tensor, *,
                       fake_labels: torch.Tensor | None, seed: int, which: list[str]) -> dict[str, float]:
    """The sample metrics of ``fake`` against ``real`` (both [0, 1] images), one evaluator pass each."""
    real_features, _ = evaluator.features_and_probabilities(real)
    fake_features, fake_probabilities = evaluator.features_and_probabilities(fake)
    results: dict[str, float] = {}
    for name, metric in (("fd", FrechetDistance()), ("kid", KernelDistance(seed=seed)), ("prdc", PrecisionRecall())):
        if name in which:
            metric.update(real_features, real=True)
            metric.update(fake_features, real=False)
            results.update(metric.compute())
    if "classifier-score" in which:
        score = ClassifierScore()
        score.update(fake_probabilities)
        results.update(score.compute())
    if "class-coverage" in which:
        coverage = ClassCoverage(len(evaluator.class_names))
        coverage.update(fake_probabilities)
        results.update(coverage.compute())
    if "conditional-accuracy" in which and fake_labels is not None:
        accuracy = ConditionalAccuracy()
        accuracy.update(fake_probabilities, fake_labels)
        results.update(accuracy.compute())
    return results


def evaluate_run(run: Run, options: EvaluationOptions = EvaluationOptions(), *, progress: bool = False) -> dict:
    """Evaluate a loaded run; returns the content of ``eval.json``. ``progress`` shows progress
    bars with time estimates for the long parts (sampling, likelihoods)."""
    started = time.perf_counter()
    evaluator = load_evaluator(options.evaluator) if options.evaluator else bundled_evaluator(run.config.data.dataset)
    which, skipped = applicable(run, evaluator)
    if options.metrics:
        unknown = [m for m in options.metrics if m not in METRICS]
        if unknown:
            raise GenzooError(f"unknown metric {unknown[0]!r}; metrics: {', '.join(METRICS)}")
        not_applicable = [m for m in options.metrics if m in skipped]
        if not_applicable:
            raise GenzooError(f"metric {not_applicable[0]!r} does not apply: {skipped[not_applicable[0]]}")
        which = list(options.metrics)
    which = [m for m in which if m not in options.exclude]
    reference = load_split(run.config.data, options.split)
    model = run.model.eval()
    metrics: dict[str, float] = {}
    floors: dict[str, float] = {}
    protocol: dict = {"split": options.split, "seed": options.seed}

    if "test-loss" in which:
        loader = BatchLoader(reference.to(_device(run)), batch_size=500, fmt=model.data_format, drop_last=False)
        losses = evaluate_loss(model, loader, torch.Generator(device=_device(run)).manual_seed(options.seed))
        metrics.update({f"{options.split}_{k}": v for k, v in losses.items()})

    sample_metrics = [m for m in which if m in SAMPLE_METRICS]
    if sample_metrics:
        num = min(options.num_samples, len(reference))
        real = reference.images[:num].float() / 255
        fake, fake_labels = draw_samples(run, options.num_samples, options.seed, progress=progress)
        metrics.update(sample_set_metrics(evaluator, real, fake, fake_labels=fake_labels, seed=options.seed,
                                          which=sample_metrics))
        # The floor: real training images against the same reference images, same sizes.
        train = load_split(run.config.data, "train")
        subset = torch.randperm(len(train), generator=torch.Generator().manual_seed(options.seed))[:options.num_samples]
        floor_images = train.images[subset].float() / 255
        floors = sample_set_metrics(evaluator, real, floor_images, fake_labels=train.labels[subset],
                                    seed=options.seed, which=sample_metrics)
        floors.pop("conditional_accuracy", None)
        protocol.update(
            evaluator={"version": evaluator.version, "test_accuracy": evaluator.test_accuracy},
            num_samples=options.num_samples,
            reference=f"{options.split} split, first {num} images",
            floor=f"{len(subset)} random training images (seed {options.seed}) against the same reference",
            kid=f"mean over 100 subsets of {min(1000, num, options.num_samples)}",
            prdc="k = 5 nearest neighbours",
        )

    if "reconstruction" in which or "denoising" in which:
        inputs, labels = _model_inputs(run, reference, options.seed)
        error, gain = ReconstructionError(), DenoisingGain()
        noise = torch.Generator(device=_device(run)).manual_seed(options.seed)
        with torch.no_grad():
            for start in range(0, len(inputs), CHUNK):
                x = inputs[start : start + CHUNK]
                y = None if labels is None else labels[start : start + CHUNK]
                clean = to_unit_range(x, model.data_format)
                if "reconstruction" in which:
                    error.update(clean.cpu(), model.reconstruct(x, y).cpu())
                if "denoising" in which:
                    noisy = model.corrupt(x, noise)
                    denoised = model.reconstruct(noisy, y)
                    gain.update(clean.cpu(), to_unit_range(noisy, model.data_format).cpu(), denoised.cpu())
        if "reconstruction" in which:
            metrics.update(error.compute())
        if "denoising" in which:
            metrics.update(gain.compute())
            protocol["denoising"] = model.corruption

    if "inpainting" in which:
        metrics.update(inpainting_errors(run, reference, options.seed))
        protocol["inpainting"] = (f"{model.config.mask_size}x{model.config.mask_size} centre hole; baseline: the "
                                  "mean of the pixels within 2 px around the hole; MSE of [0, 1] pixels in the hole")

    if "likelihood" in which:
        count = options.likelihood_images or None
        inputs, labels = _model_inputs(run, reference, options.seed, count)
        generator = torch.Generator(device=_device(run)).manual_seed(options.seed)
        if isinstance(model, PartitionFunctionModel):
            print(f"genzoo: estimating log Z by AIS ({options.ais_runs} runs of {options.ais_chains} chains, "
                  f"{options.ais_steps} steps) and from a posterior mixture and the model's Gibbs chains",
                  file=sys.stderr)
            estimate = model.estimate_log_likelihood(inputs, num_chains=options.ais_chains, num_steps=options.ais_steps,
                                                     generator=generator, runs=options.ais_runs, progress=progress)
            described = ("ais_chains", "ais_steps", "ais_runs", "log_z_runs", "log_z_ais_runs", "log_z_bridge_runs",
                         "mixture_samples", "reverse_chains")
            method = {"method": estimate.pop("log_z_estimator"),
                      **{key: estimate.pop(key) for key in described if key in estimate}}
        else:
            print(f"genzoo: estimating the likelihood of {len(inputs)} images with {options.importance_samples} "
                  "importance samples each (--importance-samples and --likelihood-images make it quicker)",
                  file=sys.stderr)
            estimate = estimate_log_likelihood(model, inputs, labels, importance_samples=options.importance_samples,
                                               iwae_k=options.iwae_k, generator=generator, progress=progress)
            method = {"method": "importance sampling", "importance_samples": estimate.pop("importance_samples")}
        protocol["likelihood"] = {
            "binarization": binarization_protocol(run, options.seed),
            **method,
            "num_images": estimate.pop("num_images"),
            "units": "nats per image",
        }
        metrics.update(estimate)

    return {
        "run": run.name,
        "model": run.config.model,
        "dataset": run.config.data.dataset,
        "metrics": metrics,
        "floors": floors,
        "protocol": protocol,
        "skipped": {m: reason for m, reason in skipped.items()
                    if (not options.metrics or m in options.metrics) and m not in options.exclude},
        "options": asdict(options),
        "seconds": round(time.perf_counter() - started, 1),
        "evaluation_version": EVALUATION_VERSION,
    }


@torch.no_grad()
def inpainting_errors(run: Run, data: ImageData, seed: int) -> dict[str, float]:
    """Mean squared error inside the centre hole: the model's filling and the mean-fill baseline."""
    inputs, _ = _model_inputs(run, data, seed)
    model, sums = run.model, {"inpainting_mse": 0.0, "mean_fill_mse": 0.0}
    for x in inputs.split(CHUNK):
        mask = model.make_mask(len(x), "centre")
        truth = to_unit_range(x, model.data_format)
        holes = mask.sum() * x.shape[1]
        sums["inpainting_mse"] += float(((model.inpaint(x, mask) - truth).pow(2) * mask).sum() / holes) * len(x)
        baseline = mean_fill(truth, mask)
        sums["mean_fill_mse"] += float(((baseline - truth).pow(2) * mask).sum() / holes) * len(x)
    result = {name: total / len(inputs) for name, total in sums.items()}
    result["inpainting_gain"] = result["mean_fill_mse"] / max(result["inpainting_mse"], 1e-12)
    return result


def format_table(result: dict) -> str:
    """A plain-text table of a result: metric, value, real-vs-real floor."""
    lines = [f"{result['model']} on {result['dataset']} ({result['protocol'].get('split', 'test')} split)"]
    width = max([len(k) for k in result["metrics"]] + [6])
    lines.append(f"  {'metric':<{width}}  {'value':>12}  {'floor':>12}")
    for name, value in result["metrics"].items():
        floor = result["floors"].get(name)
        floor_text = f"{floor:12.4f}" if floor is not None else ""
        lines.append(f"  {name:<{width}}  {value:12.4f}  {floor_text}")
    for key, value in result["protocol"].items():
        lines.append(f"  {key}: {value}")
    for name, reason in result["skipped"].items():
        lines.append(f"  skipped {name}: {reason}")
    return "\n".join(lines)


def write_result(result: dict, path: Path) -> None:
    atomic_write_text(path, json.dumps(result, indent=2) + "\n")
