"""CSV logs of metrics: a table that reaches the disk row by row, and resumed runs of Lightning's CSV log.

:class:`MetricsTable` is the log of ``cellsdf train``; :func:`merge_resumed_log` serves ``cellsdf
texture-train``, which logs with Lightning's CSV logger: that logger replaces an existing ``metrics.csv``, so
a resumed run logs beside it (``logs/resumed/``) and its rows are merged in afterwards.
"""

from __future__ import annotations

import csv
import io
import shutil
from pathlib import Path

from cellsdf.io.atomic import atomic_path

RESUMED_LOG = "resumed"


class MetricsTable:
    """A CSV file of metric rows, each written to the file as soon as it is added.

    A process killed later keeps every row it added. A row with a column that the file lacks rewrites the
    file with the wider header (atomically); other rows are appended.

    Parameters
    ----------
    path : str or Path
        The CSV file; its folder is created if missing.
    key : str
        The column that orders rows (``epoch``).
    keep_before : int, optional
        Continue an existing file: keep its rows whose ``key`` is below this value (a resumed run repeats
        the others) and add after them. None starts a new file.

    Examples
    --------
    >>> import pathlib, tempfile
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "metrics.csv"
    >>> table = MetricsTable(path)
    >>> table.add({"epoch": 0, "loss": 0.5}); table.add({"epoch": 1, "loss": 0.25, "val": 0.3})
    >>> table = MetricsTable(path, keep_before=1)
    >>> table.add({"epoch": 1, "loss": 0.2})
    >>> print(path.read_text().strip())
    epoch,loss,val
    0,0.5,
    1,0.2,
    """

    def __init__(self, path: str | Path, *, key: str = "epoch", keep_before: int | None = None) -> None:
        self.path = Path(path)
        self.key = key
        self.rows: list[dict] = []
        if keep_before is not None and self.path.is_file():
            self.rows = [r for r in read_rows(self.path) if _ordered_before(r.get(key), keep_before)]
        self.columns = list(dict.fromkeys(k for row in self.rows for k in row))
        self._rewrite()

    def add(self, row: dict) -> None:
        """Write one row to the file (values as ``str`` gives them; missing columns stay empty)."""
        self.rows.append(dict(row))
        new = [k for k in row if k not in self.columns]
        if new:
            self.columns += new
            self._rewrite()
            return
        with open(self.path, "a", newline="") as f:
            f.write(self._text([row], header=False))

    def _rewrite(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(self.path) as tmp:
            tmp.write_text(self._text(self.rows, header=bool(self.columns)) if self.columns else "")

    def _text(self, rows: list[dict], *, header: bool) -> str:
        # One write per call, so that a row reaches the file whole or not at all in practice.
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=self.columns, lineterminator="\n")
        if header:
            writer.writeheader()
        writer.writerows(rows)
        return buffer.getvalue()


def read_rows(path: str | Path) -> list[dict]:
    """Read a CSV log's rows, leaving out a last line that a killed writer did not finish."""
    text = Path(path).read_text()
    if text and not text.endswith("\n"):
        text = text[: text.rfind("\n") + 1]
    return [{k: v for k, v in row.items() if k is not None} for row in csv.DictReader(io.StringIO(text))]


def _ordered_before(value: object, limit: int) -> bool:
    try:
        return int(float(str(value))) < limit
    except ValueError:
        return False


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
