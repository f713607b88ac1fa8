"""Timing with peak memory, shared by every ``cellsdf bench`` row."""

from __future__ import annotations

import time
import tracemalloc
from collections.abc import Callable

# The speed targets of the issues are stated for 256³ grids; smaller runs report times without a verdict.
TARGET_SIZE = 256


def measure(work: Callable[[], object]) -> tuple[float, float]:
    """Run ``work`` once; return wall seconds and peak traced (Python and NumPy) memory in MiB."""
    tracemalloc.start()
    start = time.perf_counter()
    work()
    seconds = time.perf_counter() - start
    peak = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    return seconds, peak
