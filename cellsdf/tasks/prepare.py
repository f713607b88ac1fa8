"""``cellsdf prepare``: masks (TIFF, CTC, reference HDF5) to a prepared training dataset."""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig

from cellsdf.dataset.prepare import prepare_dataset
from cellsdf.dataset.sources import find_sequences
from cellsdf.errors import InputError


def run(cfg: DictConfig) -> dict:
    """Prepare the input named in ``conf/prepare.yaml``; return the output path and sequence count."""
    if cfg.input is None or cfg.out is None:
        raise InputError("prepare", "needs input=<TIFF, folder or .h5> and out=<dataset.h5>")
    loaders = find_sequences(
        cfg.input,
        label=cfg.label,
        threshold=cfg.threshold,
        components=cfg.components,
        spacing=None if cfg.spacing is None else tuple(cfg.spacing),
    )
    out = prepare_dataset(
        loaders,
        Path(cfg.out),
        centre=cfg.centre,
        margin=cfg.margin,
        points_per_frame=cfg.points_per_frame,
        surface_fraction=cfg.surface_fraction,
        surface_sigmas=tuple(cfg.surface_sigmas),
        exact_band=cfg.exact_band,
        eval_size=cfg.eval_size,
        seed=cfg.seed,
        overwrite=cfg.overwrite,
        progress=cfg.progress,
    )
    print(f"prepared {len(loaders)} sequences from {cfg.input} into {out}")
    return {"out": out, "sequences": len(loaders)}
