"""The one training loop. It knows the model contract and nothing about any kind of model.

Per step it calls ``model.train_step`` and logs the returned metrics; per epoch it evaluates on the
held-out split, writes a progress grid from fixed latents, and saves a checkpoint atomically. A run
can stop at any step (Ctrl-C) and resume to bit-identical weights on CPU: the data order of an
epoch is a pure function of (seed, epoch), and every other random draw comes from generators whose
states are checkpointed.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import signal
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import torch
from safetensors.torch import save as safetensors_bytes
from tqdm.auto import tqdm

from .config import TrainConfig
from .data import Batch, BatchLoader, DataFormat, ImageData, to_model_input
from .data.batches import epoch_permutation
from .errors import RunDirError, TrainingDiverged
from .fileio import atomic_write_bytes
from .images import PREVIEW_COLUMNS, save_grid
from .models.base import GenerativeModel

CHECKPOINT = "checkpoint.pt"
WEIGHTS = "model.safetensors"
METRICS = "metrics.jsonl"
SAMPLES_DIR = "samples"
EVAL_SEED_OFFSET = 7919  # test-set binarisation and noise use a fixed, separate stream


class Callback:
    """Hooks into the loop; override what you need."""

    def on_step_end(self, trainer: Trainer, metrics: dict[str, float]) -> None:
        pass

    def on_epoch_end(self, trainer: Trainer, summary: dict[str, float]) -> None:
        pass

    def epoch_metrics(self, trainer: Trainer) -> dict[str, float]:
        """Extra metrics for the epoch's record in metrics.jsonl (computed after evaluation)."""
        return {}


