"""The sharded generate run: new cells from random latents of a trained model, as TIFFs, meshes and SDFs.

Cells are numbered ``gen_000``, ``gen_001``, ... Cell ``i`` is drawn from a generator seeded with
(seed, i), so it is the same whichever shard or run writes it. Shard ``k`` of ``num_shards`` writes the cells
with ``i % num_shards == k``. Each cell is written into a hidden ``.gen_XXX.partial<pid>-<host>`` folder and
renamed when complete, with ``cell.json`` recording the arguments it was made with; a restart with the same
arguments skips complete cells. The last shard to finish writes ``manifest.json`` for the whole run.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import re
import shutil
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

from cellsdf.decode.dense import resolve_precision
from cellsdf.decode.options import MESH_FORMATS
from cellsdf.decode.volumes import OMEZARR, TIMELAPSE_GLB, TIMELAPSE_NAPARI, collected_garbage
from cellsdf.errors import InputError
from cellsdf.generate.cell import write_cell
from cellsdf.generate.draw import Draw, accepted, draw_accepted
from cellsdf.generate.options import Request
from cellsdf.generate.sampling import Sampler, model_sampler
from cellsdf.geometry.grid import frame_times, grid_spacing
from cellsdf.io.atomic import atomic_path, temporary_name
from cellsdf.io.hashing import file_sha256
from cellsdf.io.manifest import write_manifest
from cellsdf.model.trained import TrainedModel, load_trained, select_device
from cellsdf.progress import track

RUN_FILE = "run.json"
CELL_FILE = "cell.json"
# A worker process pays about 5 s for its start (importing torch, loading the model); it pays off once it has
# about 10 s of cells to write. A frame with meshes and files takes about 1.7 s at 256³ on one 2-core machine
# and less on coarser grids, roughly as the 1.5th power of the grid side (0.6 s at 128³, 0.2 s at 64³).
_WORK_PER_WORKER_S = 10.0
_FRAME_S_AT_256 = 1.7
# Settings that change how a run is carried out, not what it writes: shards of one run differ in them, so the
# manifest's config leaves them out.
NOT_IN_KEY = (
    "shard",
    "num_shards",
    "progress",
    "progress_every",
    "overwrite",
    "device",
    "verbose",
    "workers",
    "threads",
)


def cell_name(index: int) -> str:
    """Folder name of generated cell ``index``."""
    return f"gen_{index:03d}"


def run_key(arguments: dict, checkpoint_sha256: str) -> str:
    """Hash of a run's file-deciding arguments and checkpoint: equal keys write equal cells."""
    text = json.dumps({"arguments": arguments, "checkpoint": checkpoint_sha256}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def learned_codes(model: TrainedModel, sampler: Sampler) -> np.ndarray:
    """Return the model's learned codes as an (S, L) array, checking that the sampler can use them."""
    sampler.check(model.latents, str(model.file))
    return model.latents


def topology_rule(model: TrainedModel, topology: str) -> str | None:
    """Return the topology rule generated cells must keep: ``auto`` takes the rule of the model's line.

    The model records its line's rule (a registered line's, or the one stated or learned for the user's own
    line, ``cellline=own``); for data that name no line ``auto`` checks nothing.
    """
    if topology == "none":
        return None
    return model.data.topology if topology == "auto" else topology


def timing(model: TrainedModel, frames: int, override: float | None) -> tuple[float, float]:
    """Return the voxel scale (units per µm) and the seconds between generated frames.

    The generated frames span the training sequences' mean duration, so more frames are closer in time.
    """
    scale = model.scale()
    if override is not None:
        return scale, float(override)
    span = model.data.mean_span()
    if span is None:
        raise InputError(
            model.file, "the checkpoint does not record its data's frame interval; pass frame_interval="
        )
    return scale, span / (frames - 1) if frames > 1 else span


def prepare_out(out: Path, key: str, overwrite: bool) -> None:
    """Create or accept the output folder: empty, a run with the same key (resume), or ``overwrite``."""
    if out.exists() and not out.is_dir():
        raise InputError(out, "is a file; out must name a folder")
    record = out / RUN_FILE
    if record.is_file():
        if not overwrite and _recorded_key(record) != key:
            raise InputError(
                out, "holds a generate run with other arguments; pass overwrite=true to replace it"
            )
    # Hidden names are other shards' temporary files and partial cells (they may start at the same moment);
    # multirun.yaml is what Hydra writes into the sweep folder, which is ``out``.
    elif (
        out.is_dir()
        and not overwrite
        and any(p.name != "multirun.yaml" and not p.name.startswith(".") for p in out.iterdir())
    ):
        raise InputError(out, "holds other files; choose an empty folder or pass overwrite=true")
    with atomic_path(record) as tmp:
        tmp.write_text(json.dumps({"run_key": key}) + "\n")


def _recorded_key(record: Path) -> str:
    """Return the run key in an existing ``run.json``; InputError naming it when it is damaged."""
    try:
        content = json.loads(record.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise InputError(record, f"unreadable run record ({err}); remove it or pass overwrite=true") from None
    if not isinstance(content, dict) or not isinstance(content.get("run_key"), str):
        raise InputError(record, "not a generate run record (no run_key); remove it or pass overwrite=true")
    return content["run_key"]


def complete_cell(folder: Path, key: str) -> dict | None:
    """Return the record of a finished cell of run ``key``; None if it is missing or from another run."""
    try:
        record = json.loads((folder / CELL_FILE).read_text())
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) and record.get("run_key") == key else None


def generate_cells(
    request: Request,
    out: str | Path,
    config: dict,
    *,
    shard: int = 0,
    num_shards: int = 1,
    overwrite: bool = False,
    device: str = "auto",
    progress: bool = False,
    workers: int = 1,
    threads: int | None = None,
) -> dict:
    """Write shard ``shard`` of ``num_shards`` of a generate run into ``out``, skipping complete cells.

    With ``workers`` above 1, cells are written by that many spawned worker processes at once (each loads
    the model); every cell is drawn from its own seed, so the files are those of one worker.

    Parameters
    ----------
    request : Request
        Model, number of cells, frames, resolution, seed, sampler, formats, mesh options.
    out : str or Path
        Output folder, shared by all shards.
    config : dict
        Configuration recorded in the manifest.
    shard, num_shards : int
        This job writes cells ``i`` with ``i % num_shards == shard``.
    overwrite : bool
        Write into a folder that holds other files, and rewrite this shard's complete cells.
    device : str
        ``auto``, ``cpu`` or ``cuda[:i]``.
    progress : bool
        Progress bars over frames.
    workers : int
        Cells written at once, each in its own process (1: in this process).
    threads : int, optional
        Torch threads of each worker process; None leaves torch's setting. This process's own setting is
        the caller's (the command sets it, see :func:`default_parallelism`).

    Returns
    -------
    dict
        ``out``, ``written`` and ``skipped`` cell names, ``manifest`` (None until every shard has finished).
    """
    if not isinstance(num_shards, int) or not isinstance(shard, int) or not 0 <= shard < num_shards:
        raise InputError(
            "shard", f"must lie in 0 .. num_shards - 1, got shard={shard} num_shards={num_shards}"
        )
    model = load_trained(request.ckpt, device=select_device(device))
    ckpt = model.file
    # sampler=auto is the model's own choice, precision=auto this machine's; the run's key and records
    # name what was used.
    request = replace(
        request,
        sampler=model_sampler(request.sampler, model.sampler, source=str(ckpt)),
        precision=resolve_precision(request.precision, model.device),
    )
    latents = learned_codes(model, request.sampler)
    rule = topology_rule(model, request.topology)
    scale, interval = timing(model, request.frames, request.frame_interval)
    spacing = grid_spacing(request.resolution, scale)
    times = frame_times(request.frames).tolist()
    checkpoint_sha256 = file_sha256(ckpt)
    key = run_key(request.key(), checkpoint_sha256)
    out = Path(out)
    prepare_out(out, key, overwrite)
    if overwrite:
        _refuse_foreign_files(out)
        for stale in out.glob("gen_*"):
            # Cells beyond n belong to an earlier, larger run.
            if stale.is_dir() and stale.name[4:].isdigit() and int(stale.name[4:]) >= request.n:
                shutil.rmtree(stale, ignore_errors=True)
    todo, skipped = [], []
    for index in range(shard, request.n, num_shards):
        if not overwrite and complete_cell(out / cell_name(index), key) is not None:
            skipped.append(cell_name(index))
        else:
            todo.append(index)
    written: list[str] = []
    if workers > 1 and len(todo) > 1:
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(min(workers, len(todo)), mp_context=context) as pool:
            jobs = [
                pool.submit(
                    _write_in_worker, request, out, i, key, checkpoint_sha256, str(model.device), threads
                )
                for i in todo
            ]
            # Cells are written whole by the workers: the bar counts cells, not frames.
            written = [job.result() for job in track(jobs, "cells", show=progress)]
    else:
        for index in todo:
            record = _make_cell(model, latents, request, index, out, times, spacing, interval, progress, rule)
            record.update(run_key=key, checkpoint_sha256=checkpoint_sha256)
            _finish_cell(out, out / cell_name(index), record)
            written.append(cell_name(index))
    manifest = _write_manifest_when_complete(out, request, config, key, checkpoint_sha256)
    return {"out": out, "written": written, "skipped": skipped, "manifest": manifest}


def default_parallelism(cells: int, cores: int, *, frames: int, resolution: int) -> tuple[int, int]:
    """Return (workers, torch threads per worker) for writing ``cells`` cells on ``cores`` cores.

    A worker process pays for its start (importing torch, loading the model: about 5 s), so there are as
    many workers as there are about 10 s of estimated work for, at most one per cell and per core, and the
    cores left over are shared as threads. Measured on 2 quiet cores: 2 cells of 4 frames at 64³ took 10.1 s
    with 2 workers and 5.1 s with one; 2 cells of 6 frames at 128³ 18.2 s and 16.4 s; 6 cells of 6 frames at
    128³ 26.1 s and 32.5 s; 3 cells of 30 frames at 256³ 74 s and 156 s. ``cores`` is what the thread
    policy chose (:mod:`cellsdf.threads`: the idle cores at the start).

    Examples
    --------
    >>> runs = ((2, 4, 64), (2, 6, 128), (6, 6, 128), (3, 30, 256))  # cells, frames, grid
    >>> [default_parallelism(n, 2, frames=f, resolution=r) for n, f, r in runs]
    [(1, 2), (1, 2), (2, 1), (2, 1)]
    """
    work = cells * frames * _FRAME_S_AT_256 * (resolution / 256) ** 1.5
    workers = max(1, min(cores, cells, int(work // _WORK_PER_WORKER_S)))
    return workers, max(1, cores // workers)


@lru_cache(maxsize=1)
def _worker_model(ckpt: str, device: str) -> TrainedModel:
    """Load the model of a worker process once for all the cells it writes."""
    return load_trained(ckpt, device=device)


def _write_in_worker(
    request: Request,
    out: Path,
    index: int,
    key: str,
    checkpoint_sha256: str,
    device: str,
    threads: int | None,
) -> str:
    """Write cell ``index`` of ``request`` (sampler and precision resolved) in a worker process."""
    if threads is not None:
        torch.set_num_threads(threads)
    model = _worker_model(request.ckpt, device)
    latents = learned_codes(model, request.sampler)
    rule = topology_rule(model, request.topology)
    scale, interval = timing(model, request.frames, request.frame_interval)
    spacing = grid_spacing(request.resolution, scale)
    times = frame_times(request.frames).tolist()
    record = _make_cell(model, latents, request, index, out, times, spacing, interval, False, rule)
    record.update(run_key=key, checkpoint_sha256=checkpoint_sha256)
    _finish_cell(out, out / cell_name(index), record)
    return cell_name(index)


def _make_cell(
    model: TrainedModel,
    latents: np.ndarray,
    request: Request,
    index: int,
    out: Path,
    times: list[float],
    spacing: tuple[float, float, float],
    interval: float,
    progress: bool,
    rule: str | None,
) -> dict:
    """Draw cell ``index`` until every frame passes the checks; write it to its partial folder."""
    name = cell_name(index)
    partial = out / temporary_name(name, kind="partial")

    def attempt(draw: Draw) -> list[dict]:
        shutil.rmtree(partial, ignore_errors=True)
        # The preview's figure and the draw's meshes are freed as the draw ends, not cells later.
        with collected_garbage():
            return write_cell(
                model,
                draw.latent,
                draw.rotation,
                times,
                partial,
                resolution=request.resolution,
                spacing=spacing,
                frame_interval=interval,
                formats=request.formats,
                mesh=request.mesh,
                title=name,
                progress=progress,
                topology=rule,
                precision=request.precision,
                tracking=request.tracking,
                join=request.join,
            )

    loop = draw_accepted(
        attempt,
        latents=latents,
        sampler=request.sampler,
        rotation=request.rotation,
        rng=np.random.default_rng([request.seed, index]),
        index=index,
        count=request.n,
        max_draws=request.max_draws,
        name=name,
    )
    try:
        cell = accepted(loop)
    except InputError:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    draw = cell.draw
    return {
        "name": name,
        "index": index,
        "seed": [request.seed, index],
        **draw.info,
        "latent": draw.latent.tolist(),
        "rotation": None if draw.rotation is None else draw.rotation.tolist(),
        "redraws": len(cell.rejected),
        "rejected": [str(err) for err in cell.rejected],
        "rejections": cell.reasons,
        "times": times,
        "spacing_um": list(spacing),
        "frame_interval_s": interval,
        "frames": cell.value,
    }


# What a generated cell's folder holds: only these may go when overwrite=true replaces the cell.
_CELL_FILES = re.compile(
    "|".join(
        [
            *map(
                re.escape, (CELL_FILE, "mask.tif", "preview.png", "sdf.h5", TIMELAPSE_GLB, TIMELAPSE_NAPARI)
            ),
            re.escape(OMEZARR) + "/.*",
            rf"mesh/t\d{{3}}\.({'|'.join(MESH_FORMATS)})",
        ]
    )
)


def _refuse_foreign_files(out: Path) -> None:
    """Refuse to replace cell folders that hold files a generate run does not write (a user's notes)."""
    for folder in sorted(out.glob("gen_*")):
        if not folder.is_dir() or folder.is_symlink():
            continue
        files = (p for p in folder.rglob("*") if p.is_file() or p.is_symlink())
        foreign = [p.relative_to(folder).as_posix() for p in files]
        foreign = [name for name in foreign if not _CELL_FILES.fullmatch(name)]
        if foreign:
            shown = ", ".join(foreign[:3]) + (f" and {len(foreign) - 3} more" if len(foreign) > 3 else "")
            raise InputError(
                folder, f"holds files generate did not write ({shown}); move them before overwrite=true"
            )


def _finish_cell(out: Path, folder: Path, record: dict) -> None:
    """Write the cell's record into its partial folder, then move the folder into place."""
    partial = out / temporary_name(folder.name, kind="partial")
    with atomic_path(partial / CELL_FILE) as tmp:
        tmp.write_text(json.dumps(record, indent=2) + "\n")
    if folder.exists():
        shutil.rmtree(folder)
    os.replace(partial, folder)


def _write_manifest_when_complete(
    out: Path, request: Request, config: dict, key: str, checkpoint_sha256: str
) -> Path | None:
    """Write ``manifest.json`` once all ``n`` cells are complete; return it, or None if not yet."""
    records = [complete_cell(out / cell_name(i), key) for i in range(request.n)]
    if any(r is None for r in records):
        return None
    items = [{k: v for k, v in r.items() if k not in ("run_key", "checkpoint_sha256")} for r in records]
    for item in items:
        item["folder"] = item["name"]
    return write_manifest(
        out,
        "generate",
        config,
        request.seed,
        items,
        checkpoint=request.ckpt,
        checkpoint_sha256=checkpoint_sha256,
        run_key=key,
        redraws=sum(r["redraws"] for r in records),
        rejections=_summed([r.get("rejections", {}) for r in records]),
        topology=request.topology,
        precision=request.precision,
        tracking_lost=sum(
            frame.get("decode") == "narrow-band, tracking lost" for r in records for frame in r["frames"]
        ),
        fragments_joined=sum(frame.get("joined", 0) for r in records for frame in r["frames"]),
    )


def _summed(counts: list[dict[str, int]]) -> dict[str, int]:
    total: dict[str, int] = {}
    for entry in counts:
        for reason, count in entry.items():
            total[reason] = total.get(reason, 0) + count
    return total
