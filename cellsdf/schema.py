"""The type and range of every command option, checked in one place before a command starts.

Hydra composes a command's config from YAML, where every value is what its text parses to: ``size=abc`` is a
string, ``seed=-1`` an integer, ``lr=nan`` a float. The rules here say what each option must be, so that a bad
value stops with one line naming the option before any work is done, instead of a traceback (or a wrong
result) somewhere inside. Options that Lightning or Hydra themselves check when they build an object (trainer
devices and strategy, callbacks, loggers, ``_target_``) are left to them; their refusals are translated to one
line by the command line as well.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from omegaconf import DictConfig, ListConfig, OmegaConf

from cellsdf.bench.threads import COMMANDS as THREAD_COMMANDS
from cellsdf.benchmark.ellipsoids import SHAPES
from cellsdf.dataset.options import PREPARE_RULES
from cellsdf.decode.options import MESH_FORMATS
from cellsdf.errors import InputError
from cellsdf.evaluate.metrics import select_metrics
from cellsdf.generate.options import Drawing, Request
from cellsdf.geometry.topology import RULES
from cellsdf.io.spacing import check_spacing
from cellsdf.lift.settings import EvalSettings
from cellsdf.model.builtin import BUILT_IN
from cellsdf.model.options import MODEL_RULES
from cellsdf.options import (
    FRACTION,
    NONNEG,
    POSITIVE,
    SEED_MAX,
    Anything,
    Checked,
    Duration,
    Flag,
    ListOf,
    OneOf,
    Real,
    Rule,
    Text,
    Whole,
    rules_of,
)
from cellsdf.reconstruct.scaling import SCALE_MODES
from cellsdf.segment.options import TrainingOptions
from cellsdf.simulate.lines import LINES
from cellsdf.texture.microscope import Microscope

_SPACING = Checked(check_spacing, "three voxel sizes in µm (z, y, x), each > 0, or null")
_GRID = Whole(4, 4096)
# Output grids have no fixed ceiling: the command checks the size against the memory available and says what
# it would need.
_OUTPUT_GRID = Whole(8)
_DEVICE = Text(null=False)


def _line(key: str, value: object) -> None:
    """Check a cell line's name against the registry as it is when the command runs (lines may be added)."""
    OneOf(tuple(LINES))(key, value)


_LINE = Checked(_line, "a registered cell line (plat, cele, filo or one added)")


