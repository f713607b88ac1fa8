"""The published reference model's HDF5 training files (dataset ``sdf_vid``).

h5py sees ``sdf_vid`` with shape (N, N, N, T); the reference code takes ``.transpose(3, 2, 1, 0)`` to get
(T, N, N, N) frames. Its SDF is positive outside and divided by max |sdf| of each frame.
"""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np

from cellsdf.errors import InputError
from cellsdf.io.atomic import atomic_path, check_writable

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
        If the file is missing or unreadable, has no ``sdf_vid``, is not 4D, or holds NaN.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "file not found")
    try:
        with h5py.File(path, "r") as f:
            if DATASET not in f:
                raise InputError(path, f"no dataset '{DATASET}' (found: {', '.join(f.keys()) or 'nothing'})")
            raw = f[DATASET][()]
    except OSError as err:
        raise InputError(path, f"unreadable HDF5 file ({err})") from None
    if raw.ndim != 4:
        raise InputError(path, f"'{DATASET}' has shape {raw.shape}; expected 4 axes (N, N, N, T)")
    if not np.isfinite(raw).all():
        raise InputError(path, f"'{DATASET}' contains NaN or infinite values")
    return np.ascontiguousarray(raw.transpose(3, 2, 1, 0), dtype=np.float32)


def write_reference_sdf(path: str | Path, sdf: np.ndarray, overwrite: bool = False) -> Path:
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
    path = check_writable(path, overwrite)
    if sdf.ndim != 4:
        raise ValueError(f"sdf must have shape (T, Z, Y, X), got {sdf.shape}")
    stored = np.ascontiguousarray(sdf.transpose(3, 2, 1, 0), dtype=np.float32)
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as f:
        f.create_dataset(DATASET, data=stored, chunks=(*stored.shape[:3], 1), compression="gzip")
    return path
