"""``cellsdf prepare``: masks (TIFF, CTC, reference HDF5) to a prepared training dataset."""

from __future__ import annotations

from omegaconf import DictConfig, OmegaConf

from cellsdf.dataset.prepare import prepare_source
from cellsdf.dataset.prepared import read_index
from cellsdf.errors import InputError
from cellsdf.io.lock import writing_file

_NOT_STEPS = ("input", "out", "seed", "progress", "progress_every", "overwrite", "verbose", "threads")


def run(cfg: DictConfig) -> dict:
    """Prepare the input named in ``conf/prepare.yaml``; return the output path and sequence count."""
    # One run at a time writes the output, and what killed runs left there goes first.
    with writing_file(cfg.out):
        return _run(cfg)


def _run(cfg: DictConfig) -> dict:
    if cfg.input is None or cfg.out is None:
        raise InputError("prepare", "needs input=<TIFF, folder or .h5> and out=<dataset.h5>")
    # The prepare group's keys sit at the top level of this command (`cellsdf prepare threshold=120`).
    options = {k: v for k, v in OmegaConf.to_container(cfg, resolve=True).items() if k not in _NOT_STEPS}
    out = prepare_source(
        cfg.input,
        cfg.out,
        **options,
        seed=cfg.seed,
        overwrite=cfg.overwrite,
        progress=cfg.progress,
        report=True,
    )
    sequences = len(read_index(out).names)
    print(f"prepared {sequences} sequences from {cfg.input} into {out}")
    return {"out": out, "sequences": sequences}
