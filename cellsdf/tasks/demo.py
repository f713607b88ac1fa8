"""``cellsdf demo``: the main job on built-in data, small enough for a laptop CPU."""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from cellsdf.dataset.prepare import prepare_dataset
from cellsdf.dataset.sources import find_sequences
from cellsdf.evaluate import evaluate_folders
from cellsdf.io.manifest import write_manifest
from cellsdf.io.preview import write_preview
from cellsdf.io.tiff import read_timelapse
from cellsdf.tasks.simulate import scaled_spacing, simulate_to_folder


def run(cfg: DictConfig) -> dict:
    """Simulate every built-in cell line, prepare each, draw a preview and write an evaluation report."""
    out = Path(cfg.out)
    previews, spacings, datasets = {}, {}, {}
    for name, line in cfg.celllines.items():
        folder = out / "simulated" / name
        spacing = scaled_spacing(line.spacing_at_256, cfg.size)
        items = simulate_to_folder(
            name,
            folder,
            sequences=cfg.sequences,
            frames=cfg.frames,
            size=cfg.size,
            spacing=spacing,
            frame_interval=float(line.frame_interval),
            seed=cfg.seed,
            overwrite=cfg.overwrite,
            progress=cfg.progress,
        )
        write_manifest(folder, "simulate", OmegaConf.to_container(cfg, resolve=True), cfg.seed, items)
        datasets[name] = prepare_dataset(
            find_sequences(folder),
            out / "prepared" / f"{name}.h5",
            points_per_frame=cfg.points_per_frame,
            eval_size=cfg.eval_size,
            seed=cfg.seed,
            overwrite=cfg.overwrite,
            progress=cfg.progress,
        )
        previews[name] = read_timelapse(folder / items[0]["file"]).data > 0
        spacings[name] = spacing
    picture = write_preview(out / "preview.png", previews, spacings)
    # Until the generator exists, the report compares two cell lines: the distances it shows are large.
    report = evaluate_folders(
        out / "simulated" / cfg.report.real,
        out / "simulated" / cfg.report.generated,
        out / "report",
        workers=1,
        seed=cfg.seed,
        overwrite=cfg.overwrite,
        progress=cfg.progress,
        config=OmegaConf.to_container(cfg, resolve=True),
    )
    print(f"\ncellsdf demo finished. Outputs in {out.resolve()}:")
    print(f"  simulated time-lapses (TIFF, open in Fiji/napari): {(out / 'simulated').resolve()}")
    print(f"  prepared training datasets (HDF5): {(out / 'prepared').resolve()}")
    print(f"  preview picture: {picture.resolve()}")
    print(f"  evaluation report ({cfg.report.real} vs {cfg.report.generated}): {report['report'].resolve()}")
    return {"out": out, "preview": picture, "datasets": datasets, "report": report["report"]}
