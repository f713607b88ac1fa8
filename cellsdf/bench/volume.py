"""Bench rows of the 3D benchmark: one cell imaged at the CHO-like preset, against the plain way.

The plain way does what ``benchmark dims=3`` does with the same functions, but as one would first write it:
every frame of the cell on the microscope's full grid in memory, tracked as one array, imaged, and the whole
sequence written at the end (:func:`cellsdf.io.ctc.write_ctc_sequence`). Ours keeps each frame's box only and
writes frame by frame, so its memory should follow the cell, not the number of frames.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
from scipy import ndimage

from cellsdf.bench.measure import measure
from cellsdf.bench.row import Row
from cellsdf.benchmark.build import division_frame
from cellsdf.benchmark.tracks import track_single_cell
from cellsdf.benchmark.volume import build_volume_benchmark
from cellsdf.evaluate.inputs import iter_masks, list_sequences
from cellsdf.io.ctc import write_ctc_sequence
from cellsdf.simulate.write import simulate_to_folder
from cellsdf.texture.microscope import Microscope

TARGET_MEMORY_GROWTH = 1.5  # peak memory at `frames` / peak memory at a third of them


def volume_rows(*, frames: int, size: int, seed: int) -> list[Row]:
    """Time and trace one simulated cele cell of ``frames`` frames at ``size``³, imaged at the cho preset.

    Parameters
    ----------
    frames : int
        Frames of the sequence (30 for the target); the memory row also runs a third of them.
    size : int
        Grid side of the simulated masks (256 for the target).
    seed : int
        Seed of the simulation and of the images.

    Returns
    -------
    list of Row
        Seconds (ours against the plain way) and peak traced memory (ours against the plain way, and ours at
        ``frames`` against ours at a third of them: flat in frames is the target).
    """
    microscope = Microscope()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        simulate_to_folder("cele", root / "masks", sequences=1, frames=frames, size=size, seed=seed)
        third = max(2, frames // 3)
        simulate_to_folder("cele", root / "short", sequences=1, frames=third, size=size, seed=seed)
        ours_s, ours_mib = measure(lambda: build_volume_benchmark(root / "masks", root / "ours", microscope))
        _, short_mib = measure(lambda: build_volume_benchmark(root / "short", root / "short_out", microscope))
        plain_s, plain_mib = measure(
            lambda: plain_volume_benchmark(root / "masks", root / "plain", microscope)
        )
    label = f"benchmark dims=3: 1 cele cell, {frames} frames of {size}³ -> cho preset (1 x 0.202 x 0.202 µm)"
    growth = ours_mib / short_mib if short_mib else None
    return [
        Row(
            name=f"{label} (s)",
            ours=ours_s,
            reference=plain_s,
            ratio=plain_s / ours_s if ours_s else None,
            target="(no target; the plain way holds every frame)",
            passed=None,
            peak_mib=ours_mib,
        ),
        Row(
            name=f"{label}, peak memory (MiB; ratio: {frames} frames over {third})",
            ours=ours_mib,
            reference=plain_mib,
            ratio=growth,
            target=f"ours at {frames} frames <= {TARGET_MEMORY_GROWTH:g} x ours at {third} (flat in frames)",
            passed=growth <= TARGET_MEMORY_GROWTH if growth is not None and frames >= 30 else None,
            peak_mib=ours_mib,
        ),
    ]


def plain_volume_benchmark(source: Path, out: Path, microscope: Microscope) -> None:
    """Build the same benchmark the plain way: every frame held on the full grid, written at the end."""
    (spec,) = list_sequences(source)
    grids = [microscope.stained(mask, spec.spacing) for mask in iter_masks(spec)]
    masks = np.stack([occupancy >= 0.5 for occupancy, _ in grids])
    stains = np.stack([stain for _, stain in grids])
    ids = np.stack([ndimage.label(m, structure=np.ones((3, 3, 3)))[0] for m in masks])
    labels, tracks = track_single_cell(masks, division_frame(spec), components=ids)
    rng = np.random.default_rng(0)
    factors = microscope.brightness(rng, int(labels.max()))
    images = np.stack(
        [
            microscope.image(lab, st, rng, factors=factors, frame=t)
            for t, (lab, st) in enumerate(zip(labels, stains, strict=True))
        ]
    )
    write_ctc_sequence(out, 1, images, labels, tracks)
