"""``cellsdf fit``: codes and rotations of new sequences inferred with a trained model, decoded and scored."""

from __future__ import annotations

import math
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from cellsdf.errors import InputError
from cellsdf.io.folders import check_out_folder
from cellsdf.model.trained import load_trained, select_device
from cellsdf.options import as_list
from cellsdf.reconstruct.fit import fit_sequences, fitting_data, write_latents
from cellsdf.reconstruct.outputs import output_options
from cellsdf.reconstruct.score import summary, write_and_score, write_run_manifest


def run(cfg: DictConfig) -> dict:
    """Fit as configured in ``conf/fit.yaml``; return the output folder, metrics and fitted codes."""
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
    model = load_trained(cfg.ckpt, device=select_device(cfg.device))
    if not Path(cfg.input).exists():
        raise InputError(cfg.input, "not found")
    out = check_out_folder(cfg.out, cfg.overwrite)
    prepare = OmegaConf.to_container(cfg.prepare, resolve=True)
    dataset, data = fitting_data(model, cfg.input, out, prepare=prepare, seed=cfg.seed, progress=cfg.progress)
    codes, losses = fit_sequences(
        model,
        data,
        iterations=cfg.iterations,
        lr=cfg.lr,
        code_reg=cfg.code_reg,
        rotation=cfg.rotation,
        points_per_step=cfg.points_per_step,
        seed=cfg.seed,
        progress=cfg.progress,
    )
    latents_file = write_latents(out / "latents.npz", codes, losses)
    metrics, items = write_and_score(model, codes, dataset, out, options, data=data)
    for item, code, history in zip(items, codes, losses, strict=True):
        angle = 0.0 if code.rotation is None else math.degrees(float(code.rotation.norm()))
        item.update(final_loss=float(history[-1]), rotation_deg=angle)
    config = OmegaConf.to_container(cfg, resolve=True)
    write_run_manifest(out, "fit", config, cfg.seed, items, model.file, dataset, latents="latents.npz")
    print(summary(metrics, out))
    return {"out": out, "metrics": metrics, "latents": latents_file}
