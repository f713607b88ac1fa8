"""Axis orders of stored masks: the letters that name a 3D (ZYX) or 3D+t (TZYX) image's axes, in any order."""

from __future__ import annotations

from cellsdf.errors import InputError

ORDERS = {3: "ZYX", 4: "TZYX"}


def check_axes(option: str, axes: object, *, ndim: int | None = None) -> None:
    """Refuse an axis order that does not name each of T, Z, Y, X (or Z, Y, X) once; None passes.

    Parameters
    ----------
    option : str
        The option that gave it, for the message.
    axes : object
        The order (``TZYX``, ``ZTYX``, ``ZYX``, ...) or None.
    ndim : int, optional
        The dimensions of the file it is for; None accepts a 3D or a 3D+t order.

    Examples
    --------
    >>> check_axes("axes", "ZTYX"), check_axes("axes", None)
    (None, None)
    >>> check_axes("axes", "TZYX", ndim=3)
    Traceback (most recent call last):
    ...
    cellsdf.errors.InputError: axes: must name each of Z, Y, X once for a 3D file, got 'TZYX'
    """
    if axes is None:
        return
    wanted = [ORDERS[ndim]] if ndim is not None else list(ORDERS.values())
    if not isinstance(axes, str) or sorted(axes) not in [sorted(w) for w in wanted]:
        if ndim is not None:
            problem = f"must name each of {', '.join(ORDERS[ndim])} once for a {ndim}D file, got {axes!r}"
        else:
            problem = f"must name each of T, Z, Y, X (or Z, Y, X) once, e.g. TZYX or ZTYX; got {axes!r}"
        raise InputError(option, problem)
