"""Training callbacks of the auto-decoder run."""

from __future__ import annotations

from typing import Any

import pytorch_lightning as pl
from pytorch_lightning.callbacks import Callback


class FinalValidation(Callback):
    """Validate in the last epoch of every run, whatever ``check_val_every_n_epoch`` says.

    Lightning validates only epochs that ``check_val_every_n_epoch`` divides, so a run shorter than that, or
    one that ``max_time`` or ``max_steps`` ends in between, would finish without a validation loss and without
    a best checkpoint. In the last epoch this callback makes Lightning validate (for that epoch only).

    Place it after the trainer's ``Timer`` in the callback list: the Timer decides at the end of a batch that
    time is up, and this callback must see that decision in the same batch.
    """

    def __init__(self) -> None:
        super().__init__()
        self._every: int | None = None

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Validate the epoch that ``max_epochs`` makes the last."""
        self._restore(trainer)
        if trainer.max_epochs is not None and 0 <= trainer.max_epochs <= trainer.current_epoch + 1:
            self._validate_this_epoch(trainer)

    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        """Validate now when this batch ends the run (time, steps or another callback's stop)."""
        if 0 <= trainer.max_steps <= trainer.global_step:
            # Lightning would end the run here without validating; a requested stop is validated first.
            trainer.should_stop = True
        if trainer.should_stop:
            self._validate_this_epoch(trainer)

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Give the trainer back its own validation interval."""
        self._restore(trainer)

    def _validate_this_epoch(self, trainer: pl.Trainer) -> None:
        every = trainer.check_val_every_n_epoch
        # 1 validates this epoch already; None counts batches, not epochs, and validates a requested stop.
        if every is None or every == 1:
            return
        self._every = every
        trainer.check_val_every_n_epoch = 1

    def _restore(self, trainer: pl.Trainer) -> None:
        # Not before the epoch's end: the best checkpoint decides there, by this interval, whether to save.
        if self._every is not None:
            trainer.check_val_every_n_epoch = self._every
            self._every = None
