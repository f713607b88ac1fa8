"""The output-folder check every command makes before it writes."""

from __future__ import annotations

from pathlib import Path

from cellsdf.errors import InputError
from cellsdf.io.atomic import check_writable
from cellsdf.io.lock import is_lock


def check_out_folder(out: str | Path, overwrite: bool) -> Path:
    """Refuse an output folder that already holds files, unless ``overwrite``; refuse a file.

    The lock files of :mod:`cellsdf.io.lock` do not count.

    Parameters
    ----------
    out : str or Path
        The folder a command will write into (it need not exist yet).
    overwrite : bool
        Accept a folder that holds files.

    Returns
    -------
    Path
        ``out``.
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise InputError(out, "is a file; out must name a folder")
    if out.is_dir() and any(not is_lock(p.name) for p in out.iterdir()):
        check_writable(out, overwrite)
    return out
