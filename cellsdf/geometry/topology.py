"""Topology rules: how many connected components each frame of a cell may have.

Components are 26-connected (``np.ones((3, 3, 3))``), as :mod:`cellsdf.simulate` counts them. Two rules:

- ``single`` (``plat``, ``filo``): one component in every frame.
- ``divide_once`` (``cele``): one component, then two from the division on, never back; the cell must
  divide within the sequence.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from cellsdf.geometry.components import component_count

RULES = ("single", "divide_once")


def component_counts(masks: np.ndarray | Sequence[np.ndarray]) -> np.ndarray:
    """Count the 26-connected components of each frame.

    Parameters
    ----------
    masks : np.ndarray or sequence of np.ndarray
        bool (T, Z, Y, X), or one (Z, Y, X) frame after another.

    Returns
    -------
    np.ndarray
        int (T,).

    Examples
    --------
    >>> frames = np.zeros((2, 8, 8, 8), bool)
    >>> frames[:, 1:3, 1:3, 1:3] = True
    >>> frames[1, 6, 6, 6] = True
    >>> component_counts(frames).tolist()
    [1, 2]
    """
    return np.array([component_count(mask) for mask in masks], dtype=int)


def check_rule(counts: Sequence[int], rule: str) -> dict[str, object]:
    """Say whether a sequence of per-frame component counts keeps a topology rule, and where it breaks.

    Parameters
    ----------
    counts : sequence of int
        Components per frame.
    rule : str
        ``single`` or ``divide_once`` (see the module).

    Returns
    -------
    dict
        ``keeps`` (bool), ``first_break`` (the first frame that breaks the rule, or None; None for a
        ``divide_once`` sequence that never divides) and ``reason`` (``""``, ``"empty"``, ``"fragments"``,
        ``"merges back"`` or ``"never divides"``).

    Examples
    --------
    >>> check_rule([1, 1, 2, 2], "divide_once")
    {'keeps': True, 'first_break': None, 'reason': ''}
    >>> check_rule([1, 2, 2, 1], "divide_once")
    {'keeps': False, 'first_break': 3, 'reason': 'merges back'}
    >>> check_rule([1, 3, 1], "single")
    {'keeps': False, 'first_break': 1, 'reason': 'fragments'}
    """
    _check_name(rule)
    divided = False
    for t, count in enumerate(int(c) for c in counts):
        if count == 0:
            return _broken(t, "empty")
        allowed = 2 if divided else 1
        if rule == "divide_once" and not divided and count == 2 and t > 0:
            divided = True
            continue
        if count > allowed or (rule == "divide_once" and count == 2 and t == 0):
            return _broken(t, "fragments")
        if count < allowed:
            return _broken(t, "merges back")
    if rule == "divide_once" and not divided:
        return {"keeps": False, "first_break": None, "reason": "never divides"}
    return {"keeps": True, "first_break": None, "reason": ""}


def fragments_per_frame(counts: Sequence[int], rule: str) -> np.ndarray:
    """Components beyond what the rule allows, per frame.

    ``single`` allows one component. ``divide_once`` allows two from the first frame of the final run of
    frames with two or more components (the division that lasts), one before it; so the daughters of a
    division that merges back count as a fragment while they are apart.

    Parameters
    ----------
    counts : sequence of int
        Components per frame.
    rule : str
        ``single`` or ``divide_once``.

    Returns
    -------
    np.ndarray
        int (T,), zero where the frame has no more components than allowed.

    Examples
    --------
    >>> fragments_per_frame([1, 2, 1, 2, 3], "divide_once").tolist()
    [0, 1, 0, 0, 1]
    """
    _check_name(rule)
    counts = np.asarray(counts, dtype=int)
    allowed = np.ones_like(counts)
    if rule == "divide_once" and len(counts):
        below = np.flatnonzero(counts < 2)
        start = below[-1] + 1 if len(below) else 0
        if start > 0:  # a sequence that starts divided has no division to see
            allowed[start:] = 2
    return np.maximum(counts - allowed, 0)


def infer_rule(counts: Sequence[Sequence[int]]) -> str | None:
    """Learn a line's topology rule from its sequences' component counts: the rule every sequence keeps.

    Parameters
    ----------
    counts : sequence of sequence of int
        Components per frame of each sequence of a data set.

    Returns
    -------
    str or None
        ``single`` if every sequence keeps it, else ``divide_once`` if every sequence keeps that, else None
        (no rule: generated cells of such data are not checked).

    Examples
    --------
    >>> infer_rule([[1, 1], [1, 1, 1]]), infer_rule([[1, 2], [1, 1, 2]]), infer_rule([[1, 2], [1, 1]])
    ('single', 'divide_once', None)
    """
    for rule in RULES:
        if counts and all(check_rule(c, rule)["keeps"] for c in counts):
            return rule
    return None


def _broken(t: int, reason: str) -> dict[str, object]:
    return {"keeps": False, "first_break": t, "reason": reason}


def _check_name(rule: str) -> None:
    if rule not in RULES:
        raise ValueError(f"unknown topology rule {rule!r}; valid: {', '.join(RULES)}")
