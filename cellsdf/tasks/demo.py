"""``cellsdf demo``: the main job on built-in data, small enough for a laptop CPU.

Simulate the three built-in cell lines, prepare them for training, generate new cells from the shipped model
of each line, draw one picture of both, and compare generated with simulated cells in an evaluation report.
"""

from __future__ import annotations

from pathlib import Path

from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from cellsdf.benchmark.build import FieldOptions, build_benchmark
from cellsdf.dataset.prepare import prepare_dataset
from cellsdf.dataset.sources import find_sequences
from cellsdf.decode.options import MeshOptions
from cellsdf.evaluate.pipeline import evaluate_folders
from cellsdf.generate.options import Request
from cellsdf.generate.run import cell_name, generate_cells
from cellsdf.io.lock import writing_folder
from cellsdf.io.manifest import write_manifest
from cellsdf.io.preview import write_preview
from cellsdf.io.tiff import read_timelapse
from cellsdf.simulate.lines import get_line, line_spacing
from cellsdf.simulate.write import simulate_to_folder


def run(cfg: DictConfig) -> dict:
    """Simulate, prepare and generate every built-in cell line; draw a preview; write an evaluation report."""
    # One run at a time writes the output, and what killed runs left there goes first.
    with writing_folder(cfg.out):
        return _run(cfg)


def _run(cfg: DictConfig) -> dict:
    out = Path(cfg.out)
    config = OmegaConf.to_container(cfg, resolve=True)
    previews, spacings, intervals, datasets = {}, {}, {}, {}
    for name in cfg.celllines:
        folder = out / "simulated" / name
        spacing = line_spacing(name, cfg.size)
        items = simulate_to_folder(
            name,
            folder,
            sequences=cfg.sequences,
            frames=cfg.frames,
            size=cfg.size,
            spacing=spacing,
            frame_interval=get_line(name).interval(cfg.frames),
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
        intervals[f"{name} simulated"] = get_line(name).interval(cfg.frames)
    for name in cfg.celllines:
        request = Request(
            ckpt=name,
            n=cfg.generate.n,
            frames=cfg.frames,
            resolution=cfg.size,
            seed=cfg.seed,
            formats=["tiff", "mesh"],
            mesh=MeshOptions(timelapse_faces=cfg.generate.timelapse_faces),
        )
        folder = out / "generated" / name
        generate_cells(request, folder, config, overwrite=cfg.overwrite, progress=cfg.progress)
        stack = read_timelapse(folder / cell_name(0) / "mask.tif")
        previews[f"{name} generated"], spacings[f"{name} generated"] = stack.data > 0, stack.spacing
        intervals[f"{name} generated"] = stack.frame_interval
    picture = write_preview(out / "preview.png", previews, spacings, frame_interval=intervals)
    benchmark = build_benchmark(
        out / "generated" / cfg.benchmark.cellline,
        out / "benchmark",
        instantiate(cfg.texture),
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
