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
import shutil
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, replace
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

from cellsdf.decode.dense import resolve_precision
from cellsdf.decode.join import JOIN_TOLERANCE
from cellsdf.decode.volumes import (
    FORMATS,
    MESH_FORMATS,
    WRITE_BASE_BYTES,
    MeshOptions,
    bytes_per_voxel,
    collected_garbage,
)
from cellsdf.errors import InputError, check_whole
from cellsdf.evaluate.topology import LINE_RULES, RULES
from cellsdf.generate.cell import RejectedCell, write_cell
from cellsdf.generate.sampling import (
    PAIR_SAMPLERS,
    ROTATIONS,
    SAMPLERS,
    SamplerOptions,
    draw_cell,
    model_sampler,
)
from cellsdf.geometry.grid import frame_times, grid_spacing
from cellsdf.geometry.surface import MESH_TOLERANCE
from cellsdf.io.atomic import atomic_path, temporary_name
from cellsdf.io.hashing import file_sha256
from cellsdf.io.limits import check_grid
from cellsdf.io.manifest import write_manifest
from cellsdf.model.trained import TrainedModel, load_trained, select_device
from cellsdf.progress import track

RUN_FILE = "run.json"
CELL_FILE = "cell.json"
# Settings that change how a run is carried out, not what it writes: shards of one run differ in them, so the
# manifest's config leaves them out.
TOPOLOGIES = ("auto", "none", *RULES)
DECODE_PRECISIONS = ("auto", "32", "bf16")
NOT_IN_KEY = ("shard", "num_shards", "progress", "overwrite", "device", "verbose", "workers", "threads")


def cell_name(index: int) -> str:
    """Folder name of generated cell ``index``."""
    return f"gen_{index:03d}"


