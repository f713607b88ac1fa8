"""``cellsdf bench``: each row times our way against the plain reference way on the same input, same run."""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

import numpy as np
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from rich.console import Console
from rich.table import Table

from cellsdf.benchmark.build import build_benchmark
from cellsdf.dataset.normalise import centres, cube_grid, frame_boxes, half_extent
from cellsdf.dataset.prepare import prepare_dataset
from cellsdf.dataset.sampling import sample_points
from cellsdf.dataset.sdf import interpolate_sdf, signed_distance, signed_distance_reference
from cellsdf.dataset.sources import MaskSequence, SequenceLoader
from cellsdf.decode.bench import bench_decode
from cellsdf.decode.volumes import DEFAULT_MESH
from cellsdf.evaluate.bench import bench_descriptors
from cellsdf.generate.run import Request, generate_cells
from cellsdf.generate.sampling import SamplerOptions
from cellsdf.io.atomic import atomic_path
from cellsdf.lift.bench import bench_lift
from cellsdf.model.bench import bench_training
from cellsdf.simulate import sequence_rng, simulate_frames
from cellsdf.simulate.write import simulate_to_folder
from cellsdf.texture.models import Texture
from cellsdf.timing import TARGET_SIZE, measure


def bench_simulate(cell_line: str, size: int, frames: int, seed: int) -> dict:
    """Seconds per simulated frame of one cell line (target: at most 2 s per 256³ frame)."""
    stream, _, _ = simulate_frames(cell_line, frames, size, sequence_rng(seed, 0))
    seconds, peak = measure(lambda: sum(1 for _ in stream))
    per_frame = seconds / frames
    return {
        "row": f"simulate {cell_line} {size}³ (s/frame)",
        "ours": per_frame,
        "reference": None,
        "ratio": None,
        "target": "<= 2 s/frame at 256³",
        "passed": per_frame <= 2.0 if size == TARGET_SIZE else None,
        "peak_mib": peak,
    }


def plain_prepare(seq: MaskSequence, points_per_frame: int, eval_size: int, seed: int, margin: float) -> None:
    """Prepare a sequence the simple way: full-grid SciPy distance transforms, then the same sampling."""
    boxes = frame_boxes(seq.masks)
    centre = centres(boxes, seq.spacing, "sequence")
    scale = (1.0 - margin) / half_extent(boxes, seq.spacing, centre)
    spacing = np.asarray(seq.spacing)
    rng = np.random.default_rng(seed)
    grid = cube_grid(eval_size)
    for k, mask in enumerate(seq.masks):
        sdf = signed_distance_reference(mask, seq.spacing) * np.float32(scale)
        origin = -centre[k] * scale
        sample_points(sdf, origin, spacing * scale, points_per_frame, rng)
        interpolate_sdf(sdf, origin, spacing * scale, grid)


def bench_sdf(cell_line: str, size: int, seed: int) -> dict:
    """Signed distance of one full frame: the ``edt`` package against two SciPy distance transforms."""
    stream, _, _ = simulate_frames(cell_line, 1, size, sequence_rng(seed, 0))
    mask = next(stream)
    ours, peak = measure(lambda: signed_distance(mask))
    plain, _ = measure(lambda: signed_distance_reference(mask))
    return {
        "row": f"signed distance {size}³ full grid (s)",
        "ours": ours,
        "reference": plain,
        "ratio": plain / ours,
        "target": "(part of prepare)",
        "passed": None,
        "peak_mib": peak,
    }


def bench_prepare(cell_line: str, size: int, frames: int, seed: int, points_per_frame: int) -> dict:
    """Prepare one simulated sequence our way and the plain way (target: at least 3x faster)."""
    stream, _, _ = simulate_frames(cell_line, frames, size, sequence_rng(seed, 0))
    masks = np.stack(list(stream))
    seq = MaskSequence("bench", "simulated", masks, (1.0, 1.0, 1.0), np.arange(frames))
    with tempfile.TemporaryDirectory() as tmp:
        ours, peak = measure(
            lambda: prepare_dataset(
                [SequenceLoader("bench", lambda: seq)],
                Path(tmp) / "bench.h5",
                points_per_frame=points_per_frame,
                seed=seed,
            )
        )
    plain, _ = measure(lambda: plain_prepare(seq, points_per_frame, 64, seed, 0.1))
    return {
        "row": f"prepare {cell_line} {frames}x{size}³ (s)",
        "ours": ours,
        "reference": plain,
        "ratio": plain / ours,
        "target": ">= 3x vs full-grid scipy EDT",
        "passed": plain / ours >= 3.0 if size == TARGET_SIZE else None,
        "peak_mib": peak,
    }


def bench_generate(model: str, size: int, frames: int, seed: int) -> dict:
    """Time one generated cell with meshes, ``frames`` frames at ``size``³ (target: 180 s, 30 at 256³).

    The whole ``cellsdf generate`` path with its defaults: narrow-band decoding, TIFF, per-frame and
    time-lapse meshes, preview. No plain way to compare with; the target is absolute.
    """
    request = Request(model, 1, frames, size, seed, SamplerOptions(), ("tiff", "mesh"), DEFAULT_MESH)
    with tempfile.TemporaryDirectory() as tmp:
        seconds, peak = measure(lambda: generate_cells(request, Path(tmp) / "gen", {}))
    return {
        "row": f"generate {model}: 1 cell, {frames} frames at {size}³ with meshes (s)",
        "ours": seconds,
        "reference": None,
        "ratio": None,
        "target": "<= 180 s for 30 frames at 256³",
        "passed": seconds <= 180.0 if size == TARGET_SIZE and frames >= 30 else None,
        "peak_mib": peak,
    }