COMMON: dict[str, Rule] = {
    "seed": Whole(0, SEED_MAX),
    "progress": Flag(),
    "progress_every": Real(1),
    "overwrite": Flag(),
    "verbose": Flag(),
    "threads": Whole(1, null=True),
}
PREPARE: dict[str, Rule] = PREPARE_RULES
MODEL: dict[str, Rule] = MODEL_RULES
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
# Both texture models' settings; a config holds the chosen one's.
TEXTURE: dict[str, Rule] = {
    "checkpoint": Text(),
    "batch": Whole(1),
    "device": _DEVICE,
    "background": NONNEG,
    "background_variation": FRACTION,
    "background_sigma": POSITIVE,
    "cell_intensity": NONNEG,
    "cell_intensity_cv": NONNEG,
    "texture_amplitude": FRACTION,
    "texture_sigma": POSITIVE,
    "rim_contrast": NONNEG,
    "rim_width": POSITIVE,
    "psf_sigma": NONNEG,
    "gain": POSITIVE,
    "read_noise": NONNEG,
}
# reconstruct and fit write meshes as generate does: the same two options, stated by generate's request.
MESHES: dict[str, Rule] = {key: rules_of(Request)[key] for key in ("formats", "mesh_format")}


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
        # A simulated line must be registered (training checks it); the user's own line may have any name.
        "cellline.name": Text(null=False),
        "cellline.topology": OneOf(("auto", "none", *RULES)),
        **_within("model.", MODEL),
        **_within("trainer.", TRAINER),
        **_within("data.", DATA),
        **_within("data.prepare.", PREPARE),
        "out": Text(null=False),
        "ckpt_path": Text(),
        "protrusions.reach": POSITIVE,
        "protrusions.gate": POSITIVE,
        "protrusions.blend": POSITIVE,
        "protrusions.noise.direction": NONNEG,
        "protrusions.noise.length": NONNEG,
        "protrusions.noise.time": NONNEG,
        "protrusions.noise.bend": NONNEG,
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
        "scale_prior": NONNEG,
        "iterations": Whole(1),
        "lr": POSITIVE,
        "code_reg": Real(0, null=True),
        "rotation": Flag(),
        "points_per_step": Whole(1),
        "resolution": _OUTPUT_GRID,
        "frames": Whole(1, null=True),
        **MESHES,
        "device": _DEVICE,
    },
    "generate": {
        # The mesh's file type is the top-level mesh_format here (shared with reconstruct and fit).
        **{key: rule for key, rule in rules_of(Request).items() if key != "mesh.format"},
        "out": Text(null=False),
        "shard": Whole(0),
        "num_shards": Whole(1),
        "device": _DEVICE,
        "workers": Whole(1, null=True),
    },
    "benchmark": {
        **_within("texture.", TEXTURE),
        "source": Text(),
        "out": Text(),
        "dims": Whole(2, 3),
        "field_depth": Whole(1, null=True),
        "learned": Text(),
        **rules_of(Microscope, "microscope."),
        "axis": Whole(0, 2),
        "shapes": OneOf(SHAPES),
        "cells_per_field": Whole(1),
        "field": Whole(8),
        "drift": NONNEG,
        "gap": Whole(0),
        "realism_seeds": Whole(0),
    },
    "texture-train": {
        **_within("baseline.", TEXTURE),
        "pairs": Text(),
        "dims": Whole(2, 3),
        "image": Text(),
        "labels": Text(),
        "heldout_frames": Whole(1),
        "out": Text(null=False),
        "holdout": Flag(),
        "crop": Whole(8),
        "batch": Whole(1),
        "steps": Whole(1),
        "checkpoint_every": Whole(1),
        "resume": Flag(),
        "lr": POSITIVE,
        "feature_matching": NONNEG,
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
    "segment": {
        **rules_of(TrainingOptions),
        "train": ListOf(Text(null=False), least=1, null=True, one=True),
        "test": Text(),
        "ckpt": Text(),
        "out": Text(),
        "min_size": Whole(1),
    },
    "segment-eval": {
        **rules_of(Microscope, "microscope."),
        # The runs' seeds are 0 .. seeds - 1; the top-level seed is the generated cells'.
        **{k: rule for k, rule in rules_of(TrainingOptions, "segment.").items() if k != "segment.seed"},
        "segment.min_size": Whole(1),
        "out": Text(null=False),
        "image": Text(),
        "labels": Text(),
        "heldout_frames": Whole(1),
        "few_frames": Whole(1),
        "ckpt": Text(null=False),
        "cells": Whole(1),
        "frames": Whole(1),
        "resolution": Whole(8, null=True),
        "rotation": OneOf(("uniform", "none"), null=True),
        "cells_per_field": Whole(1, null=True),
        "field": Whole(8, null=True),
        "texture": OneOf(("procedural", "gan")),
        "learned": Text(),
        "seeds": Whole(1),
        "resume": Flag(),
    },
    "realism": {
        **rules_of(Microscope, "microscope."),
        "image": Text(),
        "labels": Text(),
        "heldout": Whole(2),
        "learned": Text(),
        "seeds": Whole(1),
        "patches": Whole(8),
        "epochs": Whole(1),
        "out": Text(),
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
        "tau": POSITIVE,
        "lr": POSITIVE,
        "refine": Whole(0),
        "prior": NONNEG,
        "mesh_format": OneOf(MESH_FORMATS),
    },
    "lift-eval": {
        "out": Text(),
        "lines": ListOf(_LINE, least=1, one=True),
        # The model each built-in line is lifted with: a model file or a built-in name.
        **{f"models.{line}": Text(null=False) for line in ("plat", "cele", "filo")},
        "cells": Whole(1),
        **rules_of(EvalSettings),
        "known_pixel_size": Flag(),
        "workers": Whole(1),
    },
    "evaluate": {
        "real": ListOf(Text(null=False), null=True, one=True),
        "generated": ListOf(Text(null=False), null=True, one=True),
        "out": Text(),
        "metrics": Checked(lambda _key, value: select_metrics(value), "a list of metric names (see below)"),
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
        "resamples": Whole(10),
        **{key: rule for key, rule in rules_of(Drawing).items() if key != "rule"},
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
        "volume_frames": Whole(2),
        "lift_model": Text(null=False),
        "lift_hypotheses": Whole(1),
        "quick": Flag(),
        "threads_commands": ListOf(OneOf(THREAD_COMMANDS), one=True),
        "fit_iterations": Whole(1),
    },
}
# quick=true replaces bench's sizes by those under first_look, which keep the same rules.
_FIRST_LOOK = (
    "size",
    "simulate_frames",
    "prepare_frames",
    "evaluate_frames",
    "train_rounds",
    "compile_limit_s",
    "generate_frames",
    "generate_cells",
    "memory_frames",
    "benchmark_sequences",
    "benchmark_frames",
    "benchmark_distinct",
    "volume_frames",
    "lift_hypotheses",
    "threads_commands",
    "fit_iterations",
)
SCHEMAS["bench"].update({f"first_look.{key}": SCHEMAS["bench"][key] for key in _FIRST_LOOK})


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
    "benchmark": ("out", ("source", "learned")),
    "lift": ("out", ("mask", "ckpt")),
    "texture-train": ("out", ("pairs", "image", "labels")),
    "realism": ("out", ("image", "labels", "learned")),
    "segment": ("out", ("train", "test", "ckpt")),
    "segment-eval": ("out", ("image", "labels", "ckpt", "learned")),
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
