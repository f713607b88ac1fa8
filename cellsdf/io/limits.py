"""Size limits checked before memory is allocated: a file's declared size, or a grid asked for by an option.

A few hundred bytes of TIFF or HDF5 can declare terabytes of pixels, and one option (``resolution=100000``)
can ask for a grid no machine holds. Allocating first ends in a MemoryError or a machine that swaps; these
checks refuse with the estimate instead, before anything is allocated.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import psutil

from cellsdf.errors import InputError

_GIB = 2**30
# The largest chunk an HDF5 or Zarr file from elsewhere may declare: reading one value reads a whole chunk,
# and cellsdf writes a frame per chunk at most (a 256³ uint8 mask is 16 MiB).
MAX_CHUNK_BYTES = 256 * 2**20


def available_memory() -> int:
    """Return the bytes of memory available to a new allocation without swapping.

    Returns
    -------
    int
        ``psutil.virtual_memory().available``.

    Examples
    --------
    >>> available_memory() > 0
    True
    """
    return int(psutil.virtual_memory().available)


def check_allocation(source: str | Path | None, nbytes: int, *, what: str) -> int:
    """Refuse an allocation larger than the memory available, before it is made.

    Parameters
    ----------
    source : str or Path or None
        The file or option that asks for it; it starts the error message.
    nbytes : int
        Bytes the allocation would take.
    what : str
        What would be allocated, as the message names it (e.g. ``"its pixels (2 x 512³ uint8)"``).

    Returns
    -------
    int
        ``nbytes``.

    Raises
    ------
    InputError
        If ``nbytes`` exceeds :func:`available_memory`; the message gives both in GiB.

    Examples
    --------
    >>> check_allocation("a.tif", 1024, what="its pixels")
    1024
    """
    have = available_memory()
    if nbytes > have:
        raise InputError(
            source,
            f"{what} would need {_gib(nbytes)} of memory, but only {_gib(have)} is available",
        )
    return nbytes


def check_array(
    source: str | Path | None, shape: Sequence[int], dtype: np.dtype | type | str, *, what: str
) -> int:
    """Refuse an array whose declared shape and dtype would not fit in the memory available.

    Parameters
    ----------
    source : str or Path or None
        The file or option that declares the array.
    shape : sequence of int
        Declared shape; computed with Python integers, so no product overflows.
    dtype : numpy dtype
        Declared element type.
    what : str
        What the array is, for the message; the shape and dtype are appended.

    Returns
    -------
    int
        The array's size in bytes.

    Raises
    ------
    InputError
        If the array would not fit.

    Examples
    --------
    >>> check_array("a.h5", (4, 8, 8), "float32", what="dataset 'sdf'")
    1024
    """
    dtype = np.dtype(dtype)
    nbytes = math.prod(int(n) for n in shape) * dtype.itemsize
    shown = " x ".join(str(int(n)) for n in shape) or "scalar"
    return check_allocation(source, nbytes, what=f"{what} ({shown} {dtype.name})")


def check_grid(option: str, side: int, bytes_per_voxel: float, *, base: int = 0, frames: int = 1) -> int:
    """Refuse a grid side whose arrays would not fit in memory, naming the option.

    Parameters
    ----------
    option : str
        The option that sets the side (``resolution``, ``size``).
    side : int
        Grid side; the grid holds ``side³`` voxels per frame.
    bytes_per_voxel : float
        Bytes held per voxel at once by the command (all its grids of one frame together).
    base : int
        Bytes the command needs whatever the grid (the model, libraries).
    frames : int
        Frames held at once.

    Returns
    -------
    int
        The estimate in bytes.

    Raises
    ------
    InputError
        If the estimate exceeds the memory available.

    Examples
    --------
    >>> check_grid("resolution", 64, 8) == 64**3 * 8
    True
    """
    need = math.ceil(int(side) ** 3 * int(frames) * bytes_per_voxel) + int(base)
    have = available_memory()
    if need > have:
        held = f"{side}³" if frames == 1 else f"{frames} frames of {side}³"
        raise InputError(
            option,
            f"{held} needs about {_gib(need)} of memory, but only {_gib(have)} is available; "
            f"choose a smaller {option}",
        )
    return need


def _gib(nbytes: int) -> str:
    return f"{nbytes / _GIB:,.1f} GiB"


def check_chunk(source: str | Path, name: str, chunks: Sequence[int], itemsize: int) -> None:
    """Refuse a stored array whose declared chunk exceeds :data:`MAX_CHUNK_BYTES` (one read holds a chunk).

    Examples
    --------
    >>> check_chunk("a.h5", "/masks", (1, 64, 64, 64), 1)
    """
    nbytes = math.prod(chunks) * itemsize
    if nbytes > MAX_CHUNK_BYTES:
        raise InputError(
            source,
            f"{name} declares chunks of {nbytes / 2**20:,.0f} MiB (each read holds one whole); "
            f"refused above {MAX_CHUNK_BYTES // 2**20} MiB",
        )
