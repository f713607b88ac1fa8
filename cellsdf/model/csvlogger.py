"""The training run's CSV log as a Lightning logger: every row on disk as it is logged, resumable."""

from __future__ import annotations

from argparse import Namespace
from pathlib import Path
from typing import Any

import torch
from pytorch_lightning.loggers import Logger
from pytorch_lightning.utilities import rank_zero_only

from cellsdf.io.csvlog import MetricsTable


class CSVMetricsLogger(Logger):
    """Metrics in ``<save_dir>/<name>/metrics.csv``, one row per ``log_metrics`` call, written at once.

    Lightning's own CSV logger holds rows in memory between flushes (every 100 steps) and replaces the file of
    an earlier run: a killed run loses its last rows, and a resumed one the earlier epochs'. Here every row
    reaches the file when it is logged, and a resumed run keeps the rows of the epochs before the one it
    resumes at. Hyper-parameters are not written here: ``model.pt`` and ``manifest.json`` hold them.

    Parameters
    ----------
    save_dir : str or Path
        The run folder.
    name : str
        The log's sub-folder.
    resume_epoch : int, optional
        The first epoch of a resumed run: rows of earlier epochs are kept, later ones replaced. None starts
        a new log.
    """

    def __init__(self, save_dir: str | Path, name: str = "logs", *, resume_epoch: int | None = None) -> None:
        super().__init__()
        self._save_dir = str(save_dir)
        self._name = name
        self._resume_epoch = resume_epoch
        self._table: MetricsTable | None = None

    @property
    def name(self) -> str:
        """The log's sub-folder."""
        return self._name

    @property
    def version(self) -> str:
        """Empty: one log per run folder."""
        return ""

    @property
    def save_dir(self) -> str:
        """The run folder."""
        return self._save_dir

    @property
    def log_dir(self) -> str:
        """The folder of ``metrics.csv``."""
        return str(Path(self._save_dir) / self._name)

    @rank_zero_only
    def log_hyperparams(self, params: dict[str, Any] | Namespace, *args: Any, **kwargs: Any) -> None:
        """Leave hyper-parameters to ``model.pt`` and ``manifest.json``."""

    @rank_zero_only
    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        """Write one row: the metrics and the step."""
        # Opened on the first row, in the process that logs (rank zero, also under ddp_spawn).
        if self._table is None:
            path = Path(self.log_dir) / "metrics.csv"
            self._table = MetricsTable(path, keep_before=self._resume_epoch)
        row = {k: v.item() if isinstance(v, torch.Tensor) else v for k, v in metrics.items()}
        self._table.add({**row, "step": step})
