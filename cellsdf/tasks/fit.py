"""``cellsdf fit``: codes, rotations, scales and positions of new sequences inferred with a trained model."""

from __future__ import annotations

import time
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from cellsdf.errors import InputError
from cellsdf.io.folders import check_out_folder
from cellsdf.io.lock import writing_folder
from cellsdf.model.trained import load_trained, select_device
from cellsdf.options import as_list
from cellsdf.reconstruct.fit import (
    fit_items,
    fit_sequences,
    fit_summary,
    fitting_data,
    starting_placements,
    write_latents,
)
from cellsdf.reconstruct.outputs import output_options
from cellsdf.reconstruct.scaling import check_scale_options
from cellsdf.reconstruct.score import summary, write_and_score, write_run_manifest


def run(cfg: DictConfig) -> dict:
    """Fit as configured in ``conf/fit.yaml``; return the output folder, metrics and fitted codes."""
    # One run at a time writes the output, and what killed runs left there goes first.
    with writing_folder(cfg.out):
        return _run(cfg)


def _run(cfg: DictConfig) -> dict:
    if cfg.ckpt is None or cfg.input is None or cfg.out is None:
        raise InputError(
            "fit", "needs ckpt=<model file or plat|cele|filo>, input=<masks or .h5> and out=<folder>"
        )
    options = output_options(
        resolution=cfg.resolution,
        frames=cfg.frames,
        formats=[str(f) for f in as_list(cfg.formats)],
        mesh_format=cfg.mesh_format,
        progress=cfg.progress,
    )
    scale_prior = check_scale_options(cfg.scale, cfg.scale_prior)
    model = load_trained(cfg.ckpt, device=select_device(cfg.device))
    if not Path(cfg.input).exists():
        raise InputError(cfg.input, "not found")
    out = check_out_folder(cfg.out, cfg.overwrite)
    prepare = OmegaConf.to_container(cfg.prepare, resolve=True)
    own_units = cfg.scale == "fit"
    dataset, data = fitting_data(
        model, cfg.input, out, prepare=prepare, seed=cfg.seed, own_units=own_units, progress=cfg.progress
    )
    start = time.perf_counter()
    codes, fitted = fit_sequences(
        model,
        data,
        iterations=cfg.iterations,
        lr=cfg.lr,
        code_reg=cfg.code_reg,
        rotation=cfg.rotation,
        points_per_step=cfg.points_per_step,
        seed=cfg.seed,
        placement=starting_placements(model, dataset, data) if own_units else None,
        scale_prior=scale_prior,
        progress=cfg.progress,
    )
    seconds = time.perf_counter() - start
    latents_file = write_latents(out / "latents.npz", [c.name for c in codes], fitted)
    metrics, items = write_and_score(model, codes, dataset, out, options, data=data)
    fitted_items = fit_items(model, data, fitted)
    for item, extra in zip(items, fitted_items, strict=True):
        item.update(extra)
    config = OmegaConf.to_container(cfg, resolve=True)
    write_run_manifest(out, "fit", config, cfg.seed, items, model.file, dataset, latents="latents.npz")
    print(fit_summary(fitted_items, seconds))
    print(summary(metrics, out))
    return {"out": out, "metrics": metrics, "latents": latents_file}
