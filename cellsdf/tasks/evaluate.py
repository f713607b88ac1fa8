"""``cellsdf evaluate``: compare generated cells with real ones; metrics.json, report.html and figures."""

from __future__ import annotations

import sys

from omegaconf import DictConfig, ListConfig, OmegaConf

from cellsdf.errors import InputError
from cellsdf.evaluate.pipeline import evaluate_folders
from cellsdf.io.lock import writing_folder


def run(cfg: DictConfig) -> dict:
    """Evaluate the inputs named in ``conf/evaluate.yaml``; return what :func:`evaluate_folders` returns."""
    if cfg.real is None or cfg.generated is None or cfg.out is None:
        raise InputError(
            "evaluate", "needs real=<folder, TIFF or prepared .h5>, generated=<folder> and out=<folder>"
        )
    # One run at a time writes the output, and what killed runs left there goes first.
    with writing_folder(cfg.out):
        return _run(cfg)


def _run(cfg: DictConfig) -> dict:
    result = evaluate_folders(
        cfg.real,
        cfg.generated,
        cfg.out,
        metrics=_plain(cfg.metrics),
        per_frame=cfg.per_frame,
        points=cfg.points,
        max_shapes=cfg.max_shapes,
        montage=cfg.montage,
        spacing_real=_plain(cfg.spacing_real),
        spacing_generated=_plain(cfg.spacing_generated),
        workers=cfg.workers,
        seed=cfg.seed,
        overwrite=cfg.overwrite,
        progress=cfg.progress,
        config=OmegaConf.to_container(cfg, resolve=True),
    )
    for note in result["notes"]:
        print(f"cellsdf evaluate: note: {note}", file=sys.stderr)
    metrics = result["metrics"]
    if metrics["problems"]:
        print(
            f"cellsdf evaluate: {len(metrics['problems'])} frame(s) skipped, listed in metrics.json",
            file=sys.stderr,
        )
    for name, d in metrics["distributions"].items():
        if d["ks"] is not None:
            print(f"  {name:<15} W/σ {d['wasserstein_normalised']:7.3f}   KS {d['ks']:.3f}")
    if metrics["shapes"]:
        summary = metrics["shapes"]["summary"]
        # MMD in µm; coverage and 1-NNA are fractions, printed in % as everywhere else.
        texts = {
            "mmd": lambda v: f"MMD {v:.3f} µm",
            "coverage": lambda v: f"coverage {100 * v:.1f} %",
            "1nna": lambda v: f"1-NNA {100 * v:.1f} %",
        }
        print("  " + "   ".join(show(summary[k]) for k, show in texts.items() if k in summary))
    print(f"report written to {result['report']}")
    return result


def _plain(value: object) -> object:
    return OmegaConf.to_container(value) if isinstance(value, ListConfig) else value
