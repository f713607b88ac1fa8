"""``cellsdf reconstruct``: a model's training sequences decoded to TIFFs and meshes, scored against data."""

from __future__ import annotations

from omegaconf import DictConfig, OmegaConf

from cellsdf.errors import InputError
from cellsdf.io.folders import check_out_folder
from cellsdf.io.lock import writing_folder
from cellsdf.model.trained import load_trained, select_device
from cellsdf.options import as_list
from cellsdf.reconstruct.learned import reconstruct_sequences
from cellsdf.reconstruct.outputs import output_options
from cellsdf.reconstruct.score import summary, write_run_manifest


def run(cfg: DictConfig) -> dict:
    """Reconstruct as configured in ``conf/reconstruct.yaml``; return the output folder and metrics."""
    # One run at a time writes the output, and what killed runs left there goes first.
    with writing_folder(cfg.out):
        return _run(cfg)


def _run(cfg: DictConfig) -> dict:
    if cfg.ckpt is None or cfg.out is None:
        raise InputError("reconstruct", "needs ckpt=<model file or plat|cele|filo> and out=<folder>")
    options = output_options(
        resolution=cfg.resolution,
        frames=cfg.frames,
        formats=[str(f) for f in as_list(cfg.formats)],
        mesh_format=cfg.mesh_format,
        progress=cfg.progress,
    )
    model = load_trained(cfg.ckpt, device=select_device(cfg.device))
    out = check_out_folder(cfg.out, cfg.overwrite)
    sequences = None if cfg.sequences is None else [str(s) for s in as_list(cfg.sequences)]
    metrics, items, dataset = reconstruct_sequences(
        model, out, options, sequences=sequences, dataset=cfg.data.path, remake_in=cfg.data.remake_in
    )
    config = OmegaConf.to_container(cfg, resolve=True)
    write_run_manifest(out, "reconstruct", config, cfg.seed, items, model.file, dataset)
    print(summary(metrics, out))
    return {"out": out, "metrics": metrics}
