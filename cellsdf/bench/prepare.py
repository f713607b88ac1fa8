"""Simulate and prepare rows: simulated frames, the signed distance of a frame, a prepared sequence."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from cellsdf.bench.measure import TARGET_SIZE, measure
from cellsdf.bench.row import Row
from cellsdf.dataset.normalise import centres, frame_boxes, half_extent
from cellsdf.dataset.prepare import prepare_dataset
from cellsdf.dataset.sampling import sample_points
from cellsdf.dataset.sdf import interpolate_sdf, signed_distance, signed_distance_reference
from cellsdf.dataset.sources import MaskSequence, SequenceLoader
from cellsdf.geometry.grid import cube_grid
from cellsdf.simulate import sequence_rng, simulate_frames

TARGET_SIMULATE_SECONDS = 2.0  # per simulated 256³ frame
TARGET_PREPARE_SPEEDUP = 3.0  # plain seconds / our seconds, one 30-frame sequence at 256³


def simulate_row(cell_line: str, *, size: int, frames: int, seed: int) -> Row:
    """Time the simulation of one sequence of a cell line (target: at most 2 s per 256³ frame).

    Parameters
    ----------
    cell_line : str
        Simulated line: ``plat``, ``cele`` or ``filo``.
    size : int
        Grid side in voxels.
    frames : int
        Frames simulated.
    seed : int
        Seed of the sequence.

    Returns
    -------
    Row
        Seconds per frame and peak traced MiB; no plain way to compare with.
    """
    stream, _, _ = simulate_frames(cell_line, frames, size, sequence_rng(seed, 0))
    seconds, peak = measure(lambda: sum(1 for _ in stream))
    per_frame = seconds / frames
    return Row(
        name=f"simulate {cell_line} {size}³ (s/frame)",
        ours=per_frame,
        reference=None,
        ratio=None,
        target=f"<= {TARGET_SIMULATE_SECONDS:g} s/frame at {TARGET_SIZE}³",
        passed=per_frame <= TARGET_SIMULATE_SECONDS if size == TARGET_SIZE else None,
        peak_mib=peak,
    )


def sdf_row(cell_line: str, *, size: int, seed: int) -> Row:
    """Time the signed distance of one full frame: the ``edt`` package against two SciPy distance transforms.

    Parameters
    ----------
    cell_line : str
        Simulated line of the frame.
    size : int
        Grid side in voxels.
    seed : int
        Seed of the simulated sequence whose first frame is used.

    Returns
    -------
    Row
        Seconds, ours and SciPy's, and their ratio; no target of its own (it is part of prepare).
    """
    stream, _, _ = simulate_frames(cell_line, 1, size, sequence_rng(seed, 0))
    mask = next(stream)
    ours, peak = measure(lambda: signed_distance(mask))
    plain, _ = measure(lambda: signed_distance_reference(mask))
    return Row(
        name=f"signed distance {size}³ full grid (s)",
        ours=ours,
        reference=plain,
        ratio=plain / ours,
        target="(part of prepare)",
        passed=None,
        peak_mib=peak,
    )


def plain_prepare(
    seq: MaskSequence, *, points_per_frame: int, eval_size: int, seed: int, margin: float
) -> None:
    """Prepare a sequence the simple way: full-grid SciPy distance transforms, then the same sampling.

    Parameters
    ----------
    seq : MaskSequence
        The masks and their spacing.
    points_per_frame : int
        Points sampled per frame.
    eval_size : int
        Side of the evaluation grid interpolated per frame.
    seed : int
        Seed of the sampling.
    margin : float
        Fraction of [-1, 1] left free around the sequence's cells.
    """
    boxes = frame_boxes(seq.masks)
    centre = centres(boxes, seq.spacing, "sequence")
    scale = (1.0 - margin) / half_extent(boxes, seq.spacing, centre)
    spacing = np.asarray(seq.spacing)
    rng = np.random.default_rng(seed)
    grid = cube_grid(eval_size)
    for k, mask in enumerate(seq.masks):
        sdf = signed_distance_reference(mask, spacing=seq.spacing) * np.float32(scale)
        origin = -centre[k] * scale
        sample_points(sdf, origin, spacing * scale, points_per_frame, rng)
        interpolate_sdf(sdf, origin, spacing * scale, grid)


def prepare_row(cell_line: str, *, size: int, frames: int, seed: int, points_per_frame: int) -> Row:
    """Prepare one simulated sequence our way and the plain way (target: at least 3x faster).

    Parameters
    ----------
    cell_line : str
        Simulated line of the sequence.
    size : int
        Grid side in voxels.
    frames : int
        Frames in the sequence.
    seed : int
        Seed of the sequence and of the point sampling.
    points_per_frame : int
        Points sampled per frame.

    Returns
    -------
    Row
        Seconds, ours (:func:`~cellsdf.dataset.prepare.prepare_dataset`, writing the file) and the plain way's
        (:func:`plain_prepare`), peak traced MiB of ours.
    """
    stream, _, _ = simulate_frames(cell_line, frames, size, sequence_rng(seed, 0))
    masks = np.stack(list(stream))
    seq = MaskSequence("bench", "simulated", masks, (1.0, 1.0, 1.0), np.arange(frames))
    with tempfile.TemporaryDirectory() as tmp:
        ours, peak = measure(
            lambda: prepare_dataset(
                [SequenceLoader("bench", lambda: seq)],
                Path(tmp) / "bench.h5",
                points_per_frame=points_per_frame,
                seed=seed,
            )
        )
    plain, _ = measure(
        lambda: plain_prepare(seq, points_per_frame=points_per_frame, eval_size=64, seed=seed, margin=0.1)
    )
    return Row(
        name=f"prepare {cell_line} {frames}x{size}³ (s)",
        ours=ours,
        reference=plain,
        ratio=plain / ours,
        target=f">= {TARGET_PREPARE_SPEEDUP:g}x vs full-grid scipy EDT",
        passed=plain / ours >= TARGET_PREPARE_SPEEDUP if size == TARGET_SIZE else None,
        peak_mib=peak,
    )
