"""``cellsdf bench``: each row times our way against the plain reference way on the same input, same run."""

from __future__ import annotations

import json
from pathlib import Path

from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from rich.console import Console
from rich.table import Table

from cellsdf.bench import Row
from cellsdf.bench.row import COLUMNS
from cellsdf.bench.suite import bench_rows
from cellsdf.io.atomic import atomic_path
from cellsdf.io.lock import writing_file


def run(cfg: DictConfig) -> dict:
    """Run the benchmark rows in ``conf/bench.yaml``, print each row and a table, write ``cfg.out`` (JSON)."""
    # One run at a time writes the output, and what killed runs left there goes first.
    with writing_file(cfg.out):
        return _run(cfg)


def bench_settings(cfg: DictConfig) -> DictConfig:
    """Return the options the rows run with: ``first_look``'s in place of the others' with ``quick=true``."""
    return OmegaConf.merge(cfg, cfg.first_look) if cfg.quick else cfg


def _run(cfg: DictConfig) -> dict:
    cfg = bench_settings(cfg)
    console = Console(width=max(Console().width, 110))

    def show(row: Row) -> None:
        # Each row as soon as it is measured: a full run takes minutes.
        _, ours, reference, ratio, _, peak, verdict = row.cells()
        figures = f"ours {ours}, reference {reference}, ratio {ratio}, peak {peak} MiB, passed {verdict}"
        console.print(f"{row.name}: {figures}", markup=False, soft_wrap=True)

    rows = bench_rows(
        decoder=OmegaConf.to_container(cfg.model.decoder, resolve=True),
        texture=instantiate(cfg.benchmark_texture),
        size=cfg.size,
        seed=cfg.seed,
        cell_lines=list(cfg.celllines),
        simulate_frames=cfg.simulate_frames,
        prepare_cell_line=cfg.prepare_cellline,
        prepare_frames=cfg.prepare_frames,
        points_per_frame=cfg.points_per_frame,
        evaluate_frames=cfg.evaluate_frames,
        clamp=cfg.model.clamp,
        train_frames=cfg.train_frames,
        train_points=cfg.train_points,
        train_warmup=cfg.train_warmup,
        train_steps=cfg.train_steps,
        train_rounds=cfg.train_rounds,
        compile_limit_s=cfg.compile_limit_s,
        decode_model=cfg.decode_model,
        decode_sequence=cfg.decode_sequence,
        decode_t=cfg.decode_t,
        decode_sizes=list(cfg.decode_sizes),
        generate_frames=cfg.generate_frames,
        generate_cells=cfg.generate_cells,
        memory_frames=cfg.memory_frames,
        benchmark_sequences=cfg.benchmark_sequences,
        benchmark_frames=cfg.benchmark_frames,
        benchmark_distinct=cfg.benchmark_distinct,
        volume_frames=cfg.volume_frames,
        lift_model=cfg.lift_model,
        lift_hypotheses=cfg.lift_hypotheses,
        threads_commands=list(cfg.threads_commands),
        fit_iterations=cfg.fit_iterations,
        on_row=show,
        progress=cfg.progress,
    )
    table = Table(title=f"cellsdf bench (size {cfg.size})")
    for column in COLUMNS:
        table.add_column(column)
    for row in rows:
        table.add_row(*row.cells())
    console.print(table)
    out = Path(cfg.out)
    entries = [row.to_dict() for row in rows]
    with atomic_path(out) as tmp:
        tmp.write_text(json.dumps({"size": cfg.size, "rows": entries}, indent=2) + "\n")
    print(f"results written to {out}")
    return {"rows": entries, "out": out}
