"""Evaluate generated cells against real ones: measure both inputs, compare, write metrics and a report."""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import numpy as np

from cellsdf.errors import InputError
from cellsdf.evaluate.descriptors import DESCRIPTORS, UNITS
from cellsdf.evaluate.distributions import distribution_distances
from cellsdf.evaluate.figures import plot_distributions, plot_montage, plot_over_time
from cellsdf.evaluate.inputs import hash_input, list_sequences
from cellsdf.evaluate.metrics import select_metrics
from cellsdf.evaluate.report import write_report
from cellsdf.evaluate.sequence import describe_sequence
from cellsdf.evaluate.shapes import SHAPE_METRICS, distance_set_metrics, sequence_chamfer, shape_set_metrics
from cellsdf.evaluate.spacing import resolve_spacing
from cellsdf.evaluate.temporal import TEMPORAL, temporal_values
from cellsdf.evaluate.twosample import descriptor_scale, sequence_matrix, two_sample, two_sample_distances
from cellsdf.io.atomic import atomic_path, check_writable
from cellsdf.io.manifest import write_manifest
from cellsdf.io.spacing import check_spacing
from cellsdf.progress import track

ROLES = ("real", "generated")
OUTPUTS = (
    "metrics.json",
    "report.html",
    "manifest.json",
    "distributions.png",
    "over_time.png",
    "montage.png",
)
_INTERVALS = {"1nna": "one_nna", "coverage": "coverage"}
_TEMPORAL_UNITS = {"volume_growth": "per frame", "temporal_iou": "", "divisions": "per sequence"}


