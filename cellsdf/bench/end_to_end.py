"""End-to-end rows: whole ``cellsdf generate`` and ``cellsdf benchmark`` runs against absolute targets.

Neither has a plain way to compare with; the targets are seconds for the whole command.
"""

from __future__ import annotations

import shutil
import tempfile
from functools import partial
from pathlib import Path

import torch

from cellsdf.bench.measure import TARGET_SIZE, measure
from cellsdf.bench.row import Row
from cellsdf.benchmark.build import build_benchmark
from cellsdf.generate.options import Request
from cellsdf.generate.run import default_parallelism, generate_cells
from cellsdf.simulate.write import simulate_to_folder
from cellsdf.texture.models import Texture

TARGET_GENERATE_SECONDS = 180.0  # one cell, 30 frames at 256³ with meshes
TARGET_BENCHMARK_SECONDS = 300.0  # 33 sequences x 30 frames of 256³ masks
TARGET_DATASET_SECONDS = 300.0  # a published-size data set: 33 cells x 30 frames at 256³ with meshes
TARGET_MEMORY_GROWTH = 1.1  # peak memory with twice the frames or cells / peak memory of the base run
PUBLISHED_CELLS = 33


def generate_row(model: str, *, size: int, frames: int, seed: int) -> Row:
    """Time one generated cell with meshes, ``frames`` frames at ``size``³ (target: 180 s, 30 at 256³).

    The whole ``cellsdf generate`` path with its defaults: narrow-band decoding, TIFF, per-frame and
    time-lapse meshes, preview.

    Parameters
    ----------
    model : str
        Checkpoint path or built-in model name.
    size : int
        Grid side in voxels.
    frames : int
        Frames generated.
    seed : int
        Seed of the generated cell.

    Returns
    -------
    Row
        Seconds for the cell, peak traced MiB.
    """
    request = Request(ckpt=model, n=1, frames=frames, resolution=size, seed=seed, formats=("tiff", "mesh"))
    with tempfile.TemporaryDirectory() as tmp:
        seconds, peak = measure(lambda: generate_cells(request, Path(tmp) / "gen", {}))
    return Row(
        name=f"generate {model}: 1 cell, {frames} frames at {size}³ with meshes (s)",
        ours=seconds,
        reference=None,
        ratio=None,
        target=f"<= {TARGET_GENERATE_SECONDS:.0f} s for 30 frames at {TARGET_SIZE}³",
        passed=seconds <= TARGET_GENERATE_SECONDS if size == TARGET_SIZE and frames >= 30 else None,
        peak_mib=peak,
    )


def generate_cells_row(model: str, *, size: int, frames: int, cells: int, seed: int) -> Row:
    """Time ``cells`` generated cells with the command's defaults and project a 33-cell data set from them.

    The defaults are those of ``cellsdf generate``: one worker process per core the thread policy gives (at
    most ``cells``), the cores left over as torch threads, bf16 where native, tracking. Cells take about the
    same time each, so 33 cells take ``33 / cells`` times as long once ``cells`` fills the workers.

    Parameters
    ----------
    model : str
        Checkpoint path or built-in model name.
    size : int
        Grid side in voxels.
    frames : int
        Frames per cell.
    cells : int
        Cells generated.
    seed : int
        Seed of the run.

    Returns
    -------
    Row
        Projected seconds for 33 cells (the measured seconds in the target text), peak traced MiB of this
        process (the workers' memory is their own).
    """
    request = Request(
        ckpt=model, n=cells, frames=frames, resolution=size, seed=seed, formats=("tiff", "mesh")
    )
    # The cores the thread policy gave this bench run (the command line set torch's threads to them).
    workers, threads = default_parallelism(cells, torch.get_num_threads(), frames=frames, resolution=size)
    with tempfile.TemporaryDirectory() as tmp:
        seconds, peak = measure(
            lambda: generate_cells(request, Path(tmp) / "gen", {}, workers=workers, threads=threads)
        )
    projected = seconds * PUBLISHED_CELLS / cells
    judged = size == TARGET_SIZE and frames >= 30
    return Row(
        name=f"generate {model}: {cells} cells x {frames} frames at {size}³ with meshes, "
        f"{workers} worker(s), projected to {PUBLISHED_CELLS} cells (s)",
        ours=projected,
        reference=None,
        ratio=None,
        target=f"<= {TARGET_DATASET_SECONDS:.0f} s for {PUBLISHED_CELLS} x 30 at {TARGET_SIZE}³ "
        f"(measured {seconds:.1f} s for {cells})",
        passed=projected <= TARGET_DATASET_SECONDS if judged else None,
        peak_mib=peak,
    )


