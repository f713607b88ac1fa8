"""The rules of preparing and of a simulated training set's recipe, for options and model files alike.

A model trained on simulated cells stores the recipe of its data, and ``reconstruct`` makes the data again
from it: a value read from a model file must pass the rule the same option passes on the command line.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from cellsdf.dataset.labels import BORDERS, LINKS
from cellsdf.errors import InputError
from cellsdf.io.axes import check_axes
from cellsdf.io.limits import check_allocation, check_grid
from cellsdf.io.spacing import check_spacing
from cellsdf.options import (
    FRACTION,
    NONNEG,
    POSITIVE,
    SEED_MAX,
    Checked,
    ListOf,
    OneOf,
    Real,
    Rule,
    Text,
    Whole,
)

_GRID = Whole(4, 4096)
# Peak bytes per sampled point and per evaluation voxel while one frame is prepared (tracemalloc, 200 k-1 M
# points and 64³-128³ grids: 199 and 140), with room for the SDF crop beside them.
_BYTES_PER_POINT = 256
_EVAL_BYTES_PER_VOXEL = 160
_SPACING = Checked(check_spacing, "three voxel sizes in µm (z, y, x), each > 0, or null")


PREPARE_RULES: dict[str, Rule] = {
    "label": Whole(1, null=True),
    "link": OneOf(LINKS),
    "border": OneOf(BORDERS),
    "threshold": Real(null=True),
    "components": OneOf(("all", "largest")),
    "spacing": _SPACING,
    "axes": Checked(check_axes, "an axis order naming T, Z, Y, X (or Z, Y, X) once each, or null"),
    "centre": OneOf(("sequence", "frame")),
    "margin": Real(0, 0.9),
    "points_per_frame": Whole(1),
    "surface_fraction": FRACTION,
    "surface_sigmas": ListOf(POSITIVE, least=1),
    "thin_power": NONNEG,
    "interior_fraction": FRACTION,
    "exact_band": POSITIVE,
    "eval_size": _GRID,
    "body_radius": Real(0, above=True, null=True),
}


SIMULATE_RULES: dict[str, Rule] = {
    "sequences": Whole(1),
    "frames": Whole(1),
    "size": _GRID,
    "spacing": _SPACING,
    "frame_interval": Real(0, above=True),
}


def check_prepare_sizes(points_per_frame: int, eval_size: int, *, prefix: str = "") -> None:
    """Refuse point counts and evaluation grids whose arrays would not fit in memory, before any reading.

    Examples
    --------
    >>> check_prepare_sizes(16384, 64)
    """
    check_grid(f"{prefix}eval_size", eval_size, _EVAL_BYTES_PER_VOXEL)
    nbytes = points_per_frame * _BYTES_PER_POINT
    check_allocation(f"{prefix}points_per_frame", nbytes, what=f"{points_per_frame} points per frame")


def check_recipe(recipe: object, source: str | Path) -> None:
    """Check a simulated training set's recipe read from a file, naming the file and the field.

    Parameters
    ----------
    recipe : object
        The ``recipe`` of a model's ``dataset`` record (``cell_line``, ``seed``, ``simulate``, ``prepare``).
    source : str or Path
        The file it was read from.

    Raises
    ------
    InputError
        ``<file>: dataset.recipe.<field>: <rule>`` for the first value that breaks its rule.

    Examples
    --------
    >>> check_recipe({"cell_line": "plat", "seed": 0, "simulate": {"frames": 0}, "prepare": {}}, "m.pt")
    Traceback (most recent call last):
    ...
    cellsdf.errors.InputError: m.pt: dataset.recipe.simulate.frames: must be an integer >= 1, got 0
    """
    if not isinstance(recipe, Mapping):
        raise InputError(source, f"dataset.recipe: must be a mapping, got {type(recipe).__name__}")
    checks = [
        ("cell_line", Text(null=False), recipe.get("cell_line")),
        ("seed", Whole(0, SEED_MAX), recipe.get("seed")),
    ]
    for part, rules in (("simulate", SIMULATE_RULES), ("prepare", PREPARE_RULES)):
        values = recipe.get(part)
        if not isinstance(values, Mapping):
            raise InputError(source, f"dataset.recipe.{part}: must be a mapping, got {type(values).__name__}")
        unknown = sorted(set(values) - set(rules))
        if unknown:
            raise InputError(
                source, f"dataset.recipe.{part}: unknown field(s) {', '.join(map(str, unknown))}"
            )
        checks += [(f"{part}.{key}", rules[key], value) for key, value in values.items()]
    prepare = recipe["prepare"]
    try:
        for key, rule, value in checks:
            rule(f"dataset.recipe.{key}", value)
        check_prepare_sizes(
            prepare.get("points_per_frame", 1), prepare.get("eval_size", 4), prefix="dataset.recipe.prepare."
        )
    except InputError as err:
        raise InputError(source, str(err)) from None
