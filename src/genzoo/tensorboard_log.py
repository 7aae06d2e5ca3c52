"""TensorBoard logging through the training loop's callback hook (``genzoo train --tensorboard``).

Writes what ``metrics.jsonl`` already holds (every 10th step's training losses, every epoch's
summary) and each epoch's preview grid into ``RUN/tensorboard``; view it with
``tensorboard --logdir RUN/tensorboard``. Needs the optional ``tensorboard`` package
(``pip install 'genzoo[tensorboard]'``). Rank 0 writes in a distributed run.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from .errors import GenzooError
from .trainer import SAMPLES_DIR, Callback, Trainer

STEP_EVERY = 10  # steps between logged training losses (metrics.jsonl keeps every step)
SKIPPED = ("kind", "epoch", "step")
LOG_DIR = "tensorboard"


class TensorBoardLogger(Callback):
    def __init__(self):
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            raise GenzooError("--tensorboard needs TensorBoard: pip install 'genzoo[tensorboard]' "
                              "(or pip install tensorboard)") from None
        self.writer_class, self.writer = SummaryWriter, None

    def _writer(self, trainer: Trainer):
        if self.writer is None:  # created on first use, in the run directory the trainer settled on
            self.writer = self.writer_class(log_dir=str(trainer.run_dir / LOG_DIR))
        return self.writer

    def on_step_end(self, trainer: Trainer, metrics: dict[str, float]) -> None:
        if trainer.group.is_main and trainer.global_step % STEP_EVERY == 0:
            for name, value in metrics.items():
                self._writer(trainer).add_scalar(f"step/{name}", value, trainer.global_step)

    def on_epoch_end(self, trainer: Trainer, summary: dict[str, float]) -> None:
        if not trainer.group.is_main:
            return
        writer, step = self._writer(trainer), summary["step"]
        for name, value in summary.items():
            if name not in SKIPPED and isinstance(value, (int, float)):
                writer.add_scalar(name, value, step)
        grid = trainer.run_dir / SAMPLES_DIR / f"epoch_{summary['epoch']:04d}.png"
        if grid.exists():  # the preview of this epoch (skipped epochs have none)
            image = np.asarray(Image.open(grid).convert("RGB"))
            writer.add_image("preview", image, step, dataformats="HWC")
        writer.flush()