def bench_benchmark(
    texture: Texture, sequences: int, frames: int, size: int, distinct: int, seed: int
) -> dict:
    """Time ``cellsdf benchmark`` on ``sequences`` x ``frames`` cele masks of ``size``³ (target: 300 s).

    The whole command: reading the TIFFs, projecting 3D components, tracks, texturing, writing the CTC layout
    and scoring the baseline. The input (untimed) is ``distinct`` simulated sequences copied to ``sequences``
    files, since simulating all of them would take longer than the row itself and every sequence costs the
    same. No plain way to compare with; the target is absolute.
    """
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "masks"
        distinct = min(distinct, sequences)
        simulate_to_folder("cele", source, sequences=distinct, frames=frames, size=size, seed=seed)
        files = sorted(source.glob("*.tif"))
        for k in range(len(files), sequences):
            shutil.copyfile(files[k % len(files)], source / f"copy_{k:03d}.tif")
        seconds, peak = measure(lambda: build_benchmark(source, Path(tmp) / "ctc", texture, seed=seed))
    judged = size == TARGET_SIZE and sequences >= 33 and frames >= 30
    return {
        "row": f"benchmark {texture.name}: {sequences} x {frames} frames at {size}² (s)",
        "ours": seconds,
        "reference": None,
        "ratio": None,
        "target": "<= 300 s for 33 x 30 at 256²",
        "passed": seconds <= 300.0 if judged else None,
        "peak_mib": peak,
    }


def _number(value: float | None, digits: int = 3) -> str:
    if value is None:
        return "-"
    return f"{value:.{digits}f}" if value < 1000 else f"{value:.0f}"


def _verdict(row: dict) -> str:
    if row["passed"] is None:
        return "-" if row["target"].startswith("(") else f"- (judged at {TARGET_SIZE}³)"
    return "yes" if row["passed"] else "NO"


def run(cfg: DictConfig) -> dict:
    """Run the benchmark rows in ``conf/bench.yaml``, print a table and write ``cfg.out`` (JSON)."""
    rows = [bench_simulate(line, cfg.size, cfg.simulate_frames, cfg.seed) for line in cfg.celllines]
    rows.append(bench_sdf(cfg.prepare_cellline, cfg.size, cfg.seed))
    rows.append(
        bench_prepare(cfg.prepare_cellline, cfg.size, cfg.prepare_frames, cfg.seed, cfg.points_per_frame)
    )
    rows.append(bench_descriptors(cfg.size, cfg.evaluate_frames, cfg.seed))
    rows += bench_training(
        OmegaConf.to_container(cfg.model.decoder, resolve=True),
        cfg.train_frames,
        # The target is stated for 4096 points per frame; smaller sizes scale the batch down for a quick look.
        max(64, cfg.train_points * cfg.size // TARGET_SIZE),
        cfg.seed,
        clamp=cfg.model.clamp,
        warmup=cfg.train_warmup,
        steps=cfg.train_steps,
        rounds=cfg.train_rounds,
        compile_limit_s=cfg.compile_limit_s,
        judge=cfg.size == TARGET_SIZE,
    )
    rows += bench_decode(
        cfg.decode_model,
        # The targets are stated for 128³ and 256³; smaller sizes scale the grids down for a quick look.
        [max(8, s * cfg.size // TARGET_SIZE) for s in cfg.decode_sizes],
        cfg.decode_sequence,
        cfg.decode_t,
        judge=cfg.size == TARGET_SIZE,
    )
    rows.append(bench_generate(cfg.decode_model, cfg.size, cfg.generate_frames, cfg.seed))
    rows.append(
        bench_benchmark(
            instantiate(cfg.benchmark_texture),
            cfg.benchmark_sequences,
            cfg.benchmark_frames,
            cfg.size,
            cfg.benchmark_distinct,
            cfg.seed,
        )
    )
    rows.append(
        bench_lift(cfg.lift_model, max(16, 64 * cfg.size // TARGET_SIZE), cfg.lift_hypotheses, cfg.seed + 1)
    )
    table = Table(title=f"cellsdf bench (size {cfg.size})")
    for column in ("row", "ours", "reference", "ratio", "target", "peak MiB", "passed"):
        table.add_column(column)
    for r in rows:
        table.add_row(
            r["row"],
            _number(r["ours"]),
            _number(r["reference"]),
            "-" if r["ratio"] is None else f"{r['ratio']:.1f}x",
            r["target"],
            _number(r["peak_mib"], 0),
            _verdict(r),
        )
    Console(width=max(Console().width, 110)).print(table)
    out = Path(cfg.out)
    with atomic_path(out) as tmp:
        tmp.write_text(json.dumps({"size": cfg.size, "rows": rows}, indent=2) + "\n")
    print(f"results written to {out}")
    return {"rows": rows, "out": out}
