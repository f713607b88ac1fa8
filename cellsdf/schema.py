"""The type and range of every command option, checked in one place before a command starts.

Hydra composes a command's config from YAML, where every value is what its text parses to: ``size=abc`` is a
string, ``seed=-1`` an integer, ``lr=nan`` a float. The rules here say what each option must be, so that a bad
value stops with one line naming the option before any work is done, instead of a traceback (or a wrong
result) somewhere inside. Options that Lightning or Hydra themselves check when they build an object (trainer
devices and strategy, callbacks, loggers, ``_target_``) are left to them; their refusals are translated to one
line by the command line as well.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from omegaconf import DictConfig, ListConfig, OmegaConf

from cellsdf.dataset.labels import BORDERS, LINKS
from cellsdf.decode.volumes import FORMATS, MESH_FORMATS
from cellsdf.errors import InputError
from cellsdf.evaluate.metrics import select_metrics
from cellsdf.evaluate.topology import RULES
from cellsdf.generate.sampling import ROTATIONS, SAMPLERS
from cellsdf.io.spacing import check_spacing
from cellsdf.model.checkpoint import BUILT_IN
from cellsdf.reconstruct.fit import SCALE_MODES
from cellsdf.simulate.lines import LINES

Rule = Callable[[str, object], None]
# Seeds seed NumPy's legacy generators too, which take 32-bit unsigned integers.
_SEED_MAX = 2**32 - 1
# Lightning's max_time as text: days:hours:minutes:seconds.
_DURATION = re.compile(r"^\d+:\d{1,2}:\d{1,2}:\d{1,2}$")


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


@dataclass(frozen=True)
class Whole:
    """A whole number in ``[least, most]`` (booleans are not numbers here: ``n=true`` is a mistake)."""

    least: int = 0
    most: int | None = None
    null: bool = False

    def __call__(self, key: str, value: object) -> None:
        """Raise InputError naming ``key`` unless ``value`` keeps the rule."""
        if value is None and self.null:
            return
        within = self.most is None or (isinstance(value, int) and value <= self.most)
        if not isinstance(value, int) or isinstance(value, bool) or value < self.least or not within:
            span = f">= {self.least}" if self.most is None else f"in [{self.least}, {self.most}]"
            raise InputError(key, f"must be an integer {span}{_or_null(self.null)}, got {value!r}")


@dataclass(frozen=True)
class Real:
    """A finite number in ``[low, high]``; ``above`` makes the lower bound exclusive (a positive number)."""

    low: float = -math.inf
    high: float = math.inf
    above: bool = False
    null: bool = False

    def __call__(self, key: str, value: object) -> None:
        """Raise InputError naming ``key`` unless ``value`` keeps the rule."""
        if value is None and self.null:
            return
        if not _is_number(value) or not math.isfinite(value):  # type: ignore[arg-type]
            raise InputError(key, f"must be a finite number{_or_null(self.null)}, got {value!r}")
        low_ok = value > self.low if self.above else value >= self.low  # type: ignore[operator]
        if not low_ok or value > self.high:  # type: ignore[operator]
            raise InputError(key, f"must be a number {self._span()}{_or_null(self.null)}, got {value!r}")

    def _span(self) -> str:
        if self.high == math.inf:
            return "> 0" if self.above and self.low == 0 else f"{'>' if self.above else '>='} {self.low:g}"
        return f"in {'(' if self.above else '['}{self.low:g}, {self.high:g}]"


@dataclass(frozen=True)
class OneOf:
    """One of a few spellings (a choice of method, format or line)."""

    choices: tuple
    null: bool = False

    def __call__(self, key: str, value: object) -> None:
        """Raise InputError naming ``key`` unless ``value`` keeps the rule."""
        if (value is None and self.null) or (isinstance(value, str) and value in self.choices):
            return
        raise InputError(key, f"choose one of {', '.join(map(str, self.choices))}, got {value!r}")


@dataclass(frozen=True)
class Flag:
    """True or false: YAML's spellings only (``overwrite=no`` is text, which Python would count as true)."""

    def __call__(self, key: str, value: object) -> None:
        """Raise InputError naming ``key`` unless ``value`` keeps the rule."""
        if not isinstance(value, bool):
            raise InputError(key, f"must be true or false, got {value!r}")


