"""Progress of Lightning training: rich's bar on a terminal, plain lines in a log file.

In a log file a live bar prints nothing until the run ends; :class:`~cellsdf.progress.LogLines` prints as it
goes.
"""

from __future__ import annotations

import math

import pytorch_lightning as pl
from pytorch_lightning.callbacks import ProgressBar, RichProgressBar

from cellsdf.progress import LogLines, on_terminal


class LogProgressBar(ProgressBar):
    """Lightning's progress as plain lines: optimiser steps done of the run's total, rate, time left."""

    def __init__(self) -> None:
        super().__init__()
        self._lines: LogLines | None = None
        self._enabled = True

    def disable(self) -> None:
        """Print nothing (Lightning calls it on processes other than the first)."""
        self._enabled = False

    def enable(self) -> None:
        """Print again."""
        self._enabled = True

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Start the lines with the run's total of optimiser steps."""
        if not self._enabled or not trainer.is_global_zero:
            return
        total = trainer.estimated_stepping_batches
        self._lines = LogLines("training", int(total) if math.isfinite(total) else None, unit="steps")
        self._lines.update(trainer.global_step)

    def on_train_batch_end(self, trainer: pl.Trainer, *args: object) -> None:
        """Count the optimiser steps done."""
        if self._lines is not None:
            self._lines.update(trainer.global_step)

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Print the last line."""
        if self._lines is not None:
            self._lines.close()
            self._lines = None

    def on_exception(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException
    ) -> None:
        """Print the last line when training fails, too."""
        self.on_train_end(trainer, pl_module)


def progress_bar() -> ProgressBar:
    """Return the progress callback for where stderr goes: a rich bar on a terminal, plain lines otherwise."""
    return RichProgressBar() if on_terminal() else LogProgressBar()
