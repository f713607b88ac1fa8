"""``cellsdf simulate``: write procedural cell-line sequences as TIFF time-lapses with a manifest."""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from cellsdf.io.lock import writing_folder
from cellsdf.io.manifest import write_manifest
from cellsdf.io.spacing import check_spacing
from cellsdf.simulate.write import simulate_to_folder


def run(cfg: DictConfig) -> dict:
    """Simulate one cell line as configured in ``conf/simulate.yaml``; return the manifest items."""
    # One run at a time writes the output, and what killed runs left there goes first.
    with writing_folder(cfg.out):
        return _run(cfg)


def _run(cfg: DictConfig) -> dict:
    out = Path(cfg.out)
    spacing = check_spacing("spacing", None if cfg.spacing is None else list(cfg.spacing))
    line = cfg.cellline.name
    items = simulate_to_folder(
        line,
        out,
        sequences=cfg.sequences,
        frames=cfg.frames,
        size=cfg.size,
        spacing=spacing,
        seed=cfg.seed,
        overwrite=cfg.overwrite,
        progress=cfg.progress,
        layout=cfg.layout,
    )
    write_manifest(out, "simulate", OmegaConf.to_container(cfg, resolve=True), cfg.seed, items)
    print(f"wrote {len(items)} {line} sequences to {out}")
    return {"out": out, "items": items}