@dataclass(frozen=True)
class Text:
    """A path or name given as text."""

    null: bool = True

    def __call__(self, key: str, value: object) -> None:
        """Raise InputError naming ``key`` unless ``value`` keeps the rule."""
        if (value is None and self.null) or (isinstance(value, str) and value.strip()):
            return
        raise InputError(key, f"must be a path or name{_or_null(self.null)}, got {value!r}")


@dataclass(frozen=True)
class Duration:
    """Lightning's ``max_time`` as ``DD:HH:MM:SS``."""

    def __call__(self, key: str, value: object) -> None:
        """Raise InputError naming ``key`` unless ``value`` keeps the rule."""
        if value is None or (isinstance(value, str) and _DURATION.match(value)):
            return
        raise InputError(key, f"must be a duration DD:HH:MM:SS (e.g. 00:01:00:00) or null, got {value!r}")


@dataclass(frozen=True)
class ListOf:
    """A list whose items keep ``item``; ``length`` fixes its length, ``one`` also takes a single item."""

    item: Rule
    length: int | None = None
    least: int = 0
    null: bool = False
    one: bool = False

    def __call__(self, key: str, value: object) -> None:
        """Raise InputError naming ``key`` unless ``value`` keeps the rule."""
        if value is None and self.null:
            return
        if self.one and not isinstance(value, (list, tuple, ListConfig)):
            self.item(key, value)
            return
        if not isinstance(value, (list, tuple, ListConfig)):
            raise InputError(key, f"must be a list, e.g. [a,b]{_or_null(self.null)}, got {value!r}")
        if (self.length is not None and len(value) != self.length) or len(value) < self.least:
            size = f"{self.length}" if self.length is not None else f"at least {self.least}"
            raise InputError(key, f"must be a list of {size} items, got {len(value)}")
        for i, item in enumerate(value):
            self.item(f"{key}[{i}]", item)


@dataclass(frozen=True)
class Checked:
    """A value whose check belongs to the library function that reads it; its message is that function's."""

    check: Callable[[str, object], object]

    def __call__(self, key: str, value: object) -> None:
        """Raise InputError naming ``key`` unless ``value`` keeps the rule."""
        self.check(key, OmegaConf.to_container(value) if isinstance(value, ListConfig) else value)


@dataclass(frozen=True)
class Anything:
    """A value that a library checks itself when it uses it (Lightning's ``devices``, lift's view list)."""

    def __call__(self, key: str, value: object) -> None:
        """Raise InputError naming ``key`` unless ``value`` keeps the rule."""
        return


def _precision(key: str, value: object) -> None:
    """Check a decode precision: ``auto``, ``bf16`` or ``32`` (which YAML reads as a number)."""
    if (
        isinstance(value, bool)
        or not isinstance(value, (str, int))
        or str(value) not in ("auto", "32", "bf16")
    ):
        raise InputError(key, f"choose one of auto, 32, bf16, got {value!r}")


def _between(key: str, value: object) -> None:
    """Check a range of weights: two numbers, 0 <= low <= high <= 1."""
    ListOf(Real(0, 1), length=2)(key, value)
    if value[0] > value[1]:
        raise InputError(key, f"must be [low, high] with low <= high, got {list(value)}")


def _or_null(null: bool) -> str:
    return " or null" if null else ""


_POSITIVE = Real(0, above=True)
_NONNEG = Real(0)
_FRACTION = Real(0, 1)
_SPACING = Checked(check_spacing)
_GRID = Whole(4, 4096)
# Output grids have no fixed ceiling: the command checks the size against the memory available and says what
# it would need.
_OUTPUT_GRID = Whole(8)
_DEVICE = Text(null=False)
_JOIN = Real(0, 10)  # voxels: how close to zero the field must stay for a fragment to be joined
_LINE = OneOf(tuple(LINES))