def evaluate_folders(
    real: str | Path,
    generated: str | Path,
    out: str | Path,
    *,
    metrics: str | Sequence[str] = "all",
    per_frame: bool = False,
    points: int = 1024,
    max_shapes: int = 100,
    montage: int = 4,
    spacing_real: Sequence[float] | None = None,
    spacing_generated: Sequence[float] | None = None,
    workers: int = 2,
    seed: int = 0,
    overwrite: bool = False,
    progress: bool = False,
    config: dict | None = None,
) -> dict:
    """Compare generated cells with real ones and write ``metrics.json``, ``report.html`` and figures.

    Every frame of every sequence is measured once, streaming (memory holds two frames per worker, plus the
    small per-frame results); then each descriptor's distribution is compared between the inputs, the
    sequences as samples of their descriptors over time (``sequence_sets``: 1-NNA, coverage, MMD² with
    bootstrap intervals), and the shapes themselves as surface point clouds (``shapes``). The unit of every
    two-sample statistic is the sequence, never the frame (frames of one cell are each other's nearest
    neighbours); each comes with a floor, the same statistic between the two halves of the real sequences.

    Parameters
    ----------
    real : str or Path
        Real cells: a TIFF time-lapse, a folder of them, a prepared dataset (``.h5``), a CTC folder ... (see
        :func:`cellsdf.evaluate.inputs.list_sequences`).
    generated : str or Path
        Generated cells, in any of the same forms (also a folder of ``<name>/mask.tif``).
    out : str or Path
        Output folder.
    metrics : str or sequence of str
        ``"all"`` or names from :data:`cellsdf.evaluate.metrics.METRICS`.
    per_frame : bool
        Compare shape sets per frame index (frames present in both inputs) instead of sequence against
        sequence (the mean Chamfer distance over shared frame indices).
    points : int
        Surface points per shape for the shape-set metrics.
    max_shapes : int
        At most this many sequences (shapes per frame index) per input and comparison, drawn at random (the
        cost grows with its square).
    montage : int
        Cells per input shown in the montage (the last frame of the first sequences).
    spacing_real, spacing_generated : sequence of float, optional
        Voxel size (z, y, x) in µm that replaces what the files say.
    workers : int
        Processes measuring sequences in parallel.
    seed : int
        Seed of point draws and shape subsets.
    overwrite : bool
        Replace existing outputs.
    progress : bool
        Show progress bars.
    config : dict, optional
        The run's configuration, stored in ``manifest.json``.

    Returns
    -------
    dict
        ``out``, ``metrics`` (the content of metrics.json), ``notes`` (lines the user should see), and the
        paths of ``metrics_json`` and ``report``.

    Raises
    ------
    InputError
        For missing inputs or inputs without masks, unknown metrics, bad options, or existing outputs.
    """
    selected = select_metrics(metrics)
    _check_options(points, max_shapes, montage, workers)
    overrides = {
        "real": check_spacing("spacing_real", spacing_real),
        "generated": check_spacing("spacing_generated", spacing_generated),
    }
    out = Path(out)
    for name in OUTPUTS:
        check_writable(out / name, overwrite)
    paths = {"real": Path(real), "generated": Path(generated)}
    specs, spacing, notes = resolve_spacing({role: list_sequences(paths[role]) for role in ROLES}, overrides)
    names = tuple(n for n in selected if n in DESCRIPTORS)
    temporal = tuple(n for n in selected if n in TEMPORAL)
    shape_names = tuple(n for n in selected if n in SHAPE_METRICS)
    jobs = [
        (role, (spec, names, bool(temporal), points if shape_names else 0, (seed, r, i), i < montage))
        for r, role in enumerate(ROLES)
        for i, spec in enumerate(specs[role])
    ]
    answers = _describe_all([job for _, job in jobs], workers, progress)
    results = {role: [a for (r, _), a in zip(jobs, answers, strict=True) if r == role] for role in ROLES}
    problems = [
        {"input": role, "sequence": r["name"], **p}
        for role in ROLES
        for r in results[role]
        for p in r["problems"]
    ]
    for role in ROLES:
        if not any(d is not None for r in results[role] for d in r["descriptors"]):
            raise InputError(paths[role], "every frame is empty; nothing to evaluate")
    values = {role: _values(results[role], names, temporal) for role in ROLES}
    distributions = {
        n: distribution_distances(values["real"][n], values["generated"][n]) for n in values["real"]
    }
    report = {
        "inputs": {role: _input_summary(paths[role], results[role]) for role in ROLES},
        "spacing": spacing,
        "notes": notes,
        "options": {
            "metrics": list(selected),
            "per_frame": per_frame,
            "points": points,
            "max_shapes": max_shapes,
            "seed": seed,
        },
        "problems": problems,
        "distributions": distributions,
        "sequence_sets": _sequence_sets(results, names, seed),
        "shapes": _shapes(results, shape_names, per_frame, points, max_shapes, seed) if shape_names else None,
        "units": {n: UNITS.get(n) or _TEMPORAL_UNITS.get(n, "") for n in distributions},
        "sequences": {role: [_plain_sequence(r) for r in results[role]] for role in ROLES},
    }
    figures = _figures(out, results, values, distributions, report["units"], names, temporal)
    report["figures"] = figures
    with atomic_path(out / "metrics.json") as tmp:
        tmp.write_text(json.dumps(_finite(report), indent=1, allow_nan=False) + "\n")
    page = write_report(out / "report.html", report, {caption: name for name, caption in figures.items()})
    write_manifest(
        out,
        "evaluate",
        config or {},
        seed,
        [{"file": name} for name in ("metrics.json", "report.html", *figures)],
        inputs={role: report["inputs"][role] for role in ROLES},
    )
    return {
        "out": out,
        "metrics": report,
        "notes": notes,
        "metrics_json": out / "metrics.json",
        "report": page,
    }


def _check_options(points: int, max_shapes: int, montage: int, workers: int) -> None:
    for option, value, least in (
        ("points", points, 16),
        ("max_shapes", max_shapes, 2),
        ("workers", workers, 1),
    ):
        if not isinstance(value, int) or value < least:
            raise InputError(option, f"must be an integer >= {least}, got {value!r}")
    if not isinstance(montage, int) or montage < 0:
        raise InputError("montage", f"must be an integer >= 0, got {montage!r}")


