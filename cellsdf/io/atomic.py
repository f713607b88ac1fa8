"""Atomic file writes: write under a temporary name in the target folder, then rename."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import socket
from collections.abc import Iterator
from pathlib import Path

from cellsdf.errors import InputError

# Temporary names carry the writing process and its machine, so that a later run can tell the leftovers of a
# killed run (a process of this machine that no longer exists) from the files of a run still writing, which
# may be on another machine of a cluster that shares the folder.
HOST = re.sub(r"[^A-Za-z0-9-]", "-", socket.gethostname().split(".")[0]) or "host"
_TEMPORARY = re.compile(r"^\..+\.(?:tmp|old|partial)(?P<pid>\d+)-(?P<host>[A-Za-z0-9-]+)(?:\.[^.]*)?$")


def temporary_name(name: str, *, kind: str = "tmp", suffix: str = "", pid: int | None = None) -> str:
    """Return the hidden name under which a process writes ``name`` before renaming it.

    Parameters
    ----------
    name : str
        The final name (without ``suffix``).
    kind : str
        ``tmp`` (being written), ``old`` (being replaced) or ``partial`` (a folder being filled).
    suffix : str
        Kept at the end, for writers that choose the format by suffix.
    pid : int, optional
        The writing process; this one by default.

    Returns
    -------
    str

    Examples
    --------
    >>> temporary_name("mask", suffix=".tif", pid=42).startswith(".mask.tmp42-")
    True
    """
    return f".{name}.{kind}{os.getpid() if pid is None else pid}-{HOST}{suffix}"


def process_alive(pid: int) -> bool:
    """Whether a process with this id runs on this machine."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, under another user
        return True
    return True


def remove_stale_temporaries(
    folder: str | Path, *, recursive: bool = True, name: str | None = None
) -> list[Path]:
    """Remove the temporary files and folders that killed runs of this machine left in ``folder``.

    Only names written by :func:`temporary_name` whose process no longer runs are removed: a run still
    writing, here or on another machine, keeps its files.

    Parameters
    ----------
    folder : str or Path
        An output folder.
    recursive : bool
        Look into sub-folders too.
    name : str, optional
        Only the temporaries of this one output (its final name, as passed to :func:`temporary_name`).

    Returns
    -------
    list of Path
        What was removed.
    """
    removed = []
    for entry in _entries(Path(folder), recursive):
        found = _TEMPORARY.match(entry.name)
        if found is None:
            continue
        mine = name is None or entry.name.startswith(f".{name}.")
        if mine and found["host"] == HOST and not process_alive(int(found["pid"])):
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)
            removed.append(entry)
    return removed


def _entries(folder: Path, recursive: bool) -> Iterator[Path]:
    try:
        entries = list(os.scandir(folder))
    except (FileNotFoundError, NotADirectoryError):
        return
    for entry in entries:
        yield Path(entry.path)
        # A temporary folder goes as a whole; symbolic links may lead out of the output.
        if recursive and entry.is_dir(follow_symlinks=False) and not _TEMPORARY.match(entry.name):
            yield from _entries(Path(entry.path), recursive)


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
    tmp = path.with_name(temporary_name(path.stem, suffix=path.suffix))
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
    tmp = path.with_name(temporary_name(path.name))
    old = path.with_name(temporary_name(path.name, kind="old"))
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
