"""Progress of work: a rich bar on a terminal, plain lines in a log file (off in library calls by default).

A live bar needs a terminal. Written to a file (a log, a batch job, ``nohup``), rich prints the bar once, when
the work is done, so a 5-minute step would look hung; there a plain line (done/total, rate, time left) is
printed at the start and then every :data:`LOG_EVERY_S` seconds from a timer, so a line comes even while one
long item is being worked on.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Iterable, Iterator
from typing import TypeVar

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

T = TypeVar("T")

LOG_EVERY_S = 15.0  # seconds between progress lines in a log; the command line sets it (progress_every)


def set_log_interval(seconds: float) -> None:
    """Print a progress line in logs every ``seconds`` (the ``progress_every`` option)."""
    global LOG_EVERY_S
    LOG_EVERY_S = float(seconds)


def on_terminal() -> bool:
    """Return True when progress goes to a terminal (stderr is a TTY), where a live bar can be drawn."""
    return sys.stderr.isatty()


def _duration(seconds: float) -> str:
    """Format seconds as ``42 s``, ``3 min 05 s`` or ``2 h 03 min``.

    Examples
    --------
    >>> _duration(42.4), _duration(185), _duration(7380)
    ('42 s', '3 min 05 s', '2 h 03 min')
    """
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


class LogLines:
    """Plain progress lines on stderr: one at the start, one every ``every`` seconds, one at the end.

    Parameters
    ----------
    description : str
        What the lines say first.
    total : int, optional
        Number of items, for the fraction and the time left.
    every : float, optional
        Seconds between lines; None takes :data:`LOG_EVERY_S`.
    unit : str
        What an item is (``items``, ``steps``).
    """

    def __init__(
        self, description: str, total: int | None, *, every: float | None = None, unit: str = "items"
    ):
        self.description, self.total, self.unit = description, total, unit
        self.every = LOG_EVERY_S if every is None else every
        self.done = 0
        self.start = time.perf_counter()
        self._stop = threading.Event()
        self._print()
        self._timer = threading.Thread(target=self._tick, daemon=True)
        self._timer.start()

    def line(self) -> str:
        """Return the current line: done/total, time so far, rate, time left (at the end: the total time)."""
        elapsed = time.perf_counter() - self.start
        done = f"{self.done}/{self.total}" if self.total else f"{self.done}"
        finished = bool(self.total) and self.done >= self.total
        text = f"{self.description}: {done} {self.unit} {'in' if finished else 'after'} {_duration(elapsed)}"
        if self.done and elapsed > 0:
            rate = self.done / elapsed
            text += f", {rate:.3g} {self.unit}/s" if rate >= 1 else f", {1 / rate:.3g} s each"
            if self.total and not finished:
                text += f", about {_duration((self.total - self.done) / rate)} left"
        return text

    def _print(self) -> None:
        print(self.line(), file=sys.stderr, flush=True)

    def _tick(self) -> None:
        while not self._stop.wait(self.every):
            self._print()

    def update(self, done: int) -> None:
        """Record ``done`` items finished."""
        self.done = done

    def close(self) -> None:
        """Stop the timer and print the last line."""
        self._stop.set()
        self._timer.join()
        self._print()


def track(items: Iterable[T], description: str, total: int | None = None, show: bool = True) -> Iterator[T]:
    """Iterate over ``items`` with progress on stderr when ``show`` is true.

    A rich bar on a terminal; plain lines every :data:`LOG_EVERY_S` seconds otherwise (:class:`LogLines`).

    Parameters
    ----------
    items : iterable
        The work.
    description : str
        What the bar says.
    total : int, optional
        Number of items, when ``items`` has no length.
    show : bool
        Show progress; False iterates silently.

    Yields
    ------
    object
        The items, unchanged.
    """
    if not show:
        yield from items
        return
    if total is None and hasattr(items, "__len__"):
        total = len(items)  # type: ignore[arg-type]
    if not on_terminal():
        lines = LogLines(description, total)
        try:
            for done, item in enumerate(items, start=1):
                yield item
                lines.update(done)
        finally:
            lines.close()
        return
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, transient=False) as progress:
        yield from progress.track(items, total=total, description=description)