class Trainer:
    """Trains one model on one dataset into one run directory."""

    def __init__(
        self,
        model: GenerativeModel,
        train_data: ImageData,
        test_data: ImageData,
        config: TrainConfig,
        *,
        run_dir: Path,
        device: torch.device,
        progress: bool = True,
        callbacks: tuple[Callback, ...] = (),
    ):
        self.model = model.to(device)
        self.optimizers = model.configure_optimizers()
        self.config = config
        self.run_dir = Path(run_dir)
        self.device = device
        self.progress = progress
        self.callbacks = callbacks
        self.train_loader = BatchLoader(
            train_data.to(device), batch_size=config.batch_size, fmt=model.data_format, drop_last=True
        )
        self.test_loader = BatchLoader(
            test_data.to(device), batch_size=config.batch_size, fmt=model.data_format, drop_last=False
        )
        if len(self.train_loader) == 0:
            raise RunDirError(
                f"batch_size {config.batch_size} is larger than the training split ({len(train_data)} images)"
            )
        self.preview_batch = preview_batch(test_data, model.data_format, device)
        self.noise_generator = torch.Generator(device=device).manual_seed(config.seed)
        self.global_rng_state = _seeded_rng_state(config.seed)
        # Position: the epoch in progress (0-based), the next batch in it, steps so far.
        self.epoch = 0
        self.batch_index = 0
        self.global_step = 0
        self.epoch_sums: dict[str, float] = {}
        self.metrics_offset = 0
        self.stop_requested = False

    # -- checkpoints -------------------------------------------------------------------------
    def state_dict(self) -> dict:
        return {
            "model": self.model.state_dict(),
            "optimizers": {name: opt.state_dict() for name, opt in self.optimizers.items()},
            "epoch": self.epoch,
            "batch_index": self.batch_index,
            "global_step": self.global_step,
            "epoch_sums": dict(self.epoch_sums),
            "metrics_offset": self.metrics_offset,
            "noise_generator": self.noise_generator.get_state(),
            "global_rng": torch.get_rng_state(),
        }

    def load_state_dict(self, state: dict) -> None:
        self.model.load_state_dict(state["model"])
        for name, optimizer in self.optimizers.items():
            optimizer.load_state_dict(state["optimizers"][name])
        self.epoch = state["epoch"]
        self.batch_index = state["batch_index"]
        self.global_step = state["global_step"]
        self.epoch_sums = dict(state["epoch_sums"])
        self.metrics_offset = state["metrics_offset"]
        self.noise_generator.set_state(state["noise_generator"])
        self.global_rng_state = state["global_rng"]

    def resume(self) -> None:
        """Continue from the run directory's checkpoint."""
        path = self.run_dir / CHECKPOINT
        if not path.exists():
            raise RunDirError(f"{self.run_dir}: no {CHECKPOINT} to resume from")
        try:
            state = torch.load(path, map_location=self.device, weights_only=True)
        except Exception as exc:  # noqa: BLE001 (a corrupt checkpoint, whatever the unpickler says)
            raise RunDirError(f"{path}: cannot read checkpoint ({exc})") from None
        self.load_state_dict(state)

    def save_checkpoint(self, metrics_log: io.TextIOBase) -> None:
        try:
            metrics_log.flush()
        except OSError as exc:
            raise RunDirError(f"cannot write {self.run_dir / METRICS}: {exc.strerror}; "
                              "the last checkpoint is intact") from None
        self.metrics_offset = metrics_log.tell()
        self.global_rng_state = torch.get_rng_state()
        weights = {name: t.detach().cpu().contiguous() for name, t in self.model.state_dict().items()}
        atomic_write_bytes(self.run_dir / WEIGHTS, safetensors_bytes(weights))
        buffer = io.BytesIO()
        torch.save(self.state_dict(), buffer)
        atomic_write_bytes(self.run_dir / CHECKPOINT, buffer.getvalue())

    # -- the loop ----------------------------------------------------------------------------
    def fit(self) -> list[dict[str, float]]:
        """Train until ``config.epochs``; returns the per-epoch summaries of this call.

        Stops early, after saving a checkpoint, when Ctrl-C is pressed or :meth:`request_stop`
        is called (``self.stop_requested`` is then True).
        """
        (self.run_dir / SAMPLES_DIR).mkdir(exist_ok=True)
        summaries = []
        log_path = self.run_dir / METRICS
        with open(log_path, "a+", encoding="utf-8") as metrics_log, _stop_on_sigint(self):
            metrics_log.truncate(self.metrics_offset)  # drop lines written after the checkpoint
            metrics_log.seek(self.metrics_offset)
            with torch.random.fork_rng(devices=[]):
                torch.set_rng_state(self.global_rng_state)
                while self.epoch < self.config.epochs and not self.stop_requested:
                    summary = self._run_epoch(metrics_log)
                    if summary is None:  # stopped mid-epoch
                        break
                    summaries.append(summary)
                if self.stop_requested:
                    self.save_checkpoint(metrics_log)
        return summaries

    def request_stop(self) -> None:
        """Stop after the current step and save a resumable checkpoint."""
        self.stop_requested = True

    def _batches_per_epoch(self) -> int:
        n = len(self.train_loader)
        return min(n, self.config.max_batches) if self.config.max_batches else n

    def _run_epoch(self, metrics_log) -> dict[str, float] | None:
        total = self._batches_per_epoch()
        order = epoch_permutation(len(self.train_loader.data), seed=self.config.seed, epoch=self.epoch)
        started = time.perf_counter()
        first_batch = self.batch_index
        self.model.train()
        bar = tqdm(
            total=total,
            initial=self.batch_index,
            desc=f"epoch {self.epoch + 1}/{self.config.epochs}",
            disable=not self.progress,
            leave=False,
            dynamic_ncols=True,
            file=sys.stderr,
        )
        with bar:
            batches = self.train_loader.batches(
                order, self.noise_generator, start=self.batch_index, limit=total - self.batch_index
            )
            for batch in batches:
                values = self._train_step(batch)
                self._log(metrics_log, {"kind": "step", "epoch": self.epoch + 1, "step": self.global_step, **values})
                bar.update(1)
                if self.global_step % 10 == 0 or self.batch_index == total:
                    bar.set_postfix({k: f"{v:.4g}" for k, v in values.items()}, refresh=False)
                for callback in self.callbacks:
                    callback.on_step_end(self, values)
                if self.stop_requested:
                    return None
        seconds = time.perf_counter() - started
        steps = total - first_batch
        summary = {"kind": "epoch", "epoch": self.epoch + 1, "step": self.global_step}
        summary.update({f"train/{k}": v / max(total, 1) for k, v in self.epoch_sums.items()})
        summary.update({f"test/{k}": v for k, v in self.evaluate().items()})
        for callback in self.callbacks:
            summary.update(callback.epoch_metrics(self))
        summary["seconds"] = round(seconds, 3)
        summary["images_per_second"] = round(steps * self.config.batch_size / max(seconds, 1e-9), 1)
        self._save_preview()
        self._log(metrics_log, summary)
        self.epoch += 1
        self.batch_index = 0
        self.epoch_sums = {}
        self.save_checkpoint(metrics_log)
        tqdm.write(format_summary(summary, self.config.epochs), file=sys.stderr)
        for callback in self.callbacks:
            callback.on_epoch_end(self, summary)
        return summary

    def _train_step(self, batch: Batch) -> dict[str, float]:
        metrics = self.model.train_step(batch, self.optimizers, generator=self.noise_generator)
        values = {name: float(value) for name, value in metrics.items()}
        if not math.isfinite(values["loss"]):
            last_good = f"epoch {self.epoch}" if self.epoch else "none: it diverged in the first epoch"
            raise TrainingDiverged(
                f"loss became {values['loss']} at epoch {self.epoch + 1}, step {self.global_step + 1}; "
                f"training stopped. Last good checkpoint in {self.run_dir}: {last_good}. "
                "Try a lower learning_rate (--set learning_rate=...)"
            )
        self.batch_index += 1
        self.global_step += 1
        for name, value in values.items():
            self.epoch_sums[name] = self.epoch_sums.get(name, 0.0) + value
        return values

    def evaluate(self) -> dict[str, float]:
        """Held-out metrics averaged over the test split (weighted by batch size)."""
        generator = torch.Generator(device=self.device).manual_seed(self.config.seed + EVAL_SEED_OFFSET)
        limit = self.config.eval_batches or None
        metrics = evaluate_loss(self.model, self.test_loader, generator, limit=limit)
        self.model.train()
        return metrics

    @torch.no_grad()
    def _save_preview(self) -> None:
        self.model.eval()
        generator = torch.Generator(device=self.device).manual_seed(self.config.seed)
        images = self.model.preview(self.preview_batch, generator=generator)
        save_grid(images, self.run_dir / SAMPLES_DIR / f"epoch_{self.epoch + 1:04d}.png", nrow=PREVIEW_COLUMNS)
        self.model.train()

    def _log(self, metrics_log, record: dict) -> None:
        try:
            metrics_log.write(json.dumps(record) + "\n")
        except OSError as exc:  # a full disk, typically; the last checkpoint is intact
            raise RunDirError(f"cannot write {self.run_dir / METRICS}: {exc.strerror}; "
                              "the last checkpoint is intact") from None


