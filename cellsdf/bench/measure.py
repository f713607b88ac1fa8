"""Measuring helpers shared by every ``cellsdf bench`` row: wall time with peak memory, fresh processes.

Two kinds of peak memory are measured. :func:`measure` traces Python and NumPy allocations (``tracemalloc``);
torch allocates CPU tensors outside Python's allocator, where ``tracemalloc`` does not see them, so rows that
time torch work in a fresh process read the operating system's figure instead (:func:`resident_mib`). On Linux
the peak resident size (``VmHWM``) is reset by :func:`reset_peak`, so each measurement's figure is its
own; elsewhere ``ru_maxrss`` is used, which on Linux would also carry the parent's peak over a spawn (fork,
then exec).
"""

from __future__ import annotations

import multiprocessing
import resource
import sys
import time
import tracemalloc
from collections.abc import Callable, Mapping
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import TypeVar

# The speed targets of the issues are stated for 256³ grids; smaller runs report times without a verdict.
TARGET_SIZE = 256

_STATUS = Path("/proc/self/status")

T = TypeVar("T")


def measure(work: Callable[[], object]) -> tuple[float, float]:
    """Run ``work`` once; return wall seconds and peak traced (Python and NumPy) memory in MiB.

    Parameters
    ----------
    work : callable
        Takes no arguments; what it returns is dropped.

    Returns
    -------
    seconds : float
        Wall-clock time of the call.
    peak_mib : float
        Peak memory traced by ``tracemalloc`` during the call.

    Examples
    --------
    >>> seconds, peak = measure(lambda: bytearray(2**20))
    >>> seconds > 0 and peak >= 1.0
    True
    """
    tracemalloc.start()
    start = time.perf_counter()
    work()
    seconds = time.perf_counter() - start
    peak = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    return seconds, peak


def fastest(
    steps: Mapping[str, Callable[[], None]], *, warmup: int, timed: int, rounds: int
) -> dict[str, tuple[float, float]]:
    """Time several variants of a step fairly: best seconds per step and largest peak MiB of each.

    Variants take turns round by round, so that background load hits all of them alike, and each one's
    fastest round counts.

    Parameters
    ----------
    steps : mapping of str to callable
        Variant name to a step taking no arguments.
    warmup : int
        Untimed steps per variant before the first round.
    timed : int
        Timed steps per variant and round.
    rounds : int
        Rounds.

    Returns
    -------
    dict
        Variant name to (seconds per step, peak traced MiB).
    """
    for step in steps.values():
        for _ in range(warmup):
            step()
    best = {name: (float("inf"), 0.0) for name in steps}
    for _ in range(rounds):
        for name, step in steps.items():
            seconds, peak = measure(lambda step=step: [step() for _ in range(timed)])
            best[name] = (min(best[name][0], seconds / timed), max(best[name][1], peak))
    return best


def resident_mib() -> tuple[float, float]:
    """Return this process's (resident, peak resident) memory in MiB since the last :func:`reset_peak`.

    Returns
    -------
    resident, peak : float
        From ``/proc/self/status`` on Linux; elsewhere both are the peak of ``getrusage``.
    """
    if _STATUS.is_file():
        entries = dict(line.split(":", 1) for line in _STATUS.read_text().splitlines() if ":" in line)
        if "VmRSS" in entries and "VmHWM" in entries:
            return float(entries["VmRSS"].split()[0]) / 2**10, float(entries["VmHWM"].split()[0]) / 2**10
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    peak = peak / 2**20 if sys.platform == "darwin" else peak / 2**10  # bytes on macOS, KiB elsewhere
    return peak, peak


def reset_peak() -> None:
    """Start a new peak-memory measurement (Linux: the peak resident size restarts from the current one)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass  # no reset: the figures are then peaks since the process started


def in_fresh_process(work: Callable[..., T], *args: object, **kwargs: object) -> T:
    """Run ``work(*args, **kwargs)`` as the only task of a freshly spawned process and return its result.

    Nothing else has shaped that process's memory, so its peak belongs to ``work`` (and the imports it needs).

    Parameters
    ----------
    work : callable
        A module-level function (it is pickled by name).
    *args, **kwargs
        Its arguments, pickled.

    Returns
    -------
    object
        What ``work`` returned; an exception it raised is raised here.
    """
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
        return pool.submit(work, *args, **kwargs).result()
