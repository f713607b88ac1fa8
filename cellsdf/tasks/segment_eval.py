"""``cellsdf segment-eval``: train the segmenter on real, synthetic and ellipsoid data, score it on real data.

Every way of training runs with several seeds; the table gives mean ± sd and Otsu's floor.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import tifffile
from omegaconf import DictConfig, OmegaConf

from cellsdf.errors import InputError
from cellsdf.io.atomic import atomic_path
from cellsdf.io.folders import check_out_folder
from cellsdf.io.lock import writing_folder
from cellsdf.io.manifest import write_manifest
from cellsdf.io.tiff import read_header
from cellsdf.options import pick
from cellsdf.progress import track
from cellsdf.segment.experiment import (
    CONDITIONS,
    Recipe,
    median_object_size,
    read_real_pair,
    real_sets_2d,
    real_sets_3d,
    sized_resolution,
    summary,
    table_markdown,
    textured_set,
    write_preview,
)
from cellsdf.segment.run import result_path, segment_run
from cellsdf.segment.sets import annotated_frames
from cellsdf.segment.training import TrainingOptions
from cellsdf.texture.models import gan, procedural
from cellsdf.texture.pairs import read_pairs, shipped_pairs

PILOT = {"n": 6, "resolution": 48}
TEXTURES = {"gan": gan, "procedural": procedural}
# The ways of training whose predictions preview.png outlines (seed 0).
PICTURED = ("real", "synthetic", "ellipsoids")


def run(cfg: DictConfig) -> dict:
    """Run the experiment configured in ``conf/segment_eval.yaml``; return the output folder and table."""
    # One run at a time writes the output, and what killed runs left there goes first.
    with writing_folder(cfg.out):
        return _run(cfg)


def _run(cfg: DictConfig) -> dict:
    image, labels = _real_pair(cfg)
    # resume=true keeps what an earlier run of the same experiment finished: its data and its scored runs.
    out = check_out_folder(cfg.out, cfg.overwrite or cfg.resume)
    data = out / "data"
    recipe = Recipe([], out / "logs" / "commands.log")
    if image.ndim == 2:
        sets = real_sets_2d(image, labels, data)
        sets["textured"] = textured_set(
            [f.labels for f in annotated_frames(sets["real"])],
            TEXTURES[cfg.texture](),
            data / "textured",
            seed=cfg.seed,
        )
    else:
        spacing = tuple(cfg.microscope.spacing)
        sets = real_sets_3d(
            image, labels, data, heldout=cfg.heldout_frames, few=cfg.few_frames, spacing=spacing
        )
    dims = 2 if image.ndim == 2 else 3
    frames = {name: annotated_frames(folder) for name, folder in sets.items()}
    real_size = median_object_size([f.labels for f in frames["real"]])
    per_frame = int(np.median([np.unique(f.labels).size - 1 for f in frames["real"]]))
    field = cfg.field or _multiple_of_8(max(frames["real"][0].image.shape[-2:]))
    bench = [f"cells_per_field={cfg.cells_per_field or per_frame}", f"field={field}", f"seed={cfg.seed}"]
    bench += ["dims=3", f"microscope={cfg.microscope.name}"] if dims == 3 else [f"texture={cfg.texture}"]
    bench += [f"learned={cfg.learned}"] if dims == 3 and cfg.learned else []
    bench += ["realism_seeds=0"] if dims == 2 else []
    resolution = cfg.resolution
    if resolution is None and dims == 2:
        pilot = _synthetic(recipe, cfg, data / "pilot", PILOT["n"], PILOT["resolution"], bench, shapes=False)
        pilot_size = median_object_size([f.labels for f in annotated_frames(pilot["synthetic"])])
        resolution = sized_resolution(pilot_size, real_size, pilot_resolution=PILOT["resolution"], dims=dims)
    elif resolution is None:
        # A 3D model's cells have their size in µm whatever the grid; the grid only sets their detail, here
        # the microscope's finest voxel.
        pilot = data / "pilot" / "generated"
        recipe.run(
            "generate",
            f"ckpt={cfg.ckpt}",
            "n=1",
            "frames=1",
            f"resolution={PILOT['resolution']}",
            "formats=[tiff]",
            f"out={pilot}",
            done=cfg.resume and (pilot / "manifest.json").is_file(),
        )
        voxel = min(read_header(next(pilot.glob("*/mask.tif"))).spacing)
        resolution = round(voxel * (PILOT["resolution"] - 1) / min(cfg.microscope.spacing)) + 1
    sets.update(_synthetic(recipe, cfg, data, cfg.cells, resolution, bench, shapes=True))
    frames.update({name: annotated_frames(sets[name]) for name in sets.keys() - frames.keys()})
    synthetic_size = median_object_size([f.labels for f in frames["synthetic"]])
    conditions = {name: parts for name, parts in CONDITIONS.items() if set(parts) <= sets.keys()}
    runs: dict[str, list[dict]] = {name: [] for name in conditions}
    work = [(seed, name) for seed in range(cfg.seeds) for name in conditions]
    for seed, name in track(work, "training", show=cfg.progress):
        options = _options(cfg, seed)
        folder = _run_folder(out, name, seed)
        train = [str(sets[s]) for s in conditions[name]]
        recipe.lines.append(
            f"cellsdf segment train=[{','.join(train)}] test={sets['test']} seed={seed} out={folder} "
            + " ".join(f"{k}={v}" for k, v in OmegaConf.to_container(cfg.segment).items())
        )
        if cfg.resume and (folder / "scores.json").is_file():
            runs[name].append(json.loads((folder / "scores.json").read_text()))
            continue
        runs[name].append(
            segment_run(
                [frames[s] for s in conditions[name]],
                frames["test"],
                out=folder,
                options=options,
                min_size=cfg.segment.min_size,
                config={"train": train, "test": str(sets["test"]), **OmegaConf.to_container(cfg.segment)},
            )
        )
    table = summary(runs, runs["real"][0]["otsu"])
    table.update(
        dims=dims,
        test_frames=len(frames["test"]),
        test_cells=runs["real"][0]["scores"]["objects"],
        training_frames={name: len(f) for name, f in frames.items() if name != "test"},
        resolution=resolution,
        object_size={
            "real": real_size,
            "synthetic": synthetic_size,
            "unit": "pixels" if dims == 2 else "voxels",
        },
        seeds=cfg.seeds,
        segment=OmegaConf.to_container(cfg.segment),
    )
    test = frames["test"][0]
    predicted = {
        name: tifffile.imread(result_path(_run_folder(out, name, 0), test))
        for name in PICTURED
        if name in runs
    }
    examples = {name: frames[name][0].image for name in ("real", "synthetic", "ellipsoids")}
    write_preview(out / "preview.png", examples, test.image, test.labels, predicted)
    markdown = table_markdown(table)
    for name, text in (("table.json", json.dumps(table, indent=2) + "\n"), ("table.md", markdown)):
        with atomic_path(out / name) as tmp:
            tmp.write_text(text)
    with atomic_path(out / "recipe.sh") as tmp:
        tmp.write_text("#!/usr/bin/env bash\nset -euo pipefail\n" + "\n".join(recipe.lines) + "\n")
    items = [
        {"file": f} for f in ("table.json", "table.md", "recipe.sh", "preview.png", "data", "runs", "logs")
    ]
    write_manifest(out, "segment-eval", OmegaConf.to_container(cfg, resolve=True), cfg.seed, items, **table)
    print(markdown)
    print(f"table: {(out / 'table.md').resolve()}   runs: {(out / 'runs').resolve()}")
    print(f"picture: {(out / 'preview.png').resolve()}")
    return {"out": out, "table": table}


def _real_pair(cfg: DictConfig) -> tuple[np.ndarray, np.ndarray]:
    """Read the shipped nuclei pair, or the user's image and labels (2D, or a TZYX time-lapse)."""
    if (cfg.image is None) != (cfg.labels is None):
        raise InputError("segment-eval", "needs both image= and labels= (or neither: the shipped nuclei)")
    if cfg.image is None:
        (pair,) = read_pairs(shipped_pairs())
        return pair.image, pair.labels
    return read_real_pair(cfg.image, cfg.labels)