COMMON: dict[str, Rule] = {
    "seed": Whole(0, _SEED_MAX),
    "progress": Flag(),
    "overwrite": Flag(),
    "verbose": Flag(),
}
PREPARE: dict[str, Rule] = {
    "label": Whole(1, null=True),
    "link": OneOf(LINKS),
    "border": OneOf(BORDERS),
    "threshold": Real(null=True),
    "components": OneOf(("all", "largest")),
    "spacing": _SPACING,
    "centre": OneOf(("sequence", "frame")),
    "margin": Real(0, 0.9),
    "points_per_frame": Whole(1),
    "surface_fraction": _FRACTION,
    "surface_sigmas": ListOf(_POSITIVE, least=1),
    "thin_power": _NONNEG,
    "interior_fraction": _FRACTION,
    "exact_band": _POSITIVE,
    "eval_size": _GRID,
}
MODEL: dict[str, Rule] = {
    "decoder.latent_size": Whole(1),
    "decoder.widths": ListOf(Whole(1), least=1),
    "decoder.omega_first": _POSITIVE,
    "decoder.omega_hidden": _POSITIVE,
    "decoder.inject": ListOf(Whole(0)),
    "decoder.coords_every_layer": Flag(),
    "latent_std": _NONNEG,
    "lr.decoder": _POSITIVE,
    "lr.latent": _POSITIVE,
    "lr.rotation": _POSITIVE,
    "lr_step": Whole(1),
    "lr_gamma": Real(0, 1, above=True),
    "clamp": _POSITIVE,
    "code_reg": _NONNEG,
    "code_reg_warmup": Whole(0),
    "code_noise": _NONNEG,
    "rotations": Flag(),
    "rotation_epochs": Whole(0),
    "eikonal_weight": _NONNEG,
    "eikonal_fraction": Real(0, 1, above=True),
}
TRAINER: dict[str, Rule] = {
    "accelerator": Text(null=False),
    "devices": Anything(),
    "max_epochs": Whole(1),
    "max_time": Duration(),
    "precision": OneOf(
        ("auto", "32-true", "32", "bf16-mixed", "bf16-true", "16-mixed", "16-true", "64-true", "64")
    ),
    "gradient_clip_val": Real(0, null=True),
    "check_val_every_n_epoch": Whole(1),
    "log_every_n_steps": Whole(1),
    "num_sanity_val_steps": Whole(-1),
}
DATA: dict[str, Rule] = {
    "path": Text(),
    "simulate.sequences": Whole(1),
    "simulate.frames": Whole(1),
    "simulate.size": _GRID,
    "loader.batch_size": Whole(1),
    "loader.points_per_item": Whole(1),
    "loader.repeats": Whole(1),
    "loader.num_workers": Whole(0),
}
SAMPLER: dict[str, Rule] = {
    "name": OneOf(SAMPLERS),
    "std": Real(0, above=True, null=True),
    "scale": _POSITIVE,
    "noise": _NONNEG,
    "path": ListOf(Whole(0), length=2),
    "between": Checked(_between),
}
# Both texture models' settings; a config holds the chosen one's.
TEXTURE: dict[str, Rule] = {
    "checkpoint": Text(),
    "batch": Whole(1),
    "device": _DEVICE,
    "background": _NONNEG,
    "background_variation": _FRACTION,
    "background_sigma": _POSITIVE,
    "cell_intensity": _NONNEG,
    "cell_intensity_cv": _NONNEG,
    "texture_amplitude": _FRACTION,
    "texture_sigma": _POSITIVE,
    "rim_contrast": _NONNEG,
    "rim_width": _POSITIVE,
    "psf_sigma": _NONNEG,
    "gain": _POSITIVE,
    "read_noise": _NONNEG,
}
MESHES: dict[str, Rule] = {"formats": ListOf(OneOf(FORMATS), one=True), "mesh_format": OneOf(MESH_FORMATS)}


