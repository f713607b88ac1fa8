"""Bad input: a ValueError naming the file or option; the command line prints it as one line, exit code 2."""

from __future__ import annotations

import os
from pathlib import Path


class InputError(ValueError):
    """Bad input from the user: a missing, unreadable or unsuitable file, or an invalid option.

    Parameters
    ----------
    source : str or Path or None
        The file or option that is wrong; it starts the message so the user knows where to look.
    problem : str
        What is wrong with it, in one line.
    """

    def __init__(self, source: str | Path | None, problem: str):
        self.source = None if source is None else str(source)
        self.problem = problem
        super().__init__(problem if source is None else f"{source}: {problem}")

    def __reduce__(self) -> tuple:
        # Rebuild from both arguments, so the error survives the trip back from a worker process.
        return InputError, (self.source, self.problem)


def check_whole(value: object, name: str, *, least: int = 1) -> int:
    """Return an option that must be a whole number of at least ``least``; otherwise raise InputError.

    Booleans are refused although Python counts them as integers: ``n=true`` is a mistake, not 1.

    Parameters
    ----------
    value : object
        The option's value as configured.
    name : str
        The option's name, which starts the error message.
    least : int
        Smallest allowed value.

    Returns
    -------
    int
        ``value``.
    """
    if not isinstance(value, int) or isinstance(value, bool) or value < least:
        raise InputError(name, f"must be an integer >= {least}, got {value!r}")
    return value


def error_line(err: BaseException) -> str:
    r"""Return an error as the one line the command line prints: the file first for an operating-system error.

    Parameters
    ----------
    err : BaseException
        A refusal of bad input (ValueError, TypeError) or a failure of the file system (OSError: a read-only
        or full disk, a folder where a file is expected).

    Returns
    -------
    str
        One line.

    Examples
    --------
    >>> error_line(PermissionError(13, "Permission denied", "/data/out"))
    '/data/out: Permission denied'
    >>> error_line(ValueError("size: must be positive\n(got -1)"))
    'size: must be positive (got -1)'
    """
    if isinstance(err, OSError) and err.strerror:
        text = err.strerror if err.filename is None else f"{err.filename}: {err.strerror}"
    else:
        text = str(err) or type(err).__name__
    return " ".join(text.split())


def printable(text: str) -> str:
    r"""Return a name as UTF-8 text: bytes of a file name that are not UTF-8 become ``\xff`` escapes.

    Python keeps such bytes as surrogates, which text formats (HDF5 strings, JSON read elsewhere) refuse;
    records and messages keep the name readable instead.

    Examples
    --------
    >>> printable("cells/ok.tif"), printable(os.fsdecode(b"bad\xff/ok.tif"))
    ('cells/ok.tif', 'bad\\xff/ok.tif')
    """
    return os.fsencode(text).decode("utf-8", "backslashreplace")
