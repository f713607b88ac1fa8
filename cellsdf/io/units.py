"""Physical units in image metadata: lengths to µm and times to seconds, and the checks on stated sizes.

NGFF (OME-Zarr) names units in words (``nanometer``, ``millisecond``); OME-XML (OME-TIFF) writes symbols
(``nm``, ``ms``, ``µm``). Both spellings are accepted, with any SI prefix.
"""

from __future__ import annotations

import math
from pathlib import Path

from cellsdf.errors import InputError

_PREFIX_WORDS = {
    "yotta": 1e24,
    "zetta": 1e21,
    "exa": 1e18,
    "peta": 1e15,
    "tera": 1e12,
    "giga": 1e9,
    "mega": 1e6,
    "kilo": 1e3,
    "hecto": 1e2,
    "deca": 1e1,
    "": 1.0,
    "deci": 1e-1,
    "centi": 1e-2,
    "milli": 1e-3,
    "micro": 1e-6,
    "nano": 1e-9,
    "pico": 1e-12,
    "femto": 1e-15,
    "atto": 1e-18,
    "zepto": 1e-21,
    "yocto": 1e-24,
}
# "u" and the Greek mu stand in for the micro sign where it cannot be typed or was normalised away.
_PREFIX_SYMBOLS = {
    "Y": 1e24,
    "Z": 1e21,
    "E": 1e18,
    "P": 1e15,
    "T": 1e12,
    "G": 1e9,
    "M": 1e6,
    "k": 1e3,
    "h": 1e2,
    "da": 1e1,
    "": 1.0,
    "d": 1e-1,
    "c": 1e-2,
    "m": 1e-3,
    "\u00b5": 1e-6,
    "\u03bc": 1e-6,
    "u": 1e-6,
    "n": 1e-9,
    "p": 1e-12,
    "f": 1e-15,
    "a": 1e-18,
    "z": 1e-21,
    "y": 1e-24,
}
_METRES = {
    **{f"{p}meter": f for p, f in _PREFIX_WORDS.items()},
    **{f"{p}metre": f for p, f in _PREFIX_WORDS.items()},
    **{f"{p}m": f for p, f in _PREFIX_SYMBOLS.items()},
    "micron": 1e-6,
    "angstrom": 1e-10,
    "\u00c5": 1e-10,
    "inch": 0.0254,
    "in": 0.0254,
    "foot": 0.3048,
    "ft": 0.3048,
    "yard": 0.9144,
    "yd": 0.9144,
    "mile": 1609.344,
    "mi": 1609.344,
}
_SECONDS = {
    **{f"{p}second": f for p, f in _PREFIX_WORDS.items()},
    **{f"{p}s": f for p, f in _PREFIX_SYMBOLS.items()},
    "minute": 60.0,
    "min": 60.0,
    "hour": 3600.0,
    "h": 3600.0,
    "day": 86400.0,
    "d": 86400.0,
}


def micrometres_per(unit: str) -> float | None:
    """Return how many µm one ``unit`` of length is, or None for a unit that is not a length.

    Parameters
    ----------
    unit : str
        A length unit in words (``nanometer``) or symbols (``nm``, ``µm``).

    Returns
    -------
    float or None
        The factor to µm.

    Examples
    --------
    >>> micrometres_per("nanometer"), micrometres_per("mm"), micrometres_per("pixel")
    (0.001, 1000.0, None)
    """
    metres = _METRES.get(unit.strip())
    return None if metres is None else metres * 1e6


def seconds_per(unit: str) -> float | None:
    """Return how many seconds one ``unit`` of time is, or None for a unit that is not a time.

    Parameters
    ----------
    unit : str
        A time unit in words (``millisecond``) or symbols (``ms``, ``min``).

    Returns
    -------
    float or None
        The factor to seconds.

    Examples
    --------
    >>> seconds_per("millisecond"), seconds_per("min")
    (0.001, 60.0)
    """
    return _SECONDS.get(unit.strip())


# Plausible sizes for microscopy, wide enough for any light or electron microscope and time-lapse: a voxel
# from 0.1 nm to 1 cm, a frame interval from 1 µs to about 116 days. Outside them a value is a unit mistake
# or a damaged file, and would give grids of nonsense physical size downstream.
PLAUSIBLE = {"length": (1e-4, 1e4, "µm"), "time": (1e-6, 1e7, "s")}


def check_size(
    path: str | Path, field: str, value: object, *, kind: str | None, factor: float = 1.0
) -> float:
    """Return a voxel size or frame interval read from a file, in µm or s; it must be finite and plausible.

    Parameters
    ----------
    path : str or Path
        The file, named by the error.
    field : str
        The metadata field, named by the error.
    value : object
        The stated value, in the file's unit.
    kind : {'length', 'time'} or None
        What the value measures; its converted value must lie in :data:`PLAUSIBLE` for that kind. None
        checks only that it is a positive number (a factor that is itself not a size, such as one of
        several scales that multiply).
    factor : float
        The file unit's size in µm (length) or s (time).

    Returns
    -------
    float
        ``value * factor``.

    Raises
    ------
    InputError
        If the value is not a number, is zero, negative, NaN or infinite, or lies outside the plausible range.

    Examples
    --------
    >>> check_size("a.tif", "PhysicalSizeX", "200", kind="length", factor=1e-3)
    0.2
    """
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError, OverflowError):
        raise InputError(path, f"{field} in the metadata is not a number: {value!r}") from None
    if not (math.isfinite(number) and number > 0):
        raise InputError(path, f"{field} in the metadata must be a positive number, got {value!r}")
    size = number * factor
    if kind is not None:
        least, most, unit = PLAUSIBLE[kind]
        if not least <= size <= most:
            raise InputError(
                path,
                f"{field} in the metadata gives {size:.6g} {unit}, outside the plausible {least:g} .. "
                f"{most:g} {unit}",
            )
    return size
