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
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import torch
from safetensors.torch import save as safetensors_bytes
from tqdm.auto import tqdm

from . import faults
from .config import TrainConfig
from .data import Batch, BatchLoader, DataFormat, ImageData, to_model_input
from .data.batches import epoch_permutation
from .distributed import (
    RANK_SEED_STRIDE,
    SINGLE,
    Group,
    all_sum,
    average_gradients_before_steps,
    gather,
)
from .errors import RunDirError, TrainingDiverged
from .fileio import atomic_write_bytes, ensure_directory
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
        checkpoint_extra: dict | None = None,
        group: Group = SINGLE,
    ):
        self.group = group  # this process among the training processes (rank 0 of 1 by default)
        self.memory_format = memory_format(model, channels_last=config.channels_last)
        self.model = model.to(device, memory_format=self.memory_format)
        if config.compile:
            for network in model.children():  # the model's own methods (losses, samplers) stay eager
                network.compile()
        self.optimizers = model.configure_optimizers()
        self.base_rates = {name: [g["lr"] for g in optimizer.param_groups] for name, optimizer in self.optimizers.items()}
        if group.distributed:
            for optimizer in self.optimizers.values():
                average_gradients_before_steps(optimizer, group)
        self.config = config
        self.run_dir = Path(run_dir)
        self.device = device
        self.progress = progress
        self.callbacks = callbacks
        self.checkpoint_extra = dict(checkpoint_extra or {})  # saved with every checkpoint (the run's config)
        self.notes: list[dict] = []  # records written to metrics.jsonl when training starts (config changes)
        if config.batch_size % group.world:
            raise RunDirError(f"batch_size {config.batch_size} does not split evenly over {group.world} processes")
        self.train_loader = BatchLoader(
            train_data.to(device), batch_size=config.batch_size, fmt=model.data_format, drop_last=True,
            memory_format=self.memory_format, group=group, device=device,
        )
        self.test_loader = BatchLoader(
            test_data.to(device), batch_size=config.batch_size, fmt=model.data_format, drop_last=False,
            memory_format=self.memory_format, group=group, device=device,
        )
        if len(self.train_loader) == 0:
            raise RunDirError(
                f"batch_size {config.batch_size} is larger than the training split ({len(train_data)} images); "
                f"use --batch-size {max(1, len(train_data) // 4)} or less"
            )
        self.preview_batch = preview_batch(test_data, model.data_format, device)
        rank_seed = config.seed + group.rank * RANK_SEED_STRIDE  # each rank its own noise
        self.noise_generator = torch.Generator(device=device).manual_seed(rank_seed)
        self.global_rng_state = _seeded_rng_state(rank_seed)
        # Position: the epoch in progress (0-based), the next batch in it, steps so far.
        self.epoch = 0
        self.batch_index = 0
        self.global_step = 0
        self.epoch_sums: dict[str, float] = {}
        self.metrics_offset = 0
        self.stop_requested = False  # set when the run stops early (Ctrl-C, request_stop), on every rank
        self._stop_signal = False  # this process was asked to stop; acted on at the next synchronised step
        # Wall time of training steps and of the per-epoch extras so far, and the extras' last cost:
        # they decide whether this epoch's preview and quality check fit the overhead budget.
        self.timing = {"train_seconds": 0.0, "extras_seconds": 0.0, "extras_cost": 0.0}

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
            "timing": dict(self.timing),
            "world_size": self.group.world,
            **self.checkpoint_extra,
        }

    def rank_state(self) -> dict:
        """What differs between the ranks of a distributed run: random states and buffers."""
        return {"noise_generator": self.noise_generator.get_state(), "global_rng": torch.get_rng_state(),
                "buffers": {name: b.detach().cpu() for name, b in self.model.named_buffers()}}

    def load_state_dict(self, state: dict) -> None:
        saved_world = state.get("world_size", 1)
        if saved_world != self.group.world:
            raise RunDirError(f"{self.run_dir} was trained by {saved_world} process(es); resume it with as many "
                              f"(this is {self.group.world}): genzoo train --resume RUN --nproc {saved_world}")
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
        self.timing.update(state.get("timing", {}))
        if "ranks" in state:  # a distributed run: this rank's own random states and buffers
            mine = state["ranks"][self.group.rank]
            self.noise_generator.set_state(mine["noise_generator"])
            self.global_rng_state = mine["global_rng"]
            buffers = dict(self.model.named_buffers())
            with torch.no_grad():
                for name, value in mine["buffers"].items():
                    buffers[name].copy_(value)

    def read_checkpoint(self) -> dict:
        """The run directory's checkpoint, as saved by :meth:`save_checkpoint`."""
        path = self.run_dir / CHECKPOINT
        if not path.exists():
            raise RunDirError(f"{self.run_dir}: no {CHECKPOINT} to resume from")
        try:
            return torch.load(path, map_location=self.device, weights_only=True)
        except Exception as exc:  # noqa: BLE001 (a corrupt checkpoint, whatever the unpickler says)
            raise RunDirError(f"{path}: cannot read checkpoint ({exc})") from None

    def resume(self) -> None:
        """Continue from the run directory's checkpoint."""
        self.load_state_dict(self.read_checkpoint())

    def save_checkpoint(self, metrics_log: io.TextIOBase) -> None:
        """Weights and the resumable state, each written atomically, after the metrics they
        account for are on disk (so that a checkpoint never points past the end of metrics.jsonl).
        In a distributed run every rank takes part (its random states are gathered) and rank 0 writes."""
        ranks = gather(self.rank_state(), self.group) if self.group.distributed else None
        if not self.group.is_main:
            self.global_rng_state = torch.get_rng_state()
            return
        try:
            metrics_log.flush()
            os.fsync(metrics_log.fileno())
        except OSError as exc:
            raise RunDirError(f"cannot write {self.run_dir / METRICS}: {exc.strerror}; "
                              "the last checkpoint is intact") from None
        self.metrics_offset = metrics_log.tell()
        self.global_rng_state = torch.get_rng_state()
        weights = {name: t.detach().cpu().contiguous() for name, t in self.model.state_dict().items()}
        atomic_write_bytes(self.run_dir / WEIGHTS, safetensors_bytes(weights))
        faults.reach("weights")
        buffer = io.BytesIO()
        torch.save({**self.state_dict(), **({"ranks": ranks} if ranks else {})}, buffer)
        atomic_write_bytes(self.run_dir / CHECKPOINT, buffer.getvalue())
        faults.reach("checkpoint")

    # -- the loop ----------------------------------------------------------------------------
    def fit(self) -> list[dict[str, float]]:
        """Train until ``config.epochs``; returns the per-epoch summaries of this call.

        Stops early, after saving a checkpoint, when Ctrl-C is pressed or :meth:`request_stop`
        is called (``self.stop_requested`` is then True).
        """
        ensure_directory(self.run_dir / SAMPLES_DIR)
        summaries = []
        log_path = self.run_dir / METRICS if self.group.is_main else Path(os.devnull)  # rank 0 writes the run
        if log_path.exists() and not (log_path.is_file() or not self.group.is_main):
            raise RunDirError(f"{log_path} exists and is not a file")
        with open(log_path, "a+", encoding="utf-8") as metrics_log, _stop_on_sigint(self):
            size = os.fstat(metrics_log.fileno()).st_size
            if size < self.metrics_offset and self.group.is_main:  # lost in a crash before it reached the disk: keep what is there
                print(f"genzoo: warning: {log_path} ends before the checkpoint's position; the missing "
                      "records are lost", file=sys.stderr)
                self.metrics_offset = size
            if self.group.is_main:
                metrics_log.truncate(self.metrics_offset)  # drop lines written after the checkpoint
                metrics_log.seek(self.metrics_offset)
            for note in self.notes:
                self._log(metrics_log, note)
            with torch.random.fork_rng(devices=[]):
                torch.set_rng_state(self.global_rng_state)
                if not (self.run_dir / CHECKPOINT).exists():  # a new run: resumable from its first step
                    self.save_checkpoint(metrics_log)
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
        self._stop_signal = True

    def _stop_now(self) -> bool:
        """Whether any rank was asked to stop (the same answer on every rank)."""
        flag = torch.tensor([float(self._stop_signal)])
        self.stop_requested = bool(all_sum(flag, self.group).item() > 0)
        return self.stop_requested

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
            disable=not (self.progress and self.group.is_main),
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
                faults.reach("step")
                self._log(metrics_log, {"kind": "step", "epoch": self.epoch + 1, "step": self.global_step, **values})
                faults.reach("log")
                bar.update(1)
                if self.global_step % 10 == 0 or self.batch_index == total:
                    bar.set_postfix({k: f"{v:.4g}" for k, v in values.items()}, refresh=False)
                for callback in self.callbacks:
                    callback.on_step_end(self, values)
                if self._stop_now():
                    return None
        seconds = time.perf_counter() - started
        self.timing["train_seconds"] += seconds
        steps = total - first_batch
        summary = {"kind": "epoch", "epoch": self.epoch + 1, "step": self.global_step}
        summary.update({f"train/{k}": v / max(total, 1) for k, v in self.epoch_sums.items()})
        started = time.perf_counter()
        summary.update({f"test/{k}": v for k, v in self.evaluate().items()})
        summary["eval_seconds"] = round(time.perf_counter() - started, 3)
        self._check_finite(summary)
        if self.group.is_main and self._extras_fit_budget():
            started = time.perf_counter()
            for callback in self.callbacks:
                summary.update(callback.epoch_metrics(self))
            self._save_preview()
            cost = time.perf_counter() - started
            self.timing["extras_cost"] = cost
            self.timing["extras_seconds"] += cost
            summary["extras_seconds"] = round(cost, 3)
        summary["seconds"] = round(seconds, 3)
        summary["images_per_second"] = round(steps * self.config.batch_size / max(seconds, 1e-9), 1)
        self._log(metrics_log, summary)
        self.epoch += 1
        self.batch_index = 0
        self.epoch_sums = {}
        self.save_checkpoint(metrics_log)
        if self.group.is_main:
            tqdm.write(format_summary(summary, self.config.epochs), file=sys.stderr)
        for callback in self.callbacks:
            callback.on_epoch_end(self, summary)
        return summary

    def _check_finite(self, summary: dict[str, float]) -> None:
        """Refuse to checkpoint a model that diverged in the epoch's last steps: non-finite weights
        or held-out losses (the last good checkpoint stays the previous one)."""
        bad = [name for name, value in summary.items() if name.startswith("test/") and not math.isfinite(value)]
        bad += [name for name, p in self.model.named_parameters() if not torch.isfinite(p).all()][:3]
        if bad:
            raise TrainingDiverged(
                f"{', '.join(bad)} became non-finite in epoch {self.epoch + 1}; training stopped and the epoch "
                f"was not saved. Last good checkpoint in {self.run_dir}: "
                f"{f'epoch {self.epoch}' if self.epoch else 'the start of the run'}. "
                f"Resume at a lower rate: genzoo train --resume {self.run_dir} --set learning_rate=...")

    def _extras_fit_budget(self) -> bool:
        """The preview grid and the callbacks' epoch metrics run after the first and the last
        epoch, and after any other whose share of the time stays within ``overhead_budget``."""
        if self.epoch == 0 or self.epoch + 1 == self.config.epochs:
            return True
        spent = self.timing["extras_seconds"] + self.timing["extras_cost"]
        return spent <= self.config.overhead_budget * self.timing["train_seconds"]

    def autocast(self):
        """bfloat16 autocast when ``precision = "bf16"``, else nothing."""
        return torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.config.precision == "bf16")

    def rate_factor(self) -> float:
        """The learning-rate schedule at the current step: 1 at the start, ``lr_final`` at the end."""
        if self.config.lr_schedule == "constant":
            return 1.0
        progress = min(self.global_step / max(self.config.epochs * self._batches_per_epoch() - 1, 1), 1.0)
        shape = 0.5 * (1 + math.cos(math.pi * progress)) if self.config.lr_schedule == "cosine" else 1 - progress
        return self.config.lr_final + (1 - self.config.lr_final) * shape

    def _train_step(self, batch: Batch) -> dict[str, float]:
        factor = self.rate_factor()
        for name, optimizer in self.optimizers.items():
            for group, rate in zip(optimizer.param_groups, self.base_rates[name], strict=True):
                group["lr"] = rate * factor
        with self.autocast():
            metrics = self.model.train_step(batch, self.optimizers, generator=self.noise_generator)
        if self.group.distributed:  # every rank logs and checks the mean over the ranks
            names = list(metrics)
            means = all_sum(torch.stack([metrics[n].detach().float().cpu() for n in names]), self.group) / self.group.world
            metrics = dict(zip(names, means, strict=True))
        values = {name: float(value) for name, value in metrics.items()}
        if not math.isfinite(values["loss"]):
            last_good = f"epoch {self.epoch}" if self.epoch else "the start of the run"
            raise TrainingDiverged(
                f"loss became {values['loss']} at epoch {self.epoch + 1}, step {self.global_step + 1}; "
                f"training stopped. Last good checkpoint in {self.run_dir}: {last_good}. "
                f"Resume at a lower rate: genzoo train --resume {self.run_dir} --set learning_rate=..."
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
        with self.autocast():
            metrics = evaluate_loss(self.model, self.test_loader, generator, limit=limit, group=self.group)
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
    model: GenerativeModel, loader: BatchLoader, generator: torch.Generator, *, limit: int | None = None,
    group: Group = SINGLE,
) -> dict[str, float]:
    """``model.evaluate_step`` averaged over a loader's batches (weighted by batch size), in eval
    mode; in a distributed run, over every rank's share. The caller restores train mode."""
    model.eval()
    sums: dict[str, float] = {}
    count = 0
    for batch in loader.batches(None, generator, limit=limit):
        for name, value in model.evaluate_step(batch, generator=generator).items():
            sums[name] = sums.get(name, 0.0) + float(value) * len(batch)
        count += len(batch)
    names = sorted(sums)
    totals = all_sum(torch.tensor([sums[n] for n in names] + [count], dtype=torch.float64), group)
    return {name: float(total / totals[-1]) for name, total in zip(names, totals[:-1], strict=True)}


