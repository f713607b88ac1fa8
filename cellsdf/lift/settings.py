"""What one lift evaluation run does for each cell: ``cellsdf lift-eval``'s options, each stated once.

Light on purpose (no torch): the command line checks options against these before a model is loaded.
"""

from __future__ import annotations

from dataclasses import dataclass

from cellsdf.options import ListOf, OneOf, Whole, as_list, check_fields, option

MODES = ("latent", "field")


@dataclass(frozen=True, kw_only=True)
class EvalSettings:
    """What one evaluation run does for each cell (``cellsdf lift-eval``'s options, stated here once).

    Attributes
    ----------
    size : int
        Grid side of the truth, the masks and every result.
    frames, frame : int
        Frames of the simulated sequence and the one taken as truth.
    views : tuple of int
        View counts to score.
    hypotheses : int
        K of latent mode.
    latent_steps, field_steps : int
        Adam steps of each mode.
    refine_steps : int
        Steps that fine-tune the best hypothesis' decoder (:mod:`cellsdf.lift.refine`); 0 skips it.
    rays : int
        Rays per step over all views (split evenly among them, at least 32 each).
    modes : tuple of str
        ``latent`` and/or ``field`` (field mode is scored from 2 views on).
    """

    size: int = option(64, Whole(16, 512))
    frames: int = option(10, Whole(1))
    frame: int = option(5, Whole(0))
    views: tuple[int, ...] = option([1, 2, 4, 8], ListOf(Whole(1, 8), least=1, one=True))
    hypotheses: int = option(4, Whole(1))
    latent_steps: int = option(150, Whole(1))
    field_steps: int = option(300, Whole(1))
    refine_steps: int = option(300, Whole(0))
    rays: int = option(256, Whole(1))
    modes: tuple[str, ...] = option(["latent", "field"], ListOf(OneOf(MODES), least=1, one=True))

    def __post_init__(self) -> None:
        check_fields(self)
        object.__setattr__(self, "views", tuple(as_list(self.views)))
        object.__setattr__(self, "modes", tuple(as_list(self.modes)))