def run_key(arguments: dict, checkpoint_sha256: str) -> str:
    """Hash of a run's file-deciding arguments and checkpoint: equal keys write equal cells."""
    text = json.dumps({"arguments": arguments, "checkpoint": checkpoint_sha256}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _check_options(
    *,
    n: int,
    frames: int,
    resolution: int,
    formats: list[str],
    mesh_format: str,
    sampler: SamplerOptions,
    max_draws: int,
    frame_interval: float | None,
    topology: str,
    precision: str,
    join: float,
    tolerance: float | None,
) -> None:
    """Refuse bad options with one line naming the option, before anything is loaded or written."""
    for name, value in (("n", n), ("frames", frames), ("max_draws", max_draws)):
        check_whole(value, name)
    if frame_interval is not None and not frame_interval > 0:
        raise InputError("frame_interval", f"must be null or > 0 seconds, got {frame_interval!r}")
    check_whole(resolution, "resolution", 8)
    unknown = sorted(set(formats) - set(FORMATS))
    if unknown or not formats:
        raise InputError("formats", f"choose one or more of {', '.join(FORMATS)}, got {formats}")
    check_grid("resolution", resolution, bytes_per_voxel(formats), base=WRITE_BASE_BYTES)
    if mesh_format not in MESH_FORMATS:
        raise InputError("mesh_format", f"choose one of {', '.join(MESH_FORMATS)}, got {mesh_format!r}")
    if topology not in TOPOLOGIES:
        raise InputError("topology", f"choose one of {', '.join(TOPOLOGIES)}, got {topology!r}")
    if precision not in DECODE_PRECISIONS:
        raise InputError("precision", f"choose one of {', '.join(DECODE_PRECISIONS)}, got {precision!r}")
    check_join(join)
    check_voxels(tolerance, "mesh.tolerance", null=True)
    if sampler.name not in SAMPLERS:
        raise InputError("sampler.name", f"choose one of {', '.join(SAMPLERS)}, got {sampler.name!r}")
    if sampler.rotation not in ROTATIONS:
        raise InputError("rotation", f"choose one of {', '.join(ROTATIONS)}, got {sampler.rotation!r}")
    if sampler.std is not None and not sampler.std > 0:
        raise InputError("sampler.std", f"must be null or > 0, got {sampler.std!r}")
    if not sampler.noise >= 0:
        raise InputError("sampler.noise", f"must be >= 0, got {sampler.noise!r}")
    if not (isinstance(sampler.scale, (int, float)) and sampler.scale > 0):
        raise InputError("sampler.scale", f"must be a number > 0, got {sampler.scale!r}")


def check_join(join: object) -> float:
    """Return the ``join`` tolerance (voxels) as a float; InputError unless it is a number in [0, 10]."""
    return check_voxels(join, "join")


def check_voxels(value: object, name: str, *, null: bool = False) -> float | None:
    """Return a distance in voxels (``join``, ``mesh.tolerance``) as a float, None for None where ``null``.

    InputError names ``name`` unless the value is a number in [0, 10].
    """
    if value is None and null:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 10:
        allowed = "null or a number" if null else "a number"
        raise InputError(name, f"must be {allowed} in [0, 10] (voxels), got {value!r}")
    return float(value)


def learned_codes(model: TrainedModel, sampler: SamplerOptions) -> np.ndarray:
    """Return the model's learned codes as an (S, L) array, checking that the sampler can use them."""
    latents, ckpt = model.latents, model.file
    if sampler.name == "gaussian" and sampler.std is None and len(latents) < 2:
        raise InputError(ckpt, "has one learned code; a covariance needs two, so pass sampler.std=<value>")
    if sampler.name in PAIR_SAMPLERS and len(latents) < 2:
        raise InputError(ckpt, f"has one learned code; sampler {sampler.name} needs two")
    if sampler.name == "interpolate" and not all(0 <= i < len(latents) for i in sampler.path):
        raise InputError(
            "sampler.path", f"indices must lie in 0 .. {len(latents) - 1}, got {list(sampler.path)}"
        )
    return latents


def topology_rule(model: TrainedModel, topology: str) -> str | None:
    """Return the topology rule generated cells must keep: ``auto`` takes the rule of the model's line.

    A model trained on a built-in line knows it from its recipe; for other data ``auto`` checks nothing.
    """
    if topology == "none":
        return None
    if topology != "auto":
        return topology
    recipe = model.data.recipe or {}
    return LINE_RULES.get(recipe.get("cell_line"))


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


@dataclass(frozen=True)
class Request:
    """What a generate run writes: the arguments that decide its files (shards of one run share them)."""

    ckpt: str
    n: int
    frames: int
    resolution: int
    seed: int
    sampler: SamplerOptions
    formats: tuple[str, ...]
    mesh: MeshOptions
    max_draws: int = 50
    frame_interval: float | None = None
    topology: str = "auto"
    precision: str = "auto"
    tracking: bool = True
    join: float = JOIN_TOLERANCE


def make_request(
    *,
    ckpt: str,
    n: int,
    frames: int,
    resolution: int,
    seed: int,
    sampler: SamplerOptions,
    formats: list[str],
    mesh_format: str = "ply",
    smoothing: int = 30,
    tolerance: float | None = MESH_TOLERANCE,
    faces: int | None = None,
    timelapse_faces: int | None = 20000,
    max_draws: int = 50,
    frame_interval: float | None = None,
    topology: str = "auto",
    precision: str = "auto",
    tracking: bool = True,
    join: float = JOIN_TOLERANCE,
) -> Request:
    """Check a generate run's options and collect them (InputError names a bad one).

    Examples
    --------
    >>> make_request(ckpt="plat", n=2, frames=3, resolution=32, seed=0, sampler=SamplerOptions(),
    ...              formats=["tiff"]).n
    2
    """
    formats = [str(f) for f in formats]
    _check_options(
        n=n,
        frames=frames,
        resolution=resolution,
        formats=formats,
        mesh_format=mesh_format,
        sampler=sampler,
        max_draws=max_draws,
        frame_interval=frame_interval,
        topology=topology,
        precision=precision,
        join=join,
        tolerance=tolerance,
    )
    mesh = MeshOptions(
        format=mesh_format,
        smoothing=smoothing,
        tolerance=tolerance,
        faces=faces,
        timelapse_faces=timelapse_faces,
    )
    return Request(
        str(ckpt),
        n,
        frames,
        resolution,
        seed,
        sampler,
        tuple(formats),
        mesh,
        max_draws,
        frame_interval,
        topology,
        precision,
        bool(tracking),
        float(join),
    )


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
    # sampler.name=auto is the model's own choice, precision=auto this machine's; the run's key and records
    # name what was used.
    request = replace(
        request,
        sampler=model_sampler(request.sampler, model.sampler),
        precision=resolve_precision(request.precision, model.device),
    )
    latents = learned_codes(model, request.sampler)
    rule = topology_rule(model, request.topology)
    scale, interval = timing(model, request.frames, request.frame_interval)
    spacing = grid_spacing(request.resolution, scale)
    times = frame_times(request.frames).tolist()
    checkpoint_sha256 = file_sha256(ckpt)
    key = run_key(asdict(request), checkpoint_sha256)
    out = Path(out)
    prepare_out(out, key, overwrite)
    if overwrite:
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


def default_parallelism(cells: int) -> tuple[int, int]:
    """Return (workers, torch threads per worker) for writing ``cells`` cells on this machine's CPUs.

    One worker per usable core (at most one per cell), one thread each: a cell's decode is many small matrix
    products and sines, which a second thread speeds up little, and on a 2-core machine that another job
    keeps busy, torch's default of one thread per core made ``generate`` 2.2x-3x slower than one thread.

    Examples
    --------
    >>> workers, threads = default_parallelism(1)
    >>> workers, threads
    (1, 1)
    """
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return max(1, min(cores, cells)), 1


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
    rng = np.random.default_rng([request.seed, index])
    rejected: list[str] = []
    reasons: dict[str, int] = {}
    draws = request.max_draws if request.sampler.random else 1
    for _ in range(draws):
        latent, rotation, info = draw_cell(latents, request.sampler, rng, index, request.n)
        shutil.rmtree(partial, ignore_errors=True)
        try:
            # The preview's figure and the draw's meshes are freed as the draw ends, not cells later.
            with collected_garbage():
                frames = write_cell(
                    model,
                    latent,
                    rotation,
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
        except RejectedCell as err:
            rejected.append(str(err))
            reasons[err.problem] = reasons.get(err.problem, 0) + 1
            continue
        return {
            "name": name,
            "index": index,
            "seed": [request.seed, index],
            **info,
            "latent": latent.tolist(),
            "rotation": None if rotation is None else rotation.tolist(),
            "redraws": len(rejected),
            "rejected": rejected,
            "rejections": reasons,
            "times": times,
            "spacing_um": list(spacing),
            "frame_interval_s": interval,
            "frames": frames,
        }
    shutil.rmtree(partial, ignore_errors=True)
    raise InputError(
        "generate",
        f"{name}: no usable cell in {draws} draw(s) ({'; '.join(rejected[-3:])}); "
        "try another sampler, a smaller sampler.std or noise",
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
