"""The one draw-decode-check loop: draw a cell, make it, redraw while a frame check rejects it.

``cellsdf generate`` (files), the napari surfaces and ``cellsdf fidelity`` (scored masks) differ only in what
they make of a draw, which they pass as ``attempt``; the redrawing, the counting of rejections and the message
when no draw passes are here once.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from cellsdf.errors import InputError
from cellsdf.generate.cell import RejectedCell
from cellsdf.generate.sampling import Sampler, draw_cell


@dataclass(frozen=True)
class Draw:
    """One drawn cell: its code, rotation (or None) and the draw's description for the manifest."""

    latent: np.ndarray
    rotation: np.ndarray | None
    info: dict


@dataclass(frozen=True)
class Accepted:
    """The draw that passed (or the last, where the caller keeps it), what was made of it, the rejections."""

    value: Any
    draw: Draw
    rejected: list[RejectedCell] = field(default_factory=list)

    @property
    def reasons(self) -> dict[str, int]:
        """Rejections counted by problem (``touches the grid border``: 2, ...)."""
        counts: dict[str, int] = {}
        for err in self.rejected:
            counts[err.problem] = counts.get(err.problem, 0) + 1
        return counts


def draw_accepted(
    attempt: Callable[[Draw], Any],
    *,
    latents: np.ndarray,
    sampler: Sampler,
    rotation: str,
    rng: np.random.Generator,
    index: int,
    count: int,
    max_draws: int,
    name: str,
    keep_last: bool = False,
) -> Generator[Any, None, Accepted]:
    """Draw cell ``index`` until ``attempt`` makes it without a :class:`~cellsdf.generate.cell.RejectedCell`.

    A generator, so that a caller can show progress: an ``attempt`` that is itself a generator (one that
    yields frame by frame) has its items passed through; :func:`accepted` runs the loop to its end.

    Parameters
    ----------
    attempt : callable
        Makes something of a :class:`Draw` (decodes, checks, writes) and returns it, or raises RejectedCell.
    latents : np.ndarray
        (S, L) learned codes.
    sampler : Sampler
        A resolved sampler.
    rotation : {'uniform', 'none'}
        Rotation of each draw.
    rng : numpy.random.Generator
        The cell's source of randomness; redraws continue from it.
    index, count : int
        The cell's index and the number of cells.
    max_draws : int
        Draws at most (1 where a redraw cannot differ: an interpolation without rotation).
    name : str
        The cell, named in the error.
    keep_last : bool
        When no draw passes, return the last draw's ``value`` (RejectedCell's) instead of raising.

    Returns
    -------
    Accepted

    Raises
    ------
    InputError
        If no draw passes and ``keep_last`` is false.
    """
    draws = max_draws if sampler.random or rotation != "none" else 1
    rejected: list[RejectedCell] = []
    for _ in range(draws):
        draw = Draw(*draw_cell(latents, sampler, rotation, rng, index=index, count=count))
        try:
            value = attempt(draw)
            if isinstance(value, Generator):
                value = yield from value
        except RejectedCell as err:
            rejected.append(err)
            continue
        return Accepted(value, draw, rejected)
    if keep_last:
        return Accepted(rejected[-1].value, draw, rejected)
    raise InputError(
        "generate",
        f"{name}: no usable cell in {draws} draw(s) ({'; '.join(map(str, rejected[-3:]))}); "
        "try another sampler, a smaller sampler.std or noise",
    )


def accepted(loop: Generator[Any, None, Accepted]) -> Accepted:
    """Run a :func:`draw_accepted` loop to its end and return what it accepted."""
    while True:
        try:
            next(loop)
        except StopIteration as done:
            return done.value
