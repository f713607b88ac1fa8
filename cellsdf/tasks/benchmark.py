"""``cellsdf benchmark``: 2D or 3D segmentation benchmarks in the Cell Tracking Challenge layout."""

from __future__ import annotations

from pathlib import Path

from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from cellsdf.benchmark.build import FieldOptions, build_benchmark
from cellsdf.benchmark.volume import build_volume_benchmark
from cellsdf.errors import InputError
from cellsdf.io.lock import writing_folder
from cellsdf.texture.gan import load_texture_model


def run(cfg: DictConfig) -> dict:
    """Build the benchmark configured in ``conf/benchmark.yaml``; return the output folder and scores."""
    # One run at a time writes the output, and what killed runs left there goes first.
    with writing_folder(cfg.out):
        return _run(cfg)


def _run(cfg: DictConfig) -> dict:
    if cfg.source is None or cfg.out is None:
        raise InputError("benchmark", "needs source=<folder of 3D mask time-lapses> and out=<folder>")
    fields = FieldOptions(
        cells_per_field=cfg.cells_per_field,
        size=cfg.field,
        drift=cfg.drift,
        gap=cfg.gap,
        depth=cfg.field_depth,
    )
    if cfg.dims == 3:
        return _volumes(cfg, fields)
    texture = instantiate(cfg.texture)
    result = build_benchmark(
        cfg.source,
        cfg.out,
        texture,
        axis=cfg.axis,
        shapes=cfg.shapes,
        seed=cfg.seed,
        fields=fields,
        realism_seeds=cfg.realism_seeds,
        overwrite=cfg.overwrite,
        progress=cfg.progress,
        config=OmegaConf.to_container(cfg, resolve=True),
    )
    out = Path(cfg.out)
    count = len(result["sequences"])
    print(f"wrote {count} sequence(s) in the Cell Tracking Challenge layout to {out.resolve()}")
    print(f"  baseline (Otsu) SEG {result['baseline_seg']:.3f}; in {(out / 'benchmark.json').resolve()}")
    for name, r in result.get("realism", {}).items():
        if isinstance(r, dict) and "w1_foreground" in r:
            print(
                f"  realism of {name} vs the held-out real quarter: W1 foreground {r['w1_foreground']:.1f}, "
                f"background {r['w1_background']:.1f} ADU; spectrum distance {r['spectrum_distance']:.3f}"
            )
    return {"out": out, "benchmark": result}


def _volumes(cfg: DictConfig, fields: FieldOptions) -> dict:
    microscope = instantiate(cfg.microscope, _convert_="all")
    texture = None
    if cfg.learned is not None:
        learned = load_texture_model(cfg.learned)
        if not learned.volume:
            raise InputError(cfg.learned, "is a 2D texture model; train a 3D one with texture-train dims=3")
        texture = learned.render_volume
    result = build_volume_benchmark(
        cfg.source,
        cfg.out,
        microscope,
        texture=texture,
        shapes=cfg.shapes,
        seed=cfg.seed,
        fields=fields,
        overwrite=cfg.overwrite,
        progress=cfg.progress,
        config=OmegaConf.to_container(cfg, resolve=True),
    )
    out = Path(cfg.out)
    voxel = " x ".join(f"{v:g}" for v in reversed(result["voxel_size_um"]))
    print(
        f"wrote {len(result['sequences'])} 3D sequence(s) imaged by the {result['microscope']} microscope "
        f"({voxel} µm voxels, x y z) in the Cell Tracking Challenge layout to {out.resolve()}"
    )
    print(f"  baseline (Otsu, 3D) SEG {result['baseline_seg']:.3f}; in {(out / 'benchmark.json').resolve()}")
    return {"out": out, "benchmark": result}
