"""How ``fit`` treats a cell's size: the scale modes and the check of their options (light: no torch)."""

from __future__ import annotations

import math

from cellsdf.errors import InputError

SCALE_MODES = ("fit", "fixed")


def check_scale_options(scale: str, scale_prior: object) -> float:
    """Check the ``scale`` mode and the ``scale_prior`` weight; return the weight as a float.

    Examples
    --------
    >>> check_scale_options("fit", 1)
    1.0
    """
    if scale not in SCALE_MODES:
        raise InputError("scale", f"choose one of {', '.join(SCALE_MODES)}, got {scale!r}")
    number = isinstance(scale_prior, int | float) and not isinstance(scale_prior, bool)
    if not number or not math.isfinite(scale_prior) or scale_prior < 0:
        raise InputError("scale_prior", f"must be a number >= 0 (0: no prior), got {scale_prior!r}")
    return float(scale_prior)
