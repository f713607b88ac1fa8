"""One writer per output: a lock file beside what a command writes, held while it writes.

The lock is an advisory ``flock`` on a hidden file that records the writer's process id and machine. The
operating system releases it when the process ends, however it ends, so the lock of a killed run is simply
taken over; a second run while the first still writes is refused with one line. Taking the lock also removes
what killed runs left behind (their temporary files, see :func:`cellsdf.io.atomic.temporary_name`).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

from cellsdf.errors import InputError
from cellsdf.io.atomic import HOST, remove_stale_temporaries

try:
    import fcntl
except ImportError:  # Windows: the C runtime's byte-range lock, also released when the process ends
    fcntl = None
    import msvcrt

LOCK_PREFIX = ".cellsdf"
LOCK_SUFFIX = ".lock"


def is_lock(name: str) -> bool:
    """Whether a file name is a lock file of :func:`writing_folder` or :func:`writing_file`."""
    return name.startswith(LOCK_PREFIX) and name.endswith(LOCK_SUFFIX)


@contextlib.contextmanager
def writing_folder(folder: str | Path | None, *, part: str = "") -> Iterator[Path | None]:
    """Hold the lock of an output folder while the block writes into it; clean up after killed runs first.

    Parameters
    ----------
    folder : str or Path or None
        The output folder; created if missing, and removed again if the block leaves it empty. None locks
        nothing (the command refuses its missing ``out`` itself).
    part : str
        Names a share of the folder that runs may write at the same time (``shard0``, ``shard1`` of a
        sharded run); runs of the same part exclude each other.

    Yields
    ------
    Path or None
        ``folder``.

    Raises
    ------
    InputError
        If another process holds the lock.
    """
    if folder is None:
        yield None
        return
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise InputError(folder, "is a file; out must name a folder")
    created = not folder.exists()
    folder.mkdir(parents=True, exist_ok=True)
    name = f"{LOCK_PREFIX}-{part}{LOCK_SUFFIX}" if part else f"{LOCK_PREFIX}{LOCK_SUFFIX}"
    try:
        with _locked(folder / name, folder):
            remove_stale_temporaries(folder)
            yield folder
    finally:
        if created:
            with contextlib.suppress(OSError):  # not empty: the command wrote something
                folder.rmdir()


@contextlib.contextmanager
def writing_file(path: str | Path | None) -> Iterator[Path | None]:
    """Hold the lock of an output file (beside it, in its folder) while the block writes it.

    Parameters
    ----------
    path : str or Path or None
        The output file; its folder is created if missing. None locks nothing (the command refuses its
        missing ``out`` itself).

    Yields
    ------
    Path or None
        ``path``.

    Raises
    ------
    InputError
        If another process holds the lock.
    """
    if path is None:
        yield None
        return
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with _locked(path.parent / f"{LOCK_PREFIX}-{path.name}{LOCK_SUFFIX}", path):
        remove_stale_temporaries(path.parent, recursive=False, name=path.stem)
        yield path


@contextlib.contextmanager
def _locked(lock: Path, output: Path) -> Iterator[None]:
    while True:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
        if not _try_lock(fd):
            holder = _holder(fd)
            os.close(fd)
            raise InputError(
                output,
                f"another cellsdf run ({holder}) is writing here; let it finish or choose another out",
            ) from None
        # The run before may have removed the file between our open and our lock: then lock the new file.
        try:
            current = os.path.samestat(os.fstat(fd), os.stat(lock))
        except FileNotFoundError:
            current = False
        if current:
            break
        os.close(fd)
    try:
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()} {HOST}\n".encode())
        yield
    finally:
        if fcntl is None:  # Windows cannot remove an open file
            os.close(fd)
            lock.unlink(missing_ok=True)
        else:
            # Removed while still held, so that no other run locks a file that is about to vanish.
            lock.unlink(missing_ok=True)
            os.close(fd)


def _try_lock(fd: int) -> bool:
    """Take the lock of an open lock file without waiting; False when another process holds it."""
    try:
        if fcntl is not None:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        else:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
    except OSError:
        return False
    return True


def _holder(fd: int) -> str:
    """Describe the process that holds a lock from what it wrote into the file."""
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        words = os.read(fd, 200).decode(errors="replace").split()
    except OSError:  # Windows refuses to read a byte another process has locked
        words = []
    if not words:
        return "pid unknown"
    where = f" on {words[1]}" if len(words) > 1 and words[1] != HOST else ""
    return f"pid {words[0]}{where}"
