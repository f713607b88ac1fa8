"""``cellsdf demo``: the main job on built-in data, small enough for a laptop CPU.

Simulate the three built-in cell lines, prepare them for training, generate new cells from the shipped model
of each line, draw one picture of both, and compare generated with simulated cells in an evaluation report.
"""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from cellsdf.dataset.prepare import prepare_dataset
from cellsdf.dataset.sources import find_sequences
from cellsdf.decode.volumes import MeshOptions
from cellsdf.evaluate import evaluate_folders
from cellsdf.generate import SamplerOptions
from cellsdf.io.manifest import write_manifest
from cellsdf.io.preview import write_preview
from cellsdf.io.tiff import read_timelapse
from cellsdf.tasks.benchmark import FieldOptions, build_benchmark
from cellsdf.tasks.generate import Request, cell_name, generate_cells
from cellsdf.tasks.simulate import scaled_spacing, simulate_to_folder


def run(cfg: DictConfig) -> dict:
    """Simulate, prepare and generate every built-in cell line; draw a preview; write an evaluation report."""
    out = Path(cfg.out)
    config = OmegaConf.to_container(cfg, resolve=True)
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
        write_manifest(folder, "simulate", config, cfg.seed, items)
        datasets[name] = prepare_dataset(
            find_sequences(folder),
            out / "prepared" / f"{name}.h5",
            points_per_frame=cfg.points_per_frame,
            eval_size=cfg.eval_size,
            seed=cfg.seed,
            overwrite=cfg.overwrite,
            progress=cfg.progress,
        )
        previews[f"{name} simulated"] = read_timelapse(folder / items[0]["file"]).data > 0
        spacings[f"{name} simulated"] = spacing
    for name in cfg.celllines:
        request = Request(
            name,
            cfg.generate.n,
            cfg.frames,
            cfg.size,
            cfg.seed,
            SamplerOptions(),
            ("tiff", "mesh"),
            MeshOptions(timelapse_faces=cfg.generate.timelapse_faces),
        )
        folder = out / "generated" / name
        generate_cells(request, folder, config, overwrite=cfg.overwrite, progress=cfg.progress)
        stack = read_timelapse(folder / cell_name(0) / "mask.tif")
        previews[f"{name} generated"], spacings[f"{name} generated"] = stack.data > 0, stack.spacing
    picture = write_preview(out / "preview.png", previews, spacings)
    benchmark = build_benchmark(
        out / "generated" / cfg.benchmark.cellline,
        out / "benchmark",
        OmegaConf.to_container(cfg.texture, resolve=True),
        seed=cfg.seed,
        fields=FieldOptions(cfg.benchmark.cells_per_field, cfg.benchmark.field),
        overwrite=cfg.overwrite,
        config=config,
    )
    line = cfg.report.cellline
    report = evaluate_folders(
        out / "simulated" / line,
        out / "generated" / line,
        out / "report",
        workers=1,
        seed=cfg.seed,
        overwrite=cfg.overwrite,
        progress=cfg.progress,
        config=config,
    )
    print(f"\ncellsdf demo finished. Outputs in {out.resolve()}:")
    print(f"  simulated time-lapses (TIFF, open in Fiji/napari): {(out / 'simulated').resolve()}")
    print(f"  prepared training datasets (HDF5): {(out / 'prepared').resolve()}")
    print(f"  generated cells from the shipped models (TIFF, meshes): {(out / 'generated').resolve()}")
    print(f"  preview picture (simulated and generated cells): {picture.resolve()}")
    print(
        f"  2D segmentation benchmark, Cell Tracking Challenge layout ({cfg.benchmark.cellline} generated, "
        f"Otsu baseline SEG {benchmark['baseline_seg']:.2f}): {(out / 'benchmark').resolve()}"
    )
    print(f"  evaluation report ({line}: simulated vs generated): {report['report'].resolve()}")
    return {
        "out": out,
        "preview": picture,
        "datasets": datasets,
        "benchmark": out / "benchmark",
        "report": report["report"],
    }