def _run_folder(out: Path, name: str, seed: int) -> Path:
    return out / "runs" / name.replace(" + ", "+").replace(", ", "_").replace(" ", "_") / f"seed{seed}"


def _multiple_of_8(side: int) -> int:
    return -(-side // 8) * 8


def _options(cfg: DictConfig, seed: int) -> TrainingOptions:
    return TrainingOptions(**pick(cfg.segment, TrainingOptions), seed=seed)


def _synthetic(
    recipe: Recipe,
    cfg: DictConfig,
    folder: Path,
    cells: int,
    resolution: int,
    bench: list[str],
    *,
    shapes: bool,
) -> dict[str, Path]:
    """Generate cells and build their benchmark (and its ellipsoid control): the synthetic training sets."""
    generated = folder / "generated"
    sets = {"synthetic": folder / "synthetic"}
    if shapes:
        sets["ellipsoids"] = folder / "ellipsoids"
    # An earlier run's finished steps are kept with resume=true: each step's last file marks it done.
    done = cfg.resume and all((s / "benchmark.json").is_file() for s in sets.values())
    recipe.run(
        "generate",
        f"ckpt={cfg.ckpt}",
        f"n={cells}",
        f"frames={cfg.frames}",
        f"resolution={resolution}",
        "formats=[tiff]",
        f"seed={cfg.seed}",
        *([f"rotation={cfg.rotation}"] if cfg.rotation is not None else []),
        f"out={generated}",
        done=done,
    )
    recipe.run("benchmark", f"source={generated}", *bench, f"out={sets['synthetic']}", done=done)
    if shapes:
        ellipsoids = [f"source={generated}", *bench, "shapes=ellipsoids", f"out={sets['ellipsoids']}"]
        recipe.run("benchmark", *ellipsoids, done=done)
    return sets
