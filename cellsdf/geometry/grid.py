"""The regular grid spanning [-1, 1]³: its step, its physical voxel size and its point coordinates.

A grid of ``size`` points per axis places point ``i`` at ``-1 + i * 2 / (size - 1)``, so both ends of every
axis lie on the cube's faces. Coordinates are (z, y, x) like every array in cellsdf.
"""

from __future__ import annotations

import numpy as np


def _check_size(size: int, name: str, least: int) -> None:
    if isinstance(size, bool) or int(size) != size or size < least:
        raise ValueError(f"{name} must be a whole number >= {least}, got {size!r}")


def grid_step(size: int) -> float:
    """Distance between neighbouring points of a grid spanning [-1, 1], in normalised units.

    Parameters
    ----------
    size : int
        Points per axis, at least 2.

    Returns
    -------
    float
        ``2 / (size - 1)``.

    Raises
    ------
    ValueError
        If ``size`` is not a whole number of at least 2.

    Examples
    --------
    >>> grid_step(5)
    0.5
    >>> grid_step(256) == 2 / 255
    True
    """
    _check_size(size, "size", 2)
    return 2.0 / (size - 1)


def grid_spacing(resolution: int, scale: float) -> tuple[float, float, float]:
    """Voxel size (z, y, x) in µm of a ``resolution``³ grid spanning [-1, 1]³.

    Parameters
    ----------
    resolution : int
        Grid side; neighbouring points are :func:`grid_step` normalised units apart.
    scale : float
        Normalised units per µm of the data (a prepared dataset's or a model's ``scale``), positive.

    Returns
    -------
    tuple of float
        Isotropic voxel size in µm.

    Raises
    ------
    ValueError
        If ``resolution`` is below 2 or ``scale`` is not positive.

    Examples
    --------
    >>> grid_spacing(5, 0.25)
    (2.0, 2.0, 2.0)
    """
    if not scale > 0:
        raise ValueError(f"scale must be positive, got {scale!r}")
    step = grid_step(resolution) / scale
    return (step, step, step)


def grid_axis(size: int) -> np.ndarray:
    """Coordinates of the ``size`` points of one grid axis, from -1 to 1.

    Parameters
    ----------
    size : int
        Points per axis; a single point sits at -1.

    Returns
    -------
    np.ndarray
        float64 (size,).

    Examples
    --------
    >>> grid_axis(5)
    array([-1. , -0.5,  0. ,  0.5,  1. ])
    """
    _check_size(size, "size", 1)
    return np.linspace(-1.0, 1.0, size)


def cube_grid(size: int) -> np.ndarray:
    """Points of a ``size``³ grid spanning [-1, 1]³, as coordinates (z, y, x) in C order.

    Parameters
    ----------
    size : int
        Points per axis.

    Returns
    -------
    np.ndarray
        float64 (size³, 3); row ``(i * size + j) * size + k`` is the point of voxel ``[i, j, k]``.

    Examples
    --------
    >>> points = cube_grid(3)
    >>> points.shape
    (27, 3)
    >>> points[1].tolist(), points[-1].tolist()
    ([-1.0, -1.0, 0.0], [1.0, 1.0, 1.0])
    """
    axis = grid_axis(size)
    return np.stack(np.meshgrid(axis, axis, axis, indexing="ij"), axis=-1).reshape(-1, 3)


def frame_times(frames: int) -> np.ndarray:
    """Return ``frames`` times evenly spaced over a sequence's [-1, 1] time axis (0 for one frame).

    Examples
    --------
    >>> frame_times(3).tolist(), frame_times(1).tolist()
    ([-1.0, 0.0, 1.0], [0.0])
    """
    return np.linspace(-1.0, 1.0, frames) if frames > 1 else np.zeros(1)
