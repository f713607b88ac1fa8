"""Thread rows: each compute-heavy command at the thread policy's default and at one thread, quiet and loaded.

A command is run whole, as a user runs it (a fresh ``cellsdf`` process, so the policy measures the machine at
its start), on a small input. "Loaded" is one busy process per usable core, started in the same run before
the command and stopped after it: the shared laptop or lab server on which torch's one thread per core
collapsed. The target: the default is never more than 1.2x slower than the better of the two.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import tifffile

from cellsdf.bench.row import Row
from cellsdf.errors import InputError
from cellsdf.simulate.write import simulate_to_folder
from cellsdf.threads import usable_cores

COMMANDS = ("fit", "generate", "evaluate", "train", "reconstruct", "lift", "fidelity", "segment")
TARGET_SLOWDOWN = 1.2  # the default's seconds over the better of the default's and one thread's
_CHOSEN = re.compile(r"^threads: (\d+)", re.M)
_TRAIN = [
    "cellline=plat",
    "trainer.max_epochs=8",
    "data.simulate.sequences=2",
    "data.simulate.frames=3",
    "data.simulate.size=32",
    "data.prepare.points_per_frame=2048",
    "data.prepare.eval_size=24",
    "data.loader.batch_size=4",
    "data.loader.points_per_item=1024",
]


def _inputs(folder: Path, *, seed: int) -> None:
    """Write the small inputs the commands share: 4 plat cells x 3 frames at 48³ and one 2D mask."""
    simulate_to_folder("plat", folder / "sim", sequences=4, frames=3, size=48, seed=seed)
    mask = tifffile.imread(folder / "sim" / "plat_000.tif")[0].max(axis=0)
    tifffile.imwrite(folder / "mask.tif", (mask > 0).astype(np.uint8) * 255)


def command_lines(folder: Path, *, fit_iterations: int = 100) -> dict[str, Callable[[str], list[str]]]:
    """Return, per command, its options on the small inputs in ``folder`` given an output name.

    The order matters: ``evaluate`` scores what ``generate`` wrote, ``reconstruct`` decodes what ``train``
    trained, ``segment`` learns from what ``benchmark`` built (untimed).
    """
    sim = folder / "sim"
    return {
        "fit": lambda out: [
            "fit",
            "ckpt=plat",
            f"input={sim}",
            f"out={out}",
            f"iterations={fit_iterations}",
            "resolution=32",
        ],
        "generate": lambda out: ["generate", "ckpt=plat", f"out={out}", "n=2", "frames=4", "resolution=64"],
        "evaluate": lambda out: [
            "evaluate",
            f"real={sim}",
            f"generated={folder / 'generate_default'}",
            f"out={out}",
        ],
        "train": lambda out: ["train", f"out={out}", *_TRAIN],
        "reconstruct": lambda out: [
            "reconstruct",
            f"ckpt={folder / 'train_default' / 'model.pt'}",
            f"out={out}",
            "resolution=32",
            "frames=3",
        ],
        "lift": lambda out: ["lift", f"mask={folder / 'mask.tif'}", f"out={out}", "hypotheses=2", "steps=60"],
        "fidelity": lambda out: [
            "fidelity",
            "ckpt=plat",
            f"out={out}",
            "n=2",
            "frames=2",
            "size=32",
            "resamples=10",
        ],
        "segment": lambda out: [
            "segment",
            f"train={folder / 'ctc'}",
            f"test={folder / 'ctc'}",
            f"out={out}",
            "steps=40",
            "batch=4",
            "patch=64",
        ],
    }


def _run(args: list[str]) -> tuple[float, int]:
    """Run ``cellsdf <args>`` in a fresh process; return its wall seconds and the threads it chose."""
    command = [sys.executable, "-m", "cellsdf.cli", *args, "progress=false", "verbose=true", "overwrite=true"]
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"cellsdf {' '.join(args)} failed: {done.stderr.strip().splitlines()[-1:]}")
    chosen = _CHOSEN.search(done.stderr)
    return seconds, int(chosen.group(1)) if chosen else 0


@contextmanager
def busy_cores(count: int) -> Iterator[None]:
    """Keep ``count`` processes spinning on the CPUs for the block (the load of a shared machine)."""
    spinners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(count)]
    try:
        time.sleep(1.0)  # let them take the cores before the command looks at them
        yield
    finally:
        for spinner in spinners:
            spinner.kill()
            spinner.wait()


def threads_rows(
    *,
    seed: int = 0,
    commands: Sequence[str] = COMMANDS,
    fit_iterations: int = 100,
    on_step: Callable[[str], None] | None = None,
) -> list[Row]:
    """Time each command at the default threads and at one thread, on a quiet and on a loaded machine.

    Parameters
    ----------
    seed : int
        Seed of the simulated inputs.
    commands : sequence of str
        Commands to time, in this order (of :data:`COMMANDS`).
    fit_iterations : int
        Adam steps of ``fit``.
    on_step : callable, optional
        Called with a short text before each command, for progress.

    Returns
    -------
    list of Row
        Per command and condition: seconds at the default (ours) and at one thread (reference), the ratio,
        the threads the default chose, and whether the default is within 1.2x of the better.
    """
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        _inputs(folder, seed=seed)
        lines = command_lines(folder, fit_iterations=fit_iterations)
        unknown = set(commands) - set(lines)
        if unknown:
            raise InputError(
                "threads_commands", f"unknown command(s) {sorted(unknown)}; choose from {COMMANDS}"
            )
        chosen = list(commands)
        if "reconstruct" in chosen and "train" not in chosen:
            _run(lines["train"](str(folder / "train_default")))
        if "evaluate" in chosen and "generate" not in chosen:
            _run(lines["generate"](str(folder / "generate_default")))
        if "segment" in chosen:
            _run(["benchmark", f"source={folder / 'sim'}", f"out={folder / 'ctc'}", "realism_seeds=0"])
        for condition in ("quiet", "loaded"):
            for name in chosen:
                if on_step is not None:
                    on_step(f"{name}, {condition}")
                make = lines[name]
                with busy_cores(usable_cores() if condition == "loaded" else 0):
                    default, threads = _run(make(str(folder / f"{name}_default")))
                    one, _ = _run([*make(str(folder / f"{name}_one")), "threads=1"])
                better = min(default, one)
                rows.append(
                    Row(
                        name=f"{name}, {condition}: default threads vs 1 thread (s)",
                        ours=default,
                        reference=one,
                        ratio=default / one,
                        target=f"default <= {TARGET_SLOWDOWN:g}x the better (the default chose {threads})",
                        passed=default <= TARGET_SLOWDOWN * better,
                        peak_mib=None,
                    )
                )
    return rows
