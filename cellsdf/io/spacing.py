"""Validation of user-given voxel sizes, shared by every command that takes one."""

from __future__ import annotations

from collections.abc import Sequence

from cellsdf.errors import InputError

Spacing = tuple[float, float, float]


def check_spacing(option: str, spacing: Sequence[float] | None) -> Spacing | None:
    """Validate a user-given voxel size (three positive µm values, z, y, x) or pass None through.

    Parameters
    ----------
    option : str
        The option's name, for the error message.
    spacing : sequence of float or None
        The value.

    Returns
    -------
    tuple of float or None
        The voxel size.

    Raises
    ------
    InputError
        If the value is not three positive numbers.
    """
    if spacing is None:
        return None
    try:
        values = tuple(float(s) for s in spacing)
    except (TypeError, ValueError):
        raise InputError(option, f"needs three positive numbers (z, y, x) in µm, got {spacing!r}") from None
    if len(values) != 3 or min(values) <= 0:
        raise InputError(option, f"needs three positive numbers (z, y, x) in µm, got {list(values)}")
    return values