def _describe_all(jobs: list[tuple], workers: int, progress: bool) -> list[dict]:
    """Run :func:`describe_sequence` on every job, in ``workers`` processes where the sequences allow."""
    # Sequences read through a loader hold lambdas and cannot go to another process; they are few (CTC, HDF5).
    remote = [i for i, job in enumerate(jobs) if job[0].load is None] if workers > 1 else []
    if len(remote) < 2:
        remote = []

    def run() -> Iterator[tuple[int, dict]]:
        if remote:
            with ProcessPoolExecutor(min(workers, len(remote)), mp_context=get_context("spawn")) as pool:
                yield from zip(remote, pool.map(_job, [jobs[i] for i in remote]), strict=True)
        for i in sorted(set(range(len(jobs))) - set(remote)):
            yield i, _job(jobs[i])

    answers: list = [None] * len(jobs)
    for i, answer in track(run(), "measuring cells", total=len(jobs), show=progress):
        answers[i] = answer
    return answers


def _job(job: tuple) -> dict:
    """Describe one sequence; at module level so that worker processes can run it."""
    spec, names, temporal, points, seed, keep_last = job
    return describe_sequence(
        spec, names=names, temporal=temporal, points=points, seed=seed, keep_last=keep_last
    )


def _values(results: list[dict], names: tuple[str, ...], temporal: tuple[str, ...]) -> dict[str, np.ndarray]:
    frames = [d for r in results for d in r["descriptors"] if d is not None]
    out = {n: np.array([d[n] for d in frames], dtype=float) for n in names}
    if temporal:
        pooled = temporal_values(results)
        out.update({n: pooled[n] for n in temporal})
    return out


def _shapes(
    results: dict[str, list[dict]],
    names: tuple[str, ...],
    per_frame: bool,
    points: int,
    max_shapes: int,
    seed: int,
) -> dict:
    rng = np.random.default_rng([seed, 2])
    clouds = {
        role: [(t, c) for r in results[role] for t, c in zip(r["point_frames"], r["points"], strict=True)]
        for role in ROLES
    }

    def compare(real: list[np.ndarray], generated: list[np.ndarray]) -> dict:
        metrics = shape_set_metrics(_subset(real, max_shapes, rng), _subset(generated, max_shapes, rng))
        return {k: v for k, v in metrics.items() if k in names or k.startswith("n_")}

    description = (
        f"Each shape: {points} points drawn uniformly on its surface, in µm, centred on their mean (position "
        "does not count, size does); "
        + (
            f"at most {max_shapes} shapes per input per frame index."
            if per_frame
            else f"one sample per sequence (at most {max_shapes} per input), two sequences compared by their "
            "mean Chamfer distance over the frame indices both have."
        )
    )
    if not per_frame:
        return {
            "description": description,
            "per_frame": None,
            **_sequence_shapes(results, names, max_shapes, rng),
        }
    common = sorted({t for t, _ in clouds["real"]} & {t for t, _ in clouds["generated"]})
    if not common:
        raise InputError("per_frame", "no frame index has shapes in both inputs; use per_frame=false")
    entries = [
        {
            "frame": t,
            **compare(
                [c for s, c in clouds["real"] if s == t], [c for s, c in clouds["generated"] if s == t]
            ),
        }
        for t in common
    ]
    summary = {n: float(np.mean([e[n] for e in entries])) for n in names}
    return {"description": description, "per_frame": entries, "summary": summary}


def _sequence_shapes(
    results: dict[str, list[dict]], names: tuple[str, ...], max_shapes: int, rng: np.random.Generator
) -> dict:
    """Shape-set metrics with one sample per sequence, bootstrap intervals and the real halves' floor."""
    sequences = {
        role: [
            dict(zip(r["point_frames"], r["points"], strict=True)) for r in results[role] if r["point_frames"]
        ]
        for role in ROLES
    }
    real = _subset(sequences["real"], max_shapes, rng)
    generated = _subset(sequences["generated"], max_shapes, rng)
    distances = sequence_chamfer([*real, *generated])

    def keep(metrics: dict) -> dict:
        return {k: v for k, v in metrics.items() if k in names or k.startswith("n_")}

    out: dict = {
        "summary": keep(distance_set_metrics(distances, len(real))),
        "intervals": None,
        "floor": None,
    }
    if len(real) >= 2:
        sets = two_sample_distances(distances, len(real), seed=int(rng.integers(2**31)))
        out["intervals"] = {k: sets[key]["interval"] for k, key in _INTERVALS.items() if k in names}
    if len(real) >= 4:
        halves = [*range(0, len(real), 2), *range(1, len(real), 2)]
        out["floor"] = keep(
            distance_set_metrics(distances[np.ix_(halves, halves)], len(range(0, len(real), 2)))
        )
    return out


