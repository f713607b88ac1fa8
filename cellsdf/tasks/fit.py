"""``cellsdf fit``: codes and rotations of new sequences inferred with a trained model, decoded and scored."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
from omegaconf import DictConfig

from cellsdf.dataset.prepared import PreparedDataset, is_prepared, read_prepared
from cellsdf.errors import InputError
from cellsdf.io.atomic import atomic_path
from cellsdf.model.autodecoder import AutoDecoder
from cellsdf.model.fitting import fit_latent
from cellsdf.progress import track
from cellsdf.tasks.prepare import prepare_with
from cellsdf.tasks.reconstruct import (
    SequenceCode,
    check_out_folder,
    finish,
    load_model,
    output_options,
    select_device,
    write_and_score,
)


def fitting_data(cfg: DictConfig, model: AutoDecoder, ckpt: Path, out: Path) -> tuple[Path, PreparedDataset]:
    """Return the prepared dataset to fit, preparing masks into ``out/dataset.h5`` at the model's scale.

    Parameters
    ----------
    cfg : DictConfig
        The fit config (``input``, ``prepare``, ``seed``, ``progress``).
    model : AutoDecoder
        The trained model; its ``dataset.scale`` (normalised units per µm) fixes the units of the new data.
    ckpt : Path
        Its file, named in errors.
    out : Path
        Output folder.

    Returns
    -------
    tuple
        The prepared file and its contents.
    """
    scale = (model.hparams.get("dataset") or {}).get("scale")
    if scale is None:
        raise InputError(ckpt, "records no scale of its training data, so new data cannot share its units")
    source = Path(cfg.input)
    if is_prepared(source):
        data = read_prepared(source)
        if not math.isclose(data.scale, scale, rel_tol=1e-6):
            raise InputError(
                source,
                f"was prepared at {data.scale:.6g} normalised units per µm, the model's data at {scale:.6g}; "
                "pass the masks themselves (TIFF or folder) so that they are prepared at the model's scale",
            )
        return source, data
    # overwrite: the output folder was checked as a whole
    prepared = prepare_with(source, out / "dataset.h5", cfg.prepare, cfg.seed, True, cfg.progress, scale)
    return prepared, read_prepared(prepared)


def run(cfg: DictConfig) -> dict:
    """Fit as configured in ``conf/fit.yaml``; return the output folder, metrics and fitted codes."""
    if cfg.ckpt is None or cfg.input is None or cfg.out is None:
        raise InputError(
            "fit", "needs ckpt=<model file or plat|cele|filo>, input=<masks or .h5> and out=<folder>"
        )
    if cfg.iterations < 1 or cfg.points_per_step < 1:
        raise InputError("fit", "iterations and points_per_step must be >= 1")
    options = output_options(cfg)
    model, ckpt = load_model(cfg.ckpt, select_device(cfg.device))
    if not Path(cfg.input).exists():
        raise InputError(cfg.input, "not found")
    out = check_out_folder(cfg.out, cfg.overwrite)
    dataset, data = fitting_data(cfg, model, ckpt, out)
    code_reg = model.hparams.code_reg if cfg.code_reg is None else cfg.code_reg
    codes, losses = [], []
    for index, info in enumerate(track(data.sequences, "fitting", show=cfg.progress)):
        rows = np.flatnonzero(data.frame_sequence == index)
        latent, rotation, history = fit_latent(
            model.decoder,
            torch.from_numpy(data.points[rows]),
            torch.from_numpy(data.frame_t[rows]),
            torch.from_numpy(data.sdf[rows]),
            iterations=cfg.iterations,
            lr=cfg.lr,
            code_reg=code_reg,
            clamp=model.hparams.clamp,
            rotation=cfg.rotation,
            points_per_step=cfg.points_per_step,
            seed=int(np.random.SeedSequence([cfg.seed, index]).generate_state(1)[0]),
            latent_std=model.hparams.latent_std,
        )
        codes.append(SequenceCode(info.name, index, latent, rotation if cfg.rotation else None))
        losses.append(history)
    latents_file = _write_latents(out / "latents.npz", codes, losses)
    metrics, items = write_and_score(model.decoder, codes, dataset, out, options, data)
    for item, code, history in zip(items, codes, losses, strict=True):
        angle = 0.0 if code.rotation is None else math.degrees(float(code.rotation.norm()))
        item.update(final_loss=float(history[-1]), rotation_deg=angle)
    finish(out, "fit", cfg, items, metrics, ckpt, dataset, latents="latents.npz")
    return {"out": out, "metrics": metrics, "latents": latents_file}


def _write_latents(path: Path, codes: list[SequenceCode], losses: list[np.ndarray]) -> Path:
    """Save names, codes (S, L), rotation vectors (S, 3) and loss histories (S, iterations) atomically."""
    rotations = [torch.zeros(3) if c.rotation is None else c.rotation for c in codes]
    with atomic_path(path) as tmp:
        np.savez(
            tmp,
            names=np.array([c.name for c in codes]),
            latents=torch.stack([c.latent for c in codes]).numpy(),
            rotations=torch.stack(rotations).numpy(),
            losses=np.stack(losses),
        )
    return path
