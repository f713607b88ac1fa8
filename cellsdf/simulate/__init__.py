"""Procedural 3D+t cell shapes modelled on the three cell lines of Wiesner et al. (2024).

``plat`` (Platynereis embryo cells) is one smoothly deforming, growing blob; ``cele``
(C. elegans embryo cells) grows, elongates and divides into two daughters; ``filo`` (A549 cells)
is a flattened body with thin filopodia that grow out, bend and branch.

Shapes are defined in normalised coordinates (each grid axis spans [-1, 1]), so one random draw
describes the same cell at every grid size; only sizes explicitly given in voxels (the minimum
filopodium radius, the neck and gap around a division) follow the grid. All randomness is drawn
before the first frame is rendered, so a sequence depends only on the generator's state.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

from cellsdf.simulate.lines import LINES, get_line, simulated_lines

_MIN_SIZE = 16


@dataclass(frozen=True)
class SimulatedSequence:
    """A simulated time-lapse of one cell.

    Attributes
    ----------
    masks : np.ndarray
        Boolean array of shape (T, S, S, S), axes (t, z, y, x).
    division_frame : int or None
        First frame showing two daughters (``cele`` only), otherwise None.
    params : dict
        The drawn parameters, JSON-serialisable, for a manifest.
    """

    masks: np.ndarray
    division_frame: int | None
    params: dict


def sequence_rng(seed: int, index: int) -> np.random.Generator:
    """Return sequence ``index``'s generator; independent of the others, so any subset can be made alone.

    Parameters
    ----------
    seed : int
        The run's seed.
    index : int
        The sequence's index in the run.

    Returns
    -------
    np.random.Generator
        Seeded with ``SeedSequence([seed, index])``.
    """
    return np.random.default_rng(np.random.SeedSequence([seed, index]))


def _validate(name: str, frames: int, size: int) -> tuple[int, int]:
    """Check the arguments and return ``frames`` and ``size`` as plain ints."""
    if get_line(name).simulator is None:
        raise ValueError(
            f"cell line {name!r} has no simulator; simulated lines are {', '.join(simulated_lines())}"
        )
    frames, size = operator.index(frames), operator.index(size)
    if frames < 1:
        raise ValueError(f"frames must be at least 1, got {frames}")
    if size < _MIN_SIZE:
        raise ValueError(f"size must be at least {_MIN_SIZE}, got {size}")
    return frames, size


def _frames(
    render: Callable[[dict, int, int, int], np.ndarray], params: dict, frames: int, size: int
) -> Iterator[np.ndarray]:
    """Render the frames one at a time."""
    for t in range(frames):
        yield render(params, t, frames, size)


def simulate_frames(
    cell_line: str, frames: int, size: int, rng: np.random.Generator
) -> tuple[Iterator[np.ndarray], int | None, dict]:
    """Draw a sequence and return a lazy iterator over its frames.

    Memory stays at one frame however long the sequence is. All random draws happen in this call,
    so the frames do not depend on when, or whether, the iterator is consumed.

    Parameters
    ----------
    cell_line : str
        A registered line with a simulator (:func:`~cellsdf.simulate.lines.simulated_lines`).
    frames : int
        Number of time points T (at least 1).
    size : int
        Grid size S per axis (at least 16).
    rng : np.random.Generator
        Source of all randomness.

    Returns
    -------
    frames : Iterator[np.ndarray]
        Yields T boolean arrays of shape (S, S, S), axes (z, y, x).
    division_frame : int or None
        First frame with two daughters for ``cele`` (None when ``frames == 1``), None otherwise.
    params : dict
        The drawn parameters plus ``cell_line`` and ``size``; JSON-serialisable.

    Raises
    ------
    ValueError
        For an unknown cell line, ``frames < 1`` or ``size < 16``.
    """
    frames, size = _validate(cell_line, frames, size)
    simulator = LINES[cell_line].simulator
    params = {"cell_line": cell_line, "size": size, **simulator.draw_params(rng, frames)}
    return _frames(simulator.render_frame, params, frames, size), params.get("division_frame"), params


def simulate_sequence(cell_line: str, frames: int, size: int, rng: np.random.Generator) -> SimulatedSequence:
    """Draw a sequence and render all of its frames.

    Parameters
    ----------
    cell_line : str
        A registered line with a simulator (:func:`~cellsdf.simulate.lines.simulated_lines`).
    frames : int
        Number of time points T (at least 1).
    size : int
        Grid size S per axis (at least 16).
    rng : np.random.Generator
        Source of all randomness.

    Returns
    -------
    SimulatedSequence
        Masks of shape (T, S, S, S), the division frame and the drawn parameters.

    Raises
    ------
    ValueError
        For an unknown cell line, ``frames < 1`` or ``size < 16``.
    """
    iterator, division_frame, params = simulate_frames(cell_line, frames, size, rng)
    masks = np.empty((params["frames"], size, size, size), dtype=bool)
    for t, frame in enumerate(iterator):
        masks[t] = frame
    return SimulatedSequence(masks=masks, division_frame=division_frame, params=params)