def _sequence_sets(results: dict[str, list[dict]], names: tuple[str, ...], seed: int) -> dict | None:
    """Sequence-level 1-NNA, coverage and MMD² of the descriptor time courses, with the real halves' floor."""
    real, generated = results["real"], results["generated"]
    if not names or len(real) < 2 or not generated:
        return None
    frames = max(r["frames"] for r in real)
    matrices = {
        role: [sequence_matrix(r["descriptors"], names, frames) for r in results[role]] for role in ROLES
    }
    scale = descriptor_scale(matrices["real"], matrices["generated"])
    main = two_sample(matrices["real"], matrices["generated"], scale=scale, seed=seed)
    floor = None
    if len(real) >= 4:
        halves = matrices["real"][::2], matrices["real"][1::2]
        floor = two_sample(*halves, scale=scale, bandwidth=main["bandwidth"], seed=seed)
    return {
        "description": (
            f"One sample per sequence: its descriptors ({', '.join(names)}) over {frames} frames aligned by "
            "frame index; distance: root mean square over frame index and descriptor of the difference "
            "divided by the descriptor's standard deviation over all real frames. 1-NNA: leave-one-sequence-"
            "out; MMD²: RBF kernel, bandwidth the median distance between real sequences; intervals: 95% "
            "bootstrap over sequences (1000 resamples). Floor: the same statistic between the two halves of "
            "the real sequences (alternate ones), shown where there are at least 4."
        ),
        "descriptors": list(names),
        "frames": frames,
        "real_vs_generated": main,
        "floor": floor,
    }


def _subset(items: list, limit: int, rng: np.random.Generator) -> list:
    if len(items) <= limit:
        return items
    return [items[i] for i in np.sort(rng.choice(len(items), limit, replace=False))]


def _input_summary(path: Path, results: list[dict]) -> dict:
    return {
        "path": str(path.resolve()),
        "sha256": hash_input(path),
        "sequences": len(results),
        "frames": sum(r["frames"] for r in results),
    }


def _plain_sequence(result: dict) -> dict:
    keep = (
        "name",
        "source",
        "spacing",
        "frames",
        "descriptors",
        "problems",
        "volume_growth",
        "temporal_iou",
        "division_frames",
    )
    return {k: result[k] for k in keep if k in result}


def _finite(value: object) -> object:
    """Replace NaN and infinity (not valid JSON) with None."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


def _figures(
    out: Path,
    results: dict[str, list[dict]],
    values: dict[str, dict[str, np.ndarray]],
    distributions: dict[str, dict],
    units: dict[str, str],
    names: tuple[str, ...],
    temporal: tuple[str, ...],
) -> dict[str, str]:
    figures = {}
    if distributions:
        plot_distributions(out / "distributions.png", values, distributions, units)
        figures["distributions.png"] = "Descriptor distributions, real vs generated"
    over_time = [*names, *(n for n in temporal if n != "divisions")]
    if over_time:
        series = {role: {n: list(_series(results[role], n)) for n in over_time} for role in ROLES}
        plot_over_time(out / "over_time.png", series, units)
        figures["over_time.png"] = "Descriptors over time (mean ± sd over sequences)"
    cells = {
        role: [(r["name"], r["last"][1], tuple(r["spacing"])) for r in results[role] if r["last"]]
        for role in ROLES
    }
    if any(cells.values()):
        plot_montage(out / "montage.png", cells)
        figures["montage.png"] = "Montage: last frame of the first sequences (z projection, rendered surface)"
    return figures


def _series(results: list[dict], name: str) -> Iterable[list[float]]:
    for r in results:
        if name in ("volume_growth", "temporal_iou"):
            yield [np.nan if v is None else v for v in r[name]]
        else:
            yield [np.nan if d is None else d[name] for d in r["descriptors"]]
