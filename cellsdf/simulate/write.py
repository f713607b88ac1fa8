"""Writing simulated cell-line sequences: TIFF time-lapses and the per-sequence manifest items."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
from scipy import ndimage

from cellsdf.errors import InputError
from cellsdf.io.atomic import check_writable
from cellsdf.io.tiff import write_timelapse
from cellsdf.progress import track
from cellsdf.simulate import CELL_LINES, sequence_rng, simulate_frames


def simulate_to_folder(
    cell_line: str,
    out: str | Path,
    *,
    sequences: int = 33,
    frames: int = 30,
    size: int = 256,
    spacing: tuple[float, float, float] = (1.0, 1.0, 1.0),
    frame_interval: float = 1.0,
    seed: int = 0,
    overwrite: bool = False,
    progress: bool = False,
) -> list[dict]:
    """Simulate sequences of one cell line and write ``out/<cell_line>_000.tif`` ... plus ``manifest.json``.

    Frames are made and written one at a time, so memory does not grow with the number of frames.

    Parameters
    ----------
    cell_line : {'plat', 'cele', 'filo'}
        Which cell line.
    out : str or Path
        Output folder.
    sequences, frames, size : int
        Number of sequences, frames per sequence, grid side in voxels.
    spacing : tuple of float
        Voxel size (z, y, x) in µm written to the TIFFs.
    frame_interval : float
        Seconds between frames written to the TIFFs.
    seed : int
        Run seed; sequence i uses ``SeedSequence([seed, i])``.
    overwrite : bool
        Replace existing files.
    progress : bool
        Show a progress bar.

    Returns
    -------
    list of dict
        Manifest items: file, seed, division frame, drawn parameters, voxels and components per frame.
    """
    if cell_line not in CELL_LINES:
        raise InputError(
            "cellline", f"unknown cell line {cell_line!r}; choose one of {', '.join(CELL_LINES)}"
        )
    if sequences < 1 or frames < 1 or size < 16:
        raise InputError(
            "simulate", f"need sequences >= 1, frames >= 1, size >= 16 (got {sequences}, {frames}, {size})"
        )
    out = Path(out)
    files = [out / f"{cell_line}_{i:03d}.tif" for i in range(sequences)]
    for file in [*files, out / "manifest.json"]:
        check_writable(file, overwrite)
    items = []
    for i, file in enumerate(track(files, f"simulating {cell_line}", show=progress)):
        stream, division, params = simulate_frames(cell_line, frames, size, sequence_rng(seed, i))
        voxels: list[int] = []
        components: list[int] = []
        write_timelapse(
            file,
            _counted(stream, voxels, components),
            shape=(frames, size, size, size),
            spacing=spacing,
            frame_interval=frame_interval,
            overwrite=overwrite,
        )
        items.append(
            {
                "file": file.name,
                "index": i,
                "cell_line": cell_line,
                "division_frame": division,
                "params": params,
                "voxels": voxels,
                "components": components,
            }
        )
    return items


def _counted(frames: Iterator[np.ndarray], voxels: list[int], components: list[int]) -> Iterator[np.ndarray]:
    full = np.ones((3, 3, 3), bool)
    for frame in frames:
        voxels.append(int(frame.sum()))
        components.append(int(ndimage.label(frame, structure=full)[1]))
        yield frame
