"""Writing simulated cell-line sequences: TIFF time-lapses and the per-sequence manifest items."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
from scipy import ndimage

from cellsdf.errors import InputError, check_whole
from cellsdf.io.atomic import check_writable
from cellsdf.io.limits import check_grid
from cellsdf.io.tiff import write_timelapse
from cellsdf.progress import track
from cellsdf.simulate import sequence_rng, simulate_frames
from cellsdf.simulate.lines import get_line, line_spacing, simulated_lines

_FIELD_COLUMNS = 8
# Bytes per voxel of one sequence's frame held at once: the bool frame, the TIFF page and the simulator's
# float work arrays over the cell's box (a generous bound, so a refusal comes before an allocation fails).
_FRAME_BYTES_PER_VOXEL = 32


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
    layout: str = "files",
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
        Seconds between frames written to the TIFFs; None: the line's over its life course in ``frames``
        frames (:meth:`~cellsdf.simulate.lines.CellLine.interval`).
    seed : int
        Run seed; sequence i uses ``SeedSequence([seed, i])``.
    overwrite : bool
        Replace existing files.
    progress : bool
        Show a progress bar.
    layout : {'files', 'labels'}
        'files': one binary time-lapse per sequence; 'labels': one uint16 label time-lapse
        ``out/<cell_line>_labels.tif`` in which sequence i is label i + 1 in its own ``size``³ tile (tiles in
        rows of up to 8 along x), as a segmented field of view would be.

    Returns
    -------
    list of dict
        Manifest items: file, label (labels layout), seed, division frame, drawn parameters, voxels and
        components per frame.
    """
    if cell_line not in simulated_lines():
        raise InputError(
            "cellline", f"unknown cell line {cell_line!r}; choose one of {', '.join(simulated_lines())}"
        )
    check_whole(sequences, "sequences")
    check_whole(frames, "frames")
    check_whole(size, "size", least=16)
    # The labels layout holds every sequence's uint16 tile of the field besides the frame being simulated.
    tiles = 2 * sequences if layout == "labels" else 0
    check_grid("size", size, _FRAME_BYTES_PER_VOXEL + tiles)
    spacing = line_spacing(cell_line, size) if spacing is None else spacing
    frame_interval = get_line(cell_line).interval(frames) if frame_interval is None else frame_interval
    out = Path(out)
    if layout == "labels":
        return _label_field(cell_line, out, sequences, frames, size, spacing, frame_interval, seed, overwrite)
    if layout != "files":
        raise InputError("layout", f"must be 'files' or 'labels', got {layout!r}")
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
        items.append(_item(file.name, i, cell_line, division, params, voxels, components))
    return items


def _label_field(
    cell_line: str,
    out: Path,
    sequences: int,
    frames: int,
    size: int,
    spacing: tuple[float, float, float],
    frame_interval: float,
    seed: int,
    overwrite: bool,
) -> list[dict]:
    file = out / f"{cell_line}_labels.tif"
    for path in (file, out / "manifest.json"):
        check_writable(path, overwrite)
    columns = min(sequences, _FIELD_COLUMNS)
    rows = -(-sequences // columns)
    # The sequences advance together, one frame each, so memory holds one frame of the field.
    drawn = [simulate_frames(cell_line, frames, size, sequence_rng(seed, i)) for i in range(sequences)]
    voxels: list[list[int]] = [[] for _ in drawn]
    components: list[list[int]] = [[] for _ in drawn]
    streams = [_counted(stream, voxels[i], components[i]) for i, (stream, _, _) in enumerate(drawn)]

    def fields() -> Iterator[np.ndarray]:
        for _ in range(frames):
            field = np.zeros((size, rows * size, columns * size), np.uint16)
            for i, stream in enumerate(streams):
                row, column = divmod(i, columns)
                tile = field[:, row * size : (row + 1) * size, column * size : (column + 1) * size]
                tile[next(stream)] = i + 1
            yield field

    shape = (frames, size, rows * size, columns * size)
    write_timelapse(
        file,
        fields(),
        shape=shape,
        spacing=spacing,
        frame_interval=frame_interval,
        overwrite=overwrite,
        labels=True,
    )
    return [
        {**_item(file.name, i, cell_line, division, params, voxels[i], components[i]), "label": i + 1}
        for i, (_, division, params) in enumerate(drawn)
    ]


def _item(
    file: str,
    index: int,
    cell_line: str,
    division: int | None,
    params: dict,
    voxels: list[int],
    components: list[int],
) -> dict:
    """One sequence's manifest item."""
    return {
        "file": file,
        "index": index,
        "cell_line": cell_line,
        "division_frame": division,
        "params": params,
        "voxels": voxels,
        "components": components,
    }


def _counted(frames: Iterator[np.ndarray], voxels: list[int], components: list[int]) -> Iterator[np.ndarray]:
    full = np.ones((3, 3, 3), bool)
    for frame in frames:
        voxels.append(int(frame.sum()))
        components.append(int(ndimage.label(frame, structure=full)[1]))
        yield frame