def _within(prefix: str, rules: Mapping[str, Rule]) -> dict[str, Rule]:
    return {f"{prefix}{key}": rule for key, rule in rules.items()}


SCHEMAS: dict[str, dict[str, Rule]] = {
    "demo": {
        **_within("celllines.", {f"{line}.name": OneOf((line,)) for line in ("plat", "cele", "filo")}),
        **_within("texture.", TEXTURE),
        "out": Text(null=False),
        "sequences": Whole(1),
        "frames": Whole(1),
        "size": Whole(16, 512),
        "points_per_frame": Whole(1),
        "eval_size": _GRID,
        "generate.n": Whole(1),
        "generate.timelapse_faces": Whole(4),
        "benchmark.cellline": _LINE,
        "benchmark.cells_per_field": Whole(1),
        "benchmark.field": Whole(8),
        "report.cellline": _LINE,
    },
    "simulate": {
        "cellline.name": _LINE,
        "sequences": Whole(1),
        "frames": Whole(1),
        "size": _OUTPUT_GRID,
        "spacing": _SPACING,
        "out": Text(null=False),
        "layout": OneOf(("files", "labels")),
    },
    "prepare": {**PREPARE, "input": Text(), "out": Text()},
    "train": {
        "cellline.name": _LINE,
        **_within("model.", MODEL),
        **_within("trainer.", TRAINER),
        **_within("data.", DATA),
        **_within("data.prepare.", PREPARE),
        "out": Text(null=False),
        "ckpt_path": Text(),
    },
    "reconstruct": {
        "ckpt": Text(),
        "out": Text(),
        "data.path": Text(),
        "data.remake_in": Text(),
        "sequences": ListOf(Text(null=False), null=True, one=True),
        "resolution": _OUTPUT_GRID,
        "frames": Whole(1, null=True),
        **MESHES,
        "device": _DEVICE,
    },
    "fit": {
        **_within("prepare.", PREPARE),
        "ckpt": Text(),
        "input": Text(),
        "out": Text(),
        "scale": OneOf(SCALE_MODES),
        "scale_prior": _NONNEG,
        "iterations": Whole(1),
        "lr": _POSITIVE,
        "code_reg": Real(0, null=True),
        "rotation": Flag(),
        "points_per_step": Whole(1),
        "resolution": _OUTPUT_GRID,
        "frames": Whole(1, null=True),
        **MESHES,
        "device": _DEVICE,
    },
    "generate": {
        "ckpt": Text(null=False),
        "out": Text(null=False),
        "n": Whole(1),
        "frames": Whole(1),
        "resolution": _OUTPUT_GRID,
        "frame_interval": Real(0, above=True, null=True),
        **_within("sampler.", SAMPLER),
        "rotation": OneOf(ROTATIONS),
        **MESHES,
        "mesh.smoothing": Whole(0),
        "mesh.tolerance": Real(0, 10, null=True),
        "mesh.faces": Whole(4, null=True),
        "mesh.timelapse_faces": Whole(4),
        "max_draws": Whole(1),
        "topology": OneOf(("auto", "none", *RULES)),
        "shard": Whole(0),
        "num_shards": Whole(1),
        "device": _DEVICE,
        "precision": Checked(_precision),
        "tracking": Flag(),
        "join": _JOIN,
        "workers": Whole(1, null=True),
        "threads": Whole(1, null=True),
    },
    "benchmark": {
        **_within("texture.", TEXTURE),
        "source": Text(),
        "out": Text(),
        "axis": Whole(0, 2),
        "cells_per_field": Whole(1),
        "field": Whole(8),
        "drift": _NONNEG,
        "gap": Whole(0),
        "realism_seeds": Whole(0),
    },
    "texture-train": {
        **_within("baseline.", TEXTURE),
        "pairs": Text(),
        "out": Text(null=False),
        "holdout": Flag(),
        "crop": Whole(8),
        "batch": Whole(1),
        "steps": Whole(1),
        "checkpoint_every": Whole(1),
        "resume": Flag(),
        "lr": _POSITIVE,
        "feature_matching": _NONNEG,
        "generator.ngf": Whole(1),
        "generator.n_downsample": Whole(1, 8),
        "generator.n_blocks": Whole(0),
        "generator.local_enhancer": Flag(),
        "generator.n_blocks_local": Whole(0),
        "discriminator.ndf": Whole(1),
        "discriminator.n_layers": Whole(1, 8),
        "discriminator.n_scales": Whole(1, 4),
        "accelerator": Text(null=False),
        "devices": Anything(),
    },
    "lift": {
        "mode": OneOf(("latent", "field")),
        "steps": Whole(1),
        "rays": Whole(1),
        "ckpt": Text(),
        "mask": Text(),
        "views": Anything(),  # a list of {mask, rotation}: lift checks each entry against its files
        "out": Text(),
        "hypotheses": Whole(1),
        "rotation_start": OneOf(("upright", "uniform")),
        "resolution": Whole(8, null=True),
        "novel_views": ListOf(ListOf(Real(), length=3)),
        "pixel_size": Real(0, above=True, null=True),
        "depth": Whole(2),
        "tau": _POSITIVE,
        "lr": _POSITIVE,
        "refine": Whole(0),
        "prior": _NONNEG,
        "mesh_format": OneOf(MESH_FORMATS),
    },
    "lift-eval": {
        "out": Text(),
        "lines": ListOf(_LINE, least=1, one=True),
        "cells": Whole(1),
        "size": Whole(16, 512),
        "frames": Whole(1),
        "frame": Whole(0),
        "views": ListOf(Whole(1, 8), least=1, one=True),
        "modes": ListOf(OneOf(("latent", "field")), least=1, one=True),
        "hypotheses": Whole(1),
        "latent_steps": Whole(1),
        "field_steps": Whole(1),
        "refine_steps": Whole(0),
        "known_pixel_size": Flag(),
        "rays": Whole(1),
        "workers": Whole(1),
    },
    "evaluate": {
        "real": ListOf(Text(null=False), null=True, one=True),
        "generated": ListOf(Text(null=False), null=True, one=True),
        "out": Text(null=False),
        "metrics": Checked(lambda _key, value: select_metrics(value)),
        "per_frame": Flag(),
        "points": Whole(1),
        "max_shapes": Whole(2),
        "montage": Whole(0),
        "spacing_real": _SPACING,
        "spacing_generated": _SPACING,
        "workers": Whole(1),
    },
    "fidelity": {
        "cellline.name": _LINE,
        "ckpt": Text(null=False),
        "out": Text(null=False),
        "reference": Text(),
        "reference_b": Text(),
        "training": Text(),
        "topology": OneOf(RULES, null=True),
        "n": Whole(2),
        "frames": Whole(1),
        "size": Whole(16, 1024, null=True),
        "resamples": Whole(1),
        **_within("sampler.", SAMPLER),
        "rotation": OneOf(ROTATIONS),
        "join": _JOIN,
        "max_draws": Whole(1),
        "device": _DEVICE,
    },
    "bench": {
        **_within("model.", MODEL),
        **_within("benchmark_texture.", TEXTURE),
        "size": Whole(16, 1024),
        "celllines": ListOf(_LINE, least=1, one=True),
        "simulate_frames": Whole(1),
        "prepare_cellline": _LINE,
        "prepare_frames": Whole(1),
        "points_per_frame": Whole(1),
        "out": Text(null=False),
        "evaluate_frames": Whole(1),
        "train_frames": Whole(1),
        "train_points": Whole(1),
        "train_warmup": Whole(0),
        "train_steps": Whole(1),
        "train_rounds": Whole(1),
        "compile_limit_s": Real(0, above=True, null=True),
        "decode_model": Text(null=False),
        "decode_sequence": Whole(0),
        "decode_t": Real(-1, 1),
        "decode_sizes": ListOf(Whole(4, 1024), least=1),
        "generate_frames": Whole(1),
        "generate_cells": Whole(1),
        "memory_frames": Whole(1),
        "benchmark_sequences": Whole(1),
        "benchmark_frames": Whole(1),
        "benchmark_distinct": Whole(1),
        "lift_model": Text(null=False),
        "lift_hypotheses": Whole(1),
    },
}


