"""The published reference model's HDF5 training files (dataset ``sdf_vid``).

h5py sees ``sdf_vid`` with shape (N, N, N, T); the reference code takes ``.transpose(3, 2, 1, 0)`` to get
(T, N, N, N) frames. Its SDF is positive outside and divided by max |sdf| of each frame.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path

import h5py
import numpy as np

from cellsdf.errors import InputError
from cellsdf.io.atomic import atomic_path, check_writable
from cellsdf.io.hdf5 import open_hdf5
from cellsdf.io.limits import check_allocation

DATASET = "sdf_vid"


def read_reference_sdf(path: str | Path) -> np.ndarray:
    """Read a reference-format SDF video as (T, N, N, N) frames in the file's own units.

    Parameters
    ----------
    path : str or Path
        HDF5 file with dataset ``sdf_vid``.

    Returns
    -------
    np.ndarray
        float32 array (T, Z, Y, X); positive outside the cell.

    Raises
    ------
    InputError
        If the file is missing or unreadable, has no ``sdf_vid``, is not 4D numbers, would not fit in memory,
        or holds NaN.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "file not found")
    try:
        with open_hdf5(path) as f:
            data = f.get(DATASET)
            if not isinstance(data, h5py.Dataset):
                raise InputError(path, f"no dataset '{DATASET}' (found: {', '.join(f.keys()) or 'nothing'})")
            shape = data.shape or ()
            if len(shape) != 4:
                raise InputError(path, f"'{DATASET}' has shape {shape}; expected 4 axes (N, N, N, T)")
            if 0 in shape:
                raise InputError(path, f"'{DATASET}' has shape {shape}, which holds no values")
            if data.dtype.kind not in "biuf":
                raise InputError(path, f"'{DATASET}' holds {data.dtype}, not numbers")
            # The file's values and their float32 copy in frame order are held at once.
            elements = int(np.prod(shape, dtype=object))
            check_allocation(
                path,
                elements * (data.dtype.itemsize + 4),
                what=f"'{DATASET}' ({' x '.join(map(str, shape))} {data.dtype}) and its float32 copy",
            )
            raw = data[()]
    except InputError:
        raise
    except (OSError, KeyError, TypeError, ValueError, RuntimeError) as err:
        raise InputError(path, f"unreadable HDF5 file ({err})") from None
    if not np.isfinite(raw).all():
        raise InputError(path, f"'{DATASET}' contains NaN or infinite values")
    return np.ascontiguousarray(raw.transpose(3, 2, 1, 0), dtype=np.float32)


def write_reference_sdf(path: str | Path, sdf: np.ndarray, *, overwrite: bool = False) -> Path:
    """Write (T, N, N, N) SDF frames in the reference layout (one gzip chunk per frame), atomically.

    Parameters
    ----------
    path : str or Path
        Output ``.h5`` file.
    sdf : np.ndarray
        SDF frames (T, Z, Y, X), positive outside.
    overwrite : bool
        Replace an existing file.

    Returns
    -------
    Path
        The written file.
    """
    if sdf.ndim != 4:
        raise ValueError(f"sdf must have shape (T, Z, Y, X), got {sdf.shape}")
    with reference_writer(path, sdf.shape, overwrite=overwrite) as add:
        for frame in sdf:
            add(frame)
    return Path(path)


@contextlib.contextmanager
def reference_writer(
    path: str | Path, shape: tuple[int, int, int, int], *, overwrite: bool = False
) -> Iterator[Callable[[np.ndarray], None]]:
    """Open a reference-layout SDF file; yield a function that appends one frame (memory holds one frame).

    The file is renamed into place when the block ends with all ``shape[0]`` frames written; if the block
    raises, nothing is left behind and an existing file is untouched.

    Parameters
    ----------
    path : str or Path
        Output ``.h5`` file.
    shape : tuple of int
        (T, Z, Y, X).
    overwrite : bool
        Replace an existing file.

    Yields
    ------
    callable
        ``add(frame)`` with ``frame`` a (Z, Y, X) SDF, positive outside.
    """
    path = check_writable(path, overwrite)
    stored_shape = (*shape[:0:-1], shape[0])
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as f:
        data = f.create_dataset(
            DATASET, shape=stored_shape, dtype=np.float32, chunks=(*stored_shape[:3], 1), compression="gzip"
        )
        count = 0

        def add(frame: np.ndarray) -> None:
            nonlocal count
            if count >= shape[0] or frame.shape != tuple(shape[1:]):
                raise ValueError(f"frame {count} of shape {frame.shape} does not fit shape {shape}")
            data[..., count] = frame.transpose(2, 1, 0)
            count += 1

        yield add
        if count != shape[0]:
            raise ValueError(f"got {count} frames, expected {shape[0]}")
