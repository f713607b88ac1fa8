"""Per-line constants of the built-in cell lines: voxel size at 256³ and frame interval, as data."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class LineConstants:
    """What a built-in cell line's files carry besides the shapes.

    Attributes
    ----------
    spacing_at_256 : tuple of float
        Voxel size (z, y, x) in µm on a 256³ grid; other grids keep the same field of view.
    frame_interval : float
        Seconds between frames.
    score_size : int
        Grid side on which ``cellsdf fidelity`` scores the line: the smallest at which its thinnest parts are
        at least 2 voxels across, so that a decoded cell's pieces are the model's and not the grid's.
    """

    spacing_at_256: tuple[float, float, float]
    frame_interval: float
    score_size: int


LINES = {
    "plat": LineConstants((0.1, 0.1, 0.1), 60.0, 64),  # a 25.6 µm field
    "cele": LineConstants((0.1, 0.1, 0.1), 60.0, 64),
    # A 51 µm field; filopodia about 1 µm across are 1 voxel at 64³ (0.8 µm) and 2-3 at 128³ (0.4 µm).
    "filo": LineConstants((0.2, 0.2, 0.2), 30.0, 128),
}


def scaled_spacing(spacing_at_256: tuple[float, ...], size: int) -> tuple[float, float, float]:
    """Return a voxel size at grid ``size``, given the voxel size at 256³.

    Keeping the physical field of view fixed means a smaller grid is the same cell at a coarser resolution.

    Examples
    --------
    >>> scaled_spacing((0.1, 0.1, 0.1), 64)
    (0.4, 0.4, 0.4)
    """
    return tuple(float(s) * 256.0 / size for s in spacing_at_256)


def line_constants(cell_line: str) -> LineConstants:
    """Return the constants of a built-in cell line; ValueError names the lines for an unknown one.

    Examples
    --------
    >>> line_constants("filo").frame_interval
    30.0
    """
    if cell_line not in LINES:
        raise ValueError(f"unknown cell line {cell_line!r}; choose one of {', '.join(LINES)}")
    return LINES[cell_line]


def line_spacing(cell_line: str, size: int) -> tuple[float, float, float]:
    """Return a built-in line's voxel size (µm) at grid ``size``.

    Examples
    --------
    >>> line_spacing("plat", 128)
    (0.2, 0.2, 0.2)
    """
    return scaled_spacing(line_constants(cell_line).spacing_at_256, size)