def check_options(command: str, cfg: DictConfig) -> None:
    """Check every option of a composed command config against its rule; raise at the first bad one.

    Parameters
    ----------
    command : str
        The command, as typed (``texture-train``).
    cfg : DictConfig
        Its composed config.

    Raises
    ------
    InputError
        Naming the option, what it must be and what it was.

    Examples
    --------
    >>> from omegaconf import OmegaConf
    >>> check_options("simulate", OmegaConf.create({"seed": 0, "size": "abc"}))
    Traceback (most recent call last):
    ...
    cellsdf.errors.InputError: size: must be an integer >= 8, got 'abc'
    """
    rules = {**COMMON, **SCHEMAS[command]}
    for key, rule in rules.items():
        # A key absent from this config belongs to another group choice (texture=procedural vs gan).
        if OmegaConf.select(cfg, key, default=_MISSING, throw_on_missing=False) is _MISSING:
            continue
        rule(key, OmegaConf.select(cfg, key))
    for key in rules:
        if key.endswith("interior_fraction"):
            _check_shares(cfg, key[: -len("interior_fraction")])


def _check_shares(cfg: DictConfig, prefix: str) -> None:
    """Check that the near-surface and interior shares of the samples add up to at most 1."""
    surface = OmegaConf.select(cfg, prefix + "surface_fraction", default=None)
    interior = OmegaConf.select(cfg, prefix + "interior_fraction", default=None)
    if surface is not None and interior is not None and surface + interior > 1.0:
        raise InputError(
            prefix + "interior_fraction",
            f"{prefix}surface_fraction + {prefix}interior_fraction must be at most 1, "
            f"got {surface} + {interior}",
        )


