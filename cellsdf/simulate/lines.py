"""The registry of cell lines: one :class:`CellLine` record per line, which everything else reads.

A line is its constants (voxel size, frame interval, the grid it is scored on), the topology rule its cells
keep (:mod:`cellsdf.geometry.topology`) and, for a line cellsdf can simulate, a :class:`Simulator`. Adding a
line is one module with ``draw_params`` and ``render_frame`` plus one :func:`register_line` call; a line of
a user's own data has no simulator.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np

from cellsdf.geometry.topology import RULES

REFERENCE_FRAMES = 30  # frames of the published data sets, the count a line's frame_interval is stated for


@runtime_checkable
class Simulator(Protocol):
    """What a simulated line provides (a module with these two functions keeps it).

    All randomness is drawn by ``draw_params`` before the first frame, so a sequence depends only on the
    generator's state; ``render_frame`` draws frame ``t`` of ``frames`` on a ``size``³ grid over [-1, 1]³.
    """

    def draw_params(self, rng: np.random.Generator, frames: int) -> dict:
        """Draw one sequence's parameters (JSON-serialisable)."""

    def render_frame(self, params: dict, t: int, frames: int, size: int) -> np.ndarray:
        """Return frame ``t`` as a bool (size, size, size) mask, axes (z, y, x)."""


@dataclass(frozen=True, kw_only=True)
class CellLine:
    """One cell line: what its files carry besides the shapes, the rule its cells keep, its simulator.

    Attributes
    ----------
    name : str
        The name commands take (``cellline=plat``, a model's recipe).
    spacing_at_256 : tuple of float
        Voxel size (z, y, x) in µm on a 256³ grid; other grids keep the same field of view.
    frame_interval : float
        Seconds between frames of a sequence of :data:`REFERENCE_FRAMES` frames (the published data sets'). A
        simulated sequence spans the same life course whatever its frame count, so its frames are
        :meth:`interval` apart.
    score_size : int
        Grid side on which ``cellsdf fidelity`` scores the line: the smallest at which its thinnest parts are
        at least 2 voxels across, so that a decoded cell's pieces are the model's and not the grid's.
    topology : str or None
        The rule every frame's components keep (``single``, ``divide_once``); None checks nothing.
    simulator : Simulator or None
        Draws and renders sequences; None for a line known only from data.
    """

    name: str
    spacing_at_256: tuple[float, float, float]
    frame_interval: float
    score_size: int = 64
    topology: str | None = None
    simulator: Simulator | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip():
            raise ValueError(f"a cell line needs a name, got {self.name!r}")
        if self.topology is not None and self.topology not in RULES:
            raise ValueError(f"{self.name}: topology must be None or one of {', '.join(RULES)}")
        if self.simulator is not None and not isinstance(self.simulator, Simulator):
            raise TypeError(f"{self.name}: the simulator needs draw_params and render_frame")
        if len(self.spacing_at_256) != 3 or not all(float(v) > 0 for v in self.spacing_at_256):
            raise ValueError(f"{self.name}: spacing_at_256 needs three positive numbers")
        if not float(self.frame_interval) > 0 or operator.index(self.score_size) < 8:
            raise ValueError(f"{self.name}: frame_interval must be > 0 and score_size >= 8")

    def interval(self, frames: int) -> float:
        """Return the seconds between the frames of a ``frames``-frame sequence of the whole life course.

        Examples
        --------
        >>> line = CellLine(name="x", spacing_at_256=(1, 1, 1), frame_interval=60.0)
        >>> line.interval(30), line.interval(10), line.interval(1)
        (60.0, 193.33333333333334, 1740.0)
        """
        span = self.frame_interval * (REFERENCE_FRAMES - 1)
        return span / (frames - 1) if frames > 1 else span


LINES: dict[str, CellLine] = {}


def register_line(line: CellLine) -> CellLine:
    """Add a line to the registry (a line of the same name is replaced); return it.

    Examples
    --------
    >>> toy = register_line(CellLine(name="doc-toy", spacing_at_256=(0.1, 0.1, 0.1), frame_interval=5.0))
    >>> get_line("doc-toy").frame_interval
    5.0
    >>> del LINES["doc-toy"]
    """
    LINES[line.name] = line
    return line


def get_line(name: str) -> CellLine:
    """Return a registered line; ValueError names the lines for an unknown one.

    Examples
    --------
    >>> get_line("cele").topology
    'divide_once'
    """
    if name not in LINES:
        raise ValueError(f"unknown cell line {name!r}; choose one of {', '.join(LINES)}")
    return LINES[name]


def simulated_lines() -> tuple[str, ...]:
    """Return the names of the registered lines that have a simulator.

    Examples
    --------
    >>> simulated_lines()[:3]
    ('plat', 'cele', 'filo')
    """
    return tuple(name for name, line in LINES.items() if line.simulator is not None)


def scaled_spacing(spacing_at_256: tuple[float, ...], size: int) -> tuple[float, float, float]:
    """Return a voxel size at grid ``size``, given the voxel size at 256³.

    Keeping the physical field of view fixed means a smaller grid is the same cell at a coarser resolution.

    Examples
    --------
    >>> scaled_spacing((0.1, 0.1, 0.1), 64)
    (0.4, 0.4, 0.4)
    """
    return tuple(float(s) * 256.0 / size for s in spacing_at_256)


def line_spacing(name: str, size: int) -> tuple[float, float, float]:
    """Return a registered line's voxel size (µm) at grid ``size``.

    Examples
    --------
    >>> line_spacing("plat", 128)
    (0.2, 0.2, 0.2)
    """
    return scaled_spacing(get_line(name).spacing_at_256, size)


def _register_built_in() -> None:
    # Imported here: the line modules are the simulators, this module is their registry.
    from cellsdf.simulate import cele, filo, plat

    register_line(
        CellLine(
            name="plat",
            spacing_at_256=(0.1, 0.1, 0.1),
            frame_interval=60.0,
            topology="single",
            simulator=plat,
        )
    )  # a 25.6 µm field
    register_line(
        CellLine(
            name="cele",
            spacing_at_256=(0.1, 0.1, 0.1),
            frame_interval=60.0,
            topology="divide_once",
            simulator=cele,
        )
    )
    # A 51 µm field; filopodia about 1 µm across are 1 voxel at 64³ (0.8 µm) and 2-3 at 128³ (0.4 µm).
    register_line(
        CellLine(
            name="filo",
            spacing_at_256=(0.2, 0.2, 0.2),
            frame_interval=30.0,
            score_size=128,
            topology="single",
            simulator=filo,
        )
    )


_register_built_in()
