"""Atomic file writes: write under a temporary name in the target folder, then rename."""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

from cellsdf.errors import InputError


def check_writable(path: str | Path, overwrite: bool) -> Path:
    """Refuse to replace an existing output unless asked to.

    Parameters
    ----------
    path : str or Path
        The output file that is about to be written.
    overwrite : bool
        Whether an existing file may be replaced.

    Returns
    -------
    Path
        The path, as a ``Path``.
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise InputError(path, "output already exists; pass overwrite=true to replace it")
    return path


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path`` that is renamed onto ``path`` when the block succeeds.

    If the block raises, the temporary file is removed and an existing ``path`` is left untouched.

    Parameters
    ----------
    path : str or Path
        The final file name.

    Yields
    ------
    Path
        Where to write; same folder and suffix as ``path`` so that writers that look at the suffix still work.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp{os.getpid()}{path.suffix}")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_folder(path: str | Path) -> Iterator[Path]:
    """Yield a temporary folder beside ``path`` that replaces ``path`` when the block succeeds.

    For outputs that are folders (OME-Zarr). If the block raises, the temporary folder is removed and an
    existing ``path`` is left untouched. A folder cannot be renamed onto a full one, so an existing ``path``
    is first renamed aside and removed once the new folder is in place.

    Parameters
    ----------
    path : str or Path
        The final folder name.

    Yields
    ------
    Path
        A new, empty folder to write into, in the same parent folder as ``path``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    old = path.with_name(f".{path.name}.old{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        yield tmp
        if path.exists():
            os.replace(path, old)
        os.replace(tmp, path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(old, ignore_errors=True)
