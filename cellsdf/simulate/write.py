"""Writing simulated cell-line sequences: TIFF time-lapses and the per-sequence manifest items."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
from scipy import ndimage

from cellsdf.errors import InputError, check_whole
from cellsdf.io.atomic import check_writable
from cellsdf.io.tiff import write_timelapse
from cellsdf.progress import track
from cellsdf.simulate import CELL_LINES, sequence_rng, simulate_frames
from cellsdf.simulate.lines import line_constants, line_spacing


def simulate_to_folder(
    cell_line: str,
    out: str | Path,
    *,
    sequences: int = 33,
    frames: int = 30,
    size: int = 256,
    spacing: tuple[float, float, float] | None = None,
    frame_interval: float | None = None,
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
    spacing : tuple of float, optional
        Voxel size (z, y, x) in µm written to the TIFFs; None: the line's own at ``size``
        (:func:`cellsdf.simulate.lines.line_spacing`).
    frame_interval : float, optional
        Seconds between frames written to the TIFFs; None: the line's own.
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
    check_whole(sequences, "sequences")
    check_whole(frames, "frames")
    check_whole(size, "size", 16)
    spacing = line_spacing(cell_line, size) if spacing is None else spacing
    frame_interval = line_constants(cell_line).frame_interval if frame_interval is None else frame_interval
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
