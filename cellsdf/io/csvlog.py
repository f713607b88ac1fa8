"""Lightning's CSV log across a resumed run.

Lightning's CSV logger replaces an existing ``metrics.csv``, so a resumed run logs beside it
(``logs/resumed/``) and its rows are merged in afterwards.
"""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

from cellsdf.io.atomic import atomic_path

RESUMED_LOG = "resumed"


def merge_resumed_log(logs: Path, key: str) -> None:
    """Append a resumed run's rows to ``logs/metrics.csv`` in place of earlier rows from the same ``key`` on.

    Parameters
    ----------
    logs : Path
        The CSV logger's folder, holding ``metrics.csv`` and the resumed run's ``resumed/metrics.csv``.
    key : str
        The column that orders rows (``epoch`` or ``step``): earlier rows at or after the resumed run's
        first value are dropped, since the resumed run repeats them.
    """
    resumed = logs / RESUMED_LOG / "metrics.csv"
    if resumed.is_file() and (logs / "metrics.csv").is_file():
        with open(logs / "metrics.csv", newline="") as f:
            rows = list(csv.DictReader(f))
        with open(resumed, newline="") as f:
            new = list(csv.DictReader(f))
        if new:
            first = min(int(r[key]) for r in new)
            rows = [r for r in rows if int(r[key]) < first] + new
            with atomic_path(logs / "metrics.csv") as tmp, open(tmp, "w", newline="") as f:
                writer = csv.DictWriter(f, fieldnames=sorted(set().union(*rows)))
                writer.writeheader()
                writer.writerows(rows)
    shutil.rmtree(logs / RESUMED_LOG, ignore_errors=True)
