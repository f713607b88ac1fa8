"""What a command shows: our progress and results; library warnings and logs only when asked for."""

from __future__ import annotations

import contextlib
import logging
import warnings
from collections.abc import Iterator

# Loggers of the libraries that talk during training (tips, GPU and TPU notes, summaries).
_LIBRARY_LOGGERS = ("pytorch_lightning", "lightning", "lightning.pytorch", "lightning_fabric", "torch")


def quiet_libraries(verbose: bool) -> None:
    """Silence library warnings and info logs unless ``verbose`` (errors still show).

    Parameters
    ----------
    verbose : bool
        Keep everything the libraries say.
    """
    if verbose:
        return
    warnings.simplefilter("ignore")
    for name in _LIBRARY_LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)


def hydra_error_line(text: str) -> str:
    r"""Condense Hydra's multi-line composition error into one line.

    Examples
    --------
    >>> text = "In 'train': Could not find 'cellline/xyz'\n\nAvailable options in 'cellline':\n\tcele\n\tplat"
    >>> hydra_error_line(text + "\nConfig search path: ...")
    "In 'train': Could not find 'cellline/xyz'; available: cele, plat"
    >>> hydra_error_line("LexerNoViableAltException: out=/tmp/zürich")[:44]
    "cannot read the option 'out=/tmp/zürich': qu"
    """
    lines = [line.strip() for line in text.splitlines()]
    lines = [line for line in lines if line and not line.startswith("Set the environment variable")]
    if not lines:
        return "invalid options"
    message = lines[0]
    if any(line.startswith("Available options") for line in lines):
        start = next(i for i, line in enumerate(lines) if line.startswith("Available options")) + 1
        options = []
        for line in lines[start:]:
            if line.startswith("Config search path") or ":" in line:
                break
            options.append(line)
        message += f"; available: {', '.join(options)}"
    elif any("is not in struct" in line for line in lines):
        key = message.removeprefix("Could not override ").rstrip(".")
        message = f"unknown option {key} (see the options with --help)"
    elif message.startswith(("LexerNoViableAltException", "mismatched input", "extraneous input")):
        # Hydra's override grammar takes unquoted values of ASCII letters, digits and a few signs only.
        given = message.split(": ", 1)[-1]
        key, _, value = given.partition("=")
        message = (
            f"cannot read the option {given!r}: quote a value with spaces or non-ASCII characters, "
            f"as in \"{key}='{value}'\""
        )
    return message


@contextlib.contextmanager
def quiet_logger(name: str, level: int = logging.CRITICAL) -> Iterator[None]:
    """Raise a library logger's level for a block, where our own error replaces what it would log."""
    logger = logging.getLogger(name)
    previous = logger.level
    logger.setLevel(level)
    try:
        yield
    finally:
        logger.setLevel(previous)
