"""``cellsdf prepare``: masks (TIFF, CTC, reference HDF5) to a prepared training dataset."""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig

from cellsdf.dataset.prepare import prepare_dataset
from cellsdf.dataset.prepared import read_prepared
from cellsdf.dataset.sources import find_sequences
from cellsdf.errors import InputError


def prepare_with(
    source: str | Path,
    out: str | Path,
    options: DictConfig,
    seed: int,
    overwrite: bool,
    progress: bool,
    scale: float | None = None,
) -> Path:
    """Find the sequences in ``source`` and prepare them into ``out`` with the options of a config.

    Parameters
    ----------
    source : str or Path
        Masks as ``cellsdf prepare`` reads them.
    out : str or Path
        Prepared-dataset file to write.
    options : DictConfig
        ``label``, ``threshold``, ``components``, ``spacing``, ``centre``, ``points_per_frame``,
        ``surface_fraction``, ``surface_sigmas``, ``exact_band``, ``eval_size`` and ``margin`` (unused with
        ``scale``): the keys of ``conf/prepare.yaml``, which ``train`` and ``fit`` nest.
    seed : int
        Sampling seed.
    overwrite, progress : bool
        As for every command.
    scale : float, optional
        Normalised units per µm to use instead of fitting the data into the cube (a trained model's scale).

    Returns
    -------
    Path
        The written file.
    """
    loaders = find_sequences(
        source,
        label=options.label,
        threshold=options.threshold,
        components=options.components,
        spacing=None if options.spacing is None else tuple(options.spacing),
    )
    return prepare_dataset(
        loaders,
        Path(out),
        centre=options.centre,
        points_per_frame=options.points_per_frame,
        surface_fraction=options.surface_fraction,
        surface_sigmas=tuple(options.surface_sigmas),
        exact_band=options.exact_band,
        eval_size=options.eval_size,
        seed=seed,
        overwrite=overwrite,
        progress=progress,
        scale=scale,
        margin=options.get("margin", 0.1),
    )


def run(cfg: DictConfig) -> dict:
    """Prepare the input named in ``conf/prepare.yaml``; return the output path and sequence count."""
    if cfg.input is None or cfg.out is None:
        raise InputError("prepare", "needs input=<TIFF, folder or .h5> and out=<dataset.h5>")
    out = prepare_with(cfg.input, cfg.out, cfg, cfg.seed, cfg.overwrite, cfg.progress)
    sequences = len(read_prepared(out).sequences)
    print(f"prepared {sequences} sequences from {cfg.input} into {out}")
    return {"out": out, "sequences": sequences}