_MISSING = object()

# Where each command reads and writes: an output may not be one of its inputs, nor lie inside an input folder
# (overwrite=true would replace the input, or later runs would read the outputs as inputs).
PATHS: dict[str, tuple[str, tuple[str, ...]]] = {
    "prepare": ("out", ("input",)),
    "train": ("out", ("data.path",)),
    "fit": ("out", ("input", "ckpt")),
    "reconstruct": ("out", ("data.path", "ckpt")),
    "generate": ("out", ("ckpt",)),
    "evaluate": ("out", ("real", "generated")),
    "benchmark": ("out", ("source",)),
    "lift": ("out", ("mask", "ckpt")),
    "texture-train": ("out", ("pairs",)),
    "fidelity": ("out", ("reference", "reference_b", "training", "ckpt")),
}


def check_paths(command: str, cfg: DictConfig) -> None:
    """Refuse an output path that is one of the command's inputs or lies inside an input folder.

    Parameters
    ----------
    command : str
        The command, as typed.
    cfg : DictConfig
        Its composed config (options already checked by :func:`check_options`).

    Raises
    ------
    InputError
        Naming the output option and the input it would overwrite.
    """
    if command not in PATHS:
        return
    out_key, input_keys = PATHS[command]
    out = OmegaConf.select(cfg, out_key)
    if out is None:
        return
    target = Path(out).expanduser().resolve()
    for key in input_keys:
        value = OmegaConf.select(cfg, key, default=None)
        for given in value if isinstance(value, (list, ListConfig)) else [value]:
            # A built-in model's name (ckpt=plat) is not a path, whatever lies in the working folder.
            if not isinstance(given, str) or not given or (key == "ckpt" and given in BUILT_IN):
                continue
            source = Path(given).expanduser().resolve()
            if not source.exists():
                continue
            if target == source or (source.is_dir() and source in target.parents):
                where = "is" if target == source else "lies inside"
                raise InputError(out_key, f"{out} {where} the input {key}={given}; choose another output")
