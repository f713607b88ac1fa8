"""``cellsdf lift``: 3D cell shapes behind one 2D mask (ranked hypotheses), or a cell from a few views.

``mode=latent`` fits K hypotheses of a trained model's shape space (:mod:`cellsdf.lift.latent`);
``mode=field`` fits one free SIREN field to the views without a learned prior (:mod:`cellsdf.lift.field`).
Either result is continuous: it is decoded at ``resolution`` (any size) and seen through any ``novel_views``.
"""

from __future__ import annotations

import json

import numpy as np
import tifffile
import torch
from omegaconf import DictConfig, ListConfig, OmegaConf

from cellsdf.decode.options import MESH_FORMATS, MeshOptions, bytes_per_voxel
from cellsdf.decode.volumes import write_volumes
from cellsdf.errors import InputError, check_whole
from cellsdf.io.atomic import atomic_path
from cellsdf.io.folders import check_out_folder
from cellsdf.io.hashing import file_sha256
from cellsdf.io.limits import check_grid
from cellsdf.io.lock import writing_folder
from cellsdf.io.manifest import write_manifest
from cellsdf.lift.field import FieldOptions, fit_field
from cellsdf.lift.figure import write_lift_picture
from cellsdf.lift.latent import FitOptions, depth_observable, fit_hypotheses, model_scale
from cellsdf.lift.refine import RefineOptions, refine_hypothesis
from cellsdf.lift.render import HULL_BYTES_PER_VOXEL
from cellsdf.lift.views import parse_degrees, parse_views, rotation_from_degrees
from cellsdf.model.trained import load_trained

ROTATION_STARTS = ("upright", "uniform")


def _novel_views(spec: object) -> list[tuple[float, float, float]]:
    """Check ``novel_views``: a list of [z, y, x] rotation vectors in degrees."""
    entries = list(spec) if isinstance(spec, (list, ListConfig)) else None
    if entries is None:
        raise InputError("novel_views", f"must be a list of [z, y, x] rotations in degrees, got {spec!r}")
    return [parse_degrees(entry, "novel_views", "each entry") for entry in entries]


def run(cfg: DictConfig) -> dict:
    """Lift as configured in ``conf/lift.yaml``; return the output folder and the ranked results."""
    # One run at a time writes the output, and what killed runs left there goes first.
    with writing_folder(cfg.out):
        return _run(cfg)