def generate_memory_row(model: str, *, size: int, frames: int, seed: int, judge: bool) -> Row:
    """Peak memory of ``cellsdf generate`` with twice the frames and twice the cells against the base run.

    Three in-process runs (one worker): 1 cell of ``frames`` frames (the base), 1 cell of ``2 * frames``,
    2 cells of ``frames``; TIFF and meshes at ``size``³. Memory is traced (Python and NumPy allocations:
    masks, meshes, previews), which is what could grow with frames or cells; torch's working memory is per
    frame.

    Parameters
    ----------
    model : str
        Checkpoint path or built-in model name.
    size : int
        Grid side.
    frames : int
        Frames of the base run.
    seed : int
        Seed of the runs.
    judge : bool
        Give the row a verdict.

    Returns
    -------
    Row
        The larger of the two doubled runs' peaks (ours) against the base run's (reference), and their ratio.
    """
    peaks = []
    for cells, length in ((1, frames), (1, 2 * frames), (2, frames)):
        request = Request(
            ckpt=model, n=cells, frames=length, resolution=size, seed=seed, formats=("tiff", "mesh")
        )
        with tempfile.TemporaryDirectory() as tmp:
            run = partial(generate_cells, request, Path(tmp) / "gen", {}, workers=1)
            peaks.append(measure(run)[1])
    base, longer, more = peaks
    return Row(
        name=f"generate {model} peak memory at {size}³: 1 cell x {2 * frames} frames and 2 cells x {frames} "
        f"vs 1 x {frames} (traced MiB)",
        ours=max(longer, more),
        reference=base,
        ratio=max(longer, more) / base,
        target=f"<= {TARGET_MEMORY_GROWTH:g}x (flat in frames and cells; {longer:.0f} and {more:.0f} MiB)",
        passed=max(longer, more) <= TARGET_MEMORY_GROWTH * base if judge else None,
        peak_mib=max(peaks),
    )


def benchmark_row(
    texture: Texture, *, sequences: int, frames: int, size: int, distinct: int, seed: int
) -> Row:
    """Time ``cellsdf benchmark`` on ``sequences`` x ``frames`` cele masks of ``size``³ (target: 300 s).

    The whole command: reading the TIFFs, projecting 3D components, tracks, texturing, writing the CTC layout
    and scoring the baseline. The input (untimed) is ``distinct`` simulated sequences copied to ``sequences``
    files, since simulating all of them would take longer than the row itself and every sequence costs the
    same.

    Parameters
    ----------
    texture : Texture
        The texture model (:mod:`cellsdf.texture.models`).
    sequences : int
        Mask time-lapses in the input folder.
    frames : int
        Frames per time-lapse.
    size : int
        Grid side in voxels.
    distinct : int
        Simulated sequences behind the copies.
    seed : int
        Seed of the simulation and of the benchmark.

    Returns
    -------
    Row
        Seconds for the command, peak traced MiB.
    """
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "masks"
        distinct = min(distinct, sequences)
        simulate_to_folder("cele", source, sequences=distinct, frames=frames, size=size, seed=seed)
        files = sorted(source.glob("*.tif"))
        for k in range(len(files), sequences):
            shutil.copyfile(files[k % len(files)], source / f"copy_{k:03d}.tif")
        seconds, peak = measure(lambda: build_benchmark(source, Path(tmp) / "ctc", texture, seed=seed))
    judged = size == TARGET_SIZE and sequences >= 33 and frames >= 30
    return Row(
        name=f"benchmark {texture.name}: {sequences} x {frames} frames at {size}² (s)",
        ours=seconds,
        reference=None,
        ratio=None,
        target=f"<= {TARGET_BENCHMARK_SECONDS:.0f} s for 33 x 30 at {TARGET_SIZE}²",
        passed=seconds <= TARGET_BENCHMARK_SECONDS if judged else None,
        peak_mib=peak,
    )
