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
    """

    spacing_at_256: tuple[float, float, float]
    frame_interval: float


LINES = {
    "plat": LineConstants((0.1, 0.1, 0.1), 60.0),  # a 25.6 µm field
    "cele": LineConstants((0.1, 0.1, 0.1), 60.0),
    "filo": LineConstants((0.2, 0.2, 0.2), 30.0),  # a 51 µm field
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