def _run(cfg: DictConfig) -> dict:
    if cfg.out is None:
        raise InputError(
            "lift", "needs out=<folder> and mask=<2D TIFF> or views=[{mask: ..., rotation: ...}]"
        )
    if cfg.rotation_start not in ROTATION_STARTS:
        raise InputError(
            "rotation_start", f"choose one of {', '.join(ROTATION_STARTS)}, got {cfg.rotation_start!r}"
        )
    hypotheses = check_whole(cfg.hypotheses, "hypotheses", least=1)
    latent = cfg.mode == "latent"
    steps = check_whole(cfg.steps, "steps", least=1)
    rays = check_whole(cfg.rays, "rays", least=4)
    depth = check_whole(cfg.depth, "depth", least=2)
    if not (isinstance(cfg.tau, (int, float)) and cfg.tau > 0):
        raise InputError("tau", f"must be a number > 0 (pixels), got {cfg.tau!r}")
    resolution = None if cfg.resolution is None else check_whole(cfg.resolution, "resolution", least=8)
    if cfg.mesh_format not in MESH_FORMATS:
        raise InputError("mesh_format", f"choose one of {', '.join(MESH_FORMATS)}, got {cfg.mesh_format!r}")
    if cfg.pixel_size is not None and not (isinstance(cfg.pixel_size, (int, float)) and cfg.pixel_size > 0):
        raise InputError("pixel_size", f"must be a number > 0 (µm) or null, got {cfg.pixel_size!r}")
    refine = check_whole(cfg.refine, "refine", least=0)
    novel = _novel_views(cfg.novel_views)
    views_spec = None if cfg.views is None else OmegaConf.to_container(cfg.views, resolve=True)
    if views_spec is not None and not isinstance(views_spec, list):
        raise InputError("views", "must be a list of {mask: <2D TIFF>, rotation: [z, y, x]} entries")
    views = parse_views(cfg.mask, views_spec)
    if cfg.mode == "field" and len(views) < 2:
        raise InputError(
            "mode", "field mode has no prior, so one view says nothing about depth; give views= with 2+"
        )
    if refine and not (latent and depth_observable(views)):
        raise InputError(
            "refine",
            "needs mode=latent and views along two or more directions: from one, nothing says where in "
            "depth what it adds lies",
        )
    size = views[0].mask.shape[0]
    resolution = resolution or size
    check_grid("resolution", resolution, HULL_BYTES_PER_VOXEL + bytes_per_voxel(["tiff", "mesh"]))
    model = ckpt = None
    if latent:
        if cfg.ckpt is None:
            raise InputError("ckpt", "mode=latent needs ckpt=<model.pt | plat | cele | filo>")
        model = load_trained(str(cfg.ckpt))
        ckpt = model.file
    out = check_out_folder(cfg.out, cfg.overwrite)
    spacing = (float(cfg.pixel_size or 1.0) * (size - 1) / (resolution - 1),) * 3
    mesh = MeshOptions(format=cfg.mesh_format)
    turns = [rotation_from_degrees(d) for d in novel]
    if model is not None:
        clamp = model.clamp
        scale = None if cfg.pixel_size is None else model_scale(model, float(cfg.pixel_size), size)
        options = FitOptions(
            steps=steps,
            rays=rays,
            depth=depth,
            tau=float(cfg.tau),
            lr=float(cfg.lr),
            prior=float(cfg.prior),
            scale=scale,
        )
        results = fit_hypotheses(
            model,
            views,
            upright=cfg.rotation_start == "upright",
            hypotheses=hypotheses,
            options=options,
            seed=cfg.seed,
            progress=cfg.progress,
        )
        if refine:
            polish = RefineOptions(steps=refine, tau=float(cfg.tau), clamp=clamp)
            refined = [
                refine_hypothesis(
                    model.decoder, h, views, options=polish, seed=cfg.seed, progress=cfg.progress
                )
                for h in results
            ]
            results = sorted(refined, key=lambda h: h.loss)
        decode = [lambda view, r, h=h: h.decode(model.decoder, view, r, clamp) for h in results]
        records = [h.record() for h in results]
    else:
        results = [
            fit_field(
                views,
                options=FieldOptions(steps=steps, rays=rays, depth=depth, tau=float(cfg.tau)),
                seed=cfg.seed,
                progress=cfg.progress,
            )
        ]
        decode = [lambda view, r, f=f: f.decode(view, r) for f in results]
        records = [f.record() for f in results]
    items, sides = [], []
    for rank, (result, record) in enumerate(zip(results, records, strict=True), start=1):
        folder = out / f"hypothesis_{rank}"
        volume = decode[rank - 1](np.eye(3), resolution)
        frames = write_volumes(
            [volume], folder, 1, resolution, spacing, 1.0, formats=("tiff", "mesh"), mesh=mesh
        )
        sides.append(volume.any(axis=1))
        if cfg.mode == "field":
            with atomic_path(folder / "field.pt") as tmp:
                torch.save(result.checkpoint(), tmp)
        elif result.decoder is not None:
            with atomic_path(folder / "decoder.pt") as tmp:
                torch.save(result.decoder.state_dict(), tmp)
        if turns:
            rendered = np.stack([decode[rank - 1](turn, resolution).any(axis=0) for turn in turns])
            with atomic_path(folder / "novel_views.tif") as tmp:
                tifffile.imwrite(tmp, np.where(rendered, np.uint8(255), np.uint8(0)), compression="zlib")
        record.update(rank=rank, folder=folder.name, voxels=frames[0]["voxels"], mesh=frames[0]["mesh"])
        items.append(record)
    titles = [f"#{r['rank']}  Dice {np.mean(r['dice']):.3f}" for r in items]
    write_lift_picture(
        out / "lift.png",
        [v.mask for v in views],
        [r.silhouettes for r in results],
        titles,
        depth_slices=sides,
    )
    summary = {
        "mode": cfg.mode,
        "views": [{"mask": v.source, "rotation_degrees": list(v.degrees)} for v in views],
        "convention": "view rotation vectors are (z, y, x) in degrees; a view shows the object rotated by "
        "its rotation, looking along z",
        "resolution": resolution,
        "spacing_um": list(spacing),
        "novel_views_degrees": [list(d) for d in novel],
        "hypotheses": items,
    }
    with atomic_path(out / "lift.json") as tmp:
        tmp.write_text(json.dumps(summary, indent=2) + "\n")
    extra = {} if ckpt is None else {"checkpoint": str(ckpt), "checkpoint_sha256": file_sha256(ckpt)}
    write_manifest(out, "lift", OmegaConf.to_container(cfg, resolve=True), cfg.seed, items, **extra)
    best = items[0]
    print(
        f"lifted {len(views)} view(s) to {len(items)} {cfg.mode} result(s); best Dice per view "
        + ", ".join(f"{d:.3f}" for d in best["dice"])
    )
    folders = "hypothesis_1" + (f" .. hypothesis_{len(items)}" if len(items) > 1 else "")
    print(f"wrote {out.resolve()}: {folders}, lift.json, lift.png, manifest.json")
    return {"out": out, "results": results, "items": items, "views": views}