def format_summary(summary: dict[str, float], epochs: int) -> str:
    parts = [f"epoch {summary['epoch']}/{epochs}"]
    parts += [f"{k} {v:.4g}" for k, v in summary.items() if k.startswith(("train/", "test/"))]
    parts.append(f"{summary['seconds']:.1f} s, {summary['images_per_second']:.0f} img/s")
    return "  ".join(parts)


def memory_format(model: torch.nn.Module, *, channels_last: bool) -> torch.memory_format:
    """channels_last for a model with convolutions (4-D weights) when asked for, else the default."""
    has_convolutions = any(parameter.dim() == 4 for parameter in model.parameters())
    return torch.channels_last if channels_last and has_convolutions else torch.contiguous_format


def preview_batch(data: ImageData, fmt: DataFormat, device: torch.device, per_class: int = PREVIEW_COLUMNS) -> Batch:
    """A fixed batch of ``per_class`` x 10 test images for the 10-column grid: one row per class
    for the first 10 classes (classes repeat when there are fewer), or the first images of
    unlabelled data (repeated when there are fewer than 100). Always full rows, so that every
    model's preview (pairs of rows, triples of rows) can lay them out."""
    rows = PREVIEW_COLUMNS
    if data.class_names:
        present = [label for label in range(len(data.class_names)) if (data.labels == label).any()]
        indices = []
        for row in range(rows):
            members = torch.nonzero(data.labels == present[row % len(present)]).flatten()
            indices.append(members[torch.arange(per_class) % len(members)])
        index = torch.cat(indices)
    else:
        index = torch.arange(rows * per_class) % len(data)
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