@torch.no_grad()
def evaluate_loss(
    model: GenerativeModel, loader: BatchLoader, generator: torch.Generator, *, limit: int | None = None
) -> dict[str, float]:
    """``model.evaluate_step`` averaged over a loader's batches (weighted by batch size), in eval
    mode. The caller restores train mode if it needs it."""
    model.eval()
    sums: dict[str, float] = {}
    count = 0
    for batch in loader.batches(None, generator, limit=limit):
        for name, value in model.evaluate_step(batch, generator=generator).items():
            sums[name] = sums.get(name, 0.0) + float(value) * len(batch)
        count += len(batch)
    return {name: total / count for name, total in sums.items()}


def format_summary(summary: dict[str, float], epochs: int) -> str:
    parts = [f"epoch {summary['epoch']}/{epochs}"]
    parts += [f"{k} {v:.4g}" for k, v in summary.items() if k.startswith(("train/", "test/"))]
    parts.append(f"{summary['seconds']:.1f} s, {summary['images_per_second']:.0f} img/s")
    return "  ".join(parts)


def preview_batch(data: ImageData, fmt: DataFormat, device: torch.device, per_class: int = PREVIEW_COLUMNS) -> Batch:
    """A fixed batch of test images: ``per_class`` of each of the first 10 classes, class by class
    (one row per class in a 10-column grid), or the first 100 images of unlabelled data."""
    if data.class_names:
        indices = []
        for label in range(min(len(data.class_names), PREVIEW_COLUMNS)):
            members = torch.nonzero(data.labels == label).flatten()
            if len(members):
                indices.append(members[torch.arange(per_class) % len(members)])
        index = torch.cat(indices)
    else:
        index = torch.arange(min(len(data), PREVIEW_COLUMNS * per_class))
    generator = torch.Generator().manual_seed(0)
    images = to_model_input(data.images[index], fmt, generator)
    return Batch(images.to(device), data.labels[index].to(device))


def _seeded_rng_state(seed: int) -> torch.Tensor:
    return torch.Generator().manual_seed(seed).get_state()


@contextlib.contextmanager
def _stop_on_sigint(trainer: Trainer) -> Iterator[None]:
    """First Ctrl-C: finish the current step, save, stop. Second: abort at once."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        if trainer.stop_requested:
            raise KeyboardInterrupt
        trainer.request_stop()
        print("\ngenzoo: stopping after this step and saving (Ctrl-C again to abort)", file=sys.stderr)

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
