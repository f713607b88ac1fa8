"""How many threads a command computes with: one policy, for the machine as it is when the command starts.

torch's default is one OpenMP thread per core. On a laptop or a shared server whose cores are busy with other
work, those threads spin waiting for each other: ``cellsdf fit`` took 72 s with torch's 2 threads and 8 s
with one on a 2-core machine running another job. The policy is therefore to count the cores that are idle
when the command starts (CPU use sampled over a quarter of a second) and to use that many threads, at least
one and at most the cores this process may run on. ``threads=`` overrides it.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass

import psutil

SAMPLE_S = 0.25  # how long the CPUs are watched: long enough to see a busy process, short beside any command


@dataclass(frozen=True)
class ThreadChoice:
    """The threads chosen and why.

    Attributes
    ----------
    threads : int
        Threads to compute with.
    cores : int
        Cores this process may run on.
    idle : float or None
        Idle cores measured at the start; None when ``threads=`` was given.
    """

    threads: int
    cores: int
    idle: float | None

    def describe(self) -> str:
        """Return the choice as one line for ``verbose=true``.

        Examples
        --------
        >>> ThreadChoice(1, 2, 0.4).describe()
        'threads: 1 (0.4 of 2 cores idle at the start; threads= overrides)'
        """
        if self.idle is None:
            return f"threads: {self.threads} (threads={self.threads}; {self.cores} cores)"
        idle = f"{self.idle:.1f} of {self.cores} cores idle at the start"
        return f"threads: {self.threads} ({idle}; threads= overrides)"


def _allowed_cores() -> set[int]:
    """Return the cores this process may run on: its CPU affinity, where the system has one, else all."""
    if hasattr(os, "sched_getaffinity"):
        return os.sched_getaffinity(0)
    return set(range(os.cpu_count() or 1))


def usable_cores() -> int:
    """Return the number of cores this process may run on."""
    return len(_allowed_cores())


def idle_cores(*, seconds: float = SAMPLE_S) -> float:
    """Return how many of this process's cores were idle over the next ``seconds`` (0 to their count).

    Parameters
    ----------
    seconds : float
        How long to watch the CPUs.

    Returns
    -------
    float
        The sum over the usable cores of the fraction of time each was idle.
    """
    busy = psutil.cpu_percent(interval=seconds, percpu=True)
    return sum(1.0 - busy[i] / 100.0 for i in _allowed_cores() if i < len(busy))


def choose_threads(threads: int | None, *, idle: float | None = None) -> ThreadChoice:
    """Choose the threads of a command: ``threads`` when given, else one per idle core (at least one).

    Parameters
    ----------
    threads : int or None
        The user's choice; None chooses.
    idle : float, optional
        Idle cores, when already measured; None measures them (:func:`idle_cores`).

    Returns
    -------
    ThreadChoice

    Examples
    --------
    >>> choose_threads(3).threads
    3
    >>> choose_threads(None, idle=0.3).threads, choose_threads(None, idle=1.7).threads >= 1
    (1, True)
    """
    cores = usable_cores()
    if threads is not None:
        return ThreadChoice(int(threads), cores, None)
    idle = idle_cores() if idle is None else idle
    # Rounded to the nearest core: a core that is 70 % idle is worth a thread, one that is 30 % idle is not.
    return ThreadChoice(max(1, min(cores, round(idle))), cores, idle)


def use_threads(choice: ThreadChoice) -> None:
    """Compute with ``choice.threads`` threads: torch's, the BLAS's, and those of processes started from here.

    The environment variables are read when torch or a BLAS loads, here and in worker processes and commands
    run as subprocesses; torch, when it is already loaded, is told directly.
    """
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[name] = str(choice.threads)
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(choice.threads)
