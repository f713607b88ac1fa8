"""The fidelity scorecard: generated sequences against held-out reference sequences of their cell line.

Every figure is computed twice: generated against the reference, and, as its floor, a second disjoint
reference draw against the same reference, so that what "indistinguishable" looks like has a number beside it.
The unit of every two-sample statistic is the sequence (:mod:`cellsdf.evaluate.twosample`).
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Sequence

import numpy as np

from cellsdf.evaluate.descriptors import DESCRIPTORS, UNITS, crop_descriptors
from cellsdf.evaluate.distributions import distribution_distances
from cellsdf.evaluate.novelty import novelty
from cellsdf.evaluate.topology import topology_summary
from cellsdf.evaluate.twosample import descriptor_scale, sequence_distances, sequence_matrix, two_sample
from cellsdf.geometry.surface import crop_box

SetInput = Sequence[np.ndarray] | Sequence[Sequence[dict | None]]
_SET_METHOD = (
    "One sample = one sequence. Sequences are resampled by frame index to {frames} frames; the distance "
    "between two is the root mean square over frame index and descriptor of their difference divided by the "
    "descriptor's spread (standard deviation over all frames of the reference sequences). 1-NNA: leave-one-"
    "sequence-out nearest neighbour; MMD²: RBF kernel, bandwidth the median distance between reference "
    "sequences; intervals: {confidence:.0%} bootstrap over sequences ({resamples} resamples, seed {seed})."
)
_W1_METHOD = (
    "1-Wasserstein distance between the descriptor's values over all frames of all sequences, divided by the "
    "standard deviation of the reference's values over all its frames (pooled spread)."
)


def describe_masks(
    sequences: Sequence[np.ndarray], *, spacing: Sequence[float], names: Sequence[str] = DESCRIPTORS
) -> list[list[dict | None]]:
    """Measure every frame of every mask sequence (:func:`cellsdf.evaluate.descriptors.crop_descriptors`).

    Parameters
    ----------
    sequences : sequence of np.ndarray
        bool (T, Z, Y, X) masks, one array per sequence.
    spacing : sequence of float
        Voxel size (z, y, x) in µm.
    names : sequence of str
        Descriptors to compute; ``components`` is always added.

    Returns
    -------
    list of list of dict or None
        Per sequence, per frame: descriptor name to value, or None for an empty frame.
    """
    wanted = tuple(names) + (() if "components" in names else ("components",))
    spacing = tuple(float(s) for s in spacing)
    out = []
    for masks in sequences:
        masks = np.asarray(masks)
        if masks.ndim != 4:
            raise ValueError(f"expected (T, Z, Y, X) masks per sequence, got shape {masks.shape}")
        frames: list[dict | None] = []
        for mask in masks:
            cropped = crop_box(mask.astype(bool))
            frames.append(None if cropped is None else crop_descriptors(cropped[0], spacing, names=wanted))
        out.append(frames)
    return out


def score_generation(
    generated: SetInput,
    reference: SetInput,
    reference_b: SetInput,
    *,
    training: SetInput | None = None,
    spacing: Sequence[float],
    rule: str,
    names: Sequence[str] = DESCRIPTORS,
    frames: int | None = None,
    resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> dict:
    """Score generated sequences against a reference, each figure beside its floor.

    Figures (``figures``, one row each; ``value`` for generated vs ``reference``, ``floor`` for
    ``reference_b`` vs ``reference``):

    - ``one_nna`` (%): sequence-level leave-one-out 1-NN accuracy; 50 % ideal, 100 % fully separable.
    - ``coverage`` (%): reference sequences that are some generated sequence's nearest; higher is better.
    - ``mmd`` (MMD², unitless): about 0 for equal distributions; lower is better.
    - ``w1/<descriptor>`` (reference SD): 1-Wasserstein distance over pooled frames / reference spread.
    - ``topology_kept`` (%): sequences keeping the line's rule (:mod:`cellsdf.evaluate.topology`).
    - ``fragments_per_frame``: components beyond the rule, mean over frames; 0 is good.
    - ``end_points_ratio`` (×): mean skeleton end points per frame (protrusion tips),
      generated over reference; 1 ideal.
    - ``novelty_ratio`` (×) and ``copies`` (%), with ``training``: nearest-training distance over the training
      set's own nearest-neighbour distance (about 1 for new cells, near 0 for copies), and the share of
      sequences closer to a training sequence than the 5th percentile of those (copies); the floor is
      ``reference_b`` against the training set.

    Parameters
    ----------
    generated, reference, reference_b : sequence
        Each a list of bool (T, Z, Y, X) mask arrays, or of per-frame descriptor lists (dict or None per
        frame, as :func:`describe_masks` returns; they must hold ``names``, ``components`` and, for the
        protrusion figure, ``end_points``). ``reference`` and ``reference_b`` are disjoint draws of the
        reference cells (for built-in lines: two simulator seeds).
    training : sequence, optional
        The training sequences, in the same form, for the novelty figures.
    spacing : sequence of float
        Voxel size (z, y, x) in µm of mask inputs.
    rule : str
        Topology rule: ``single`` or ``divide_once`` (a line's
        :attr:`~cellsdf.simulate.lines.CellLine.topology`).
    names : sequence of str
        Descriptors that describe a sequence.
    frames : int, optional
        Frame count sequences are resampled to; by default the longest reference sequence's.
    resamples : int
        Bootstrap resamples of the intervals.
    confidence : float
        Coverage of the intervals.
    seed : int
        Seed of the bootstrap.

    Returns
    -------
    dict
        JSON-able: ``figures`` (rows with ``key``, ``name``, ``value``, ``interval``, ``floor``,
        ``floor_interval``, ``unit``, ``good``, ``target``, ``meets``), ``topology`` and ``novelty`` details,
        ``counts``, ``frames``, ``descriptors``, ``rule`` and ``method`` (how each kind of figure is made).
    """
    names = tuple(names)
    sets = {"generated": generated, "reference": reference, "reference_b": reference_b}
    if training is not None:
        sets["training"] = training
    measured = {k: _described(v, spacing, names) for k, v in sets.items()}
    for key, value in measured.items():
        if len(value) < 2:
            raise ValueError(f"{key}: need at least 2 sequences, got {len(value)}")
    frames = frames or max(len(s) for s in measured["reference"])
    matrices = {k: [sequence_matrix(s, names, frames) for s in v] for k, v in measured.items()}
    scale = descriptor_scale(matrices["reference"], matrices["generated"], matrices["reference_b"])
    options = {"scale": scale, "resamples": resamples, "confidence": confidence, "seed": seed}
    main = two_sample(matrices["reference"], matrices["generated"], **options)
    floor = two_sample(matrices["reference"], matrices["reference_b"], bandwidth=main["bandwidth"], **options)
    rows = [
        _set_row("one_nna", "1-NNA", main, floor, "%", "50 % ideal, 100 % fully separable", "≤ 70 %", 100),
        _set_row(
            "coverage", "coverage", main, floor, "%", "higher is better (the floor is typical)", None, 100
        ),
        _set_row("mmd", "MMD²", main, floor, "", "about 0 for equal distributions; lower is better", None, 1),
    ]
    rows += _wasserstein_rows(measured, names)
    topology = {k: topology_summary([_counts(s) for s in v], rule) for k, v in measured.items()}
    rows += _topology_rows(topology)
    rows += _protrusion_rows(measured)
    novelty_detail = None
    if training is not None:
        novelty_detail = _novelty(matrices, scale)
        rows += _novelty_rows(novelty_detail)
    return {
        "rule": rule,
        "frames": frames,
        "descriptors": list(names),
        "spacing": [float(s) for s in spacing],
        "counts": {k: len(v) for k, v in measured.items()},
        "figures": rows,
        "sets": {"generated": main, "floor": floor},
        "topology": topology,
        "novelty": novelty_detail,
        "method": {
            "sets": _SET_METHOD.format(frames=frames, confidence=confidence, resamples=resamples, seed=seed),
            "w1": _W1_METHOD,
            "floor": "The same figure between reference_b and reference (two disjoint reference draws).",
        },
    }


def scorecard_table(scorecard: dict, *, markup: str = "markdown") -> str:
    """Write a scorecard's figures as a table: figure, value [interval], floor [interval], unit, good, target.

    Parameters
    ----------
    scorecard : dict
        From :func:`score_generation`.
    markup : str
        ``markdown`` or ``html``.

    Returns
    -------
    str
        The table.

    Examples
    --------
    >>> row = {"name": "1-NNA", "value": 52.0, "interval": [40.0, 61.0], "floor": 50.0,
    ...        "floor_interval": None, "unit": "%", "good": "50 % ideal", "target": "≤ 70 %", "meets": True}
    >>> print(scorecard_table({"figures": [row]}))
    | figure | value | floor | unit | good | target |
    |---|---|---|---|---|---|
    | 1-NNA | 52 [40–61] | 50 | % | 50 % ideal | ≤ 70 % (met) |
    """
    header = ["figure", "value", "floor", "unit", "good", "target"]
    rows = []
    for row in scorecard["figures"]:
        target = row.get("target") or ""
        if target and row.get("meets") is not None:
            target += " (met)" if row["meets"] else " (not met)"
        rows.append(
            [
                row["name"],
                _with_interval(row["value"], row.get("interval"), missed=_missed_bounds(row)),
                _with_interval(row["floor"], row.get("floor_interval")),
                row["unit"],
                row["good"],
                target,
            ]
        )
    if markup == "markdown":
        lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        lines += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
        return "\n".join(lines)
    if markup == "html":
        import html

        head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
        body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in r) + "</tr>" for r in rows)
        return f"<table><tr>{head}</tr>{body}</table>"
    raise ValueError(f"unknown markup {markup!r}; valid: markdown, html")


def _described(items: SetInput, spacing: Sequence[float], names: tuple[str, ...]) -> list[list[dict | None]]:
    items = list(items)
    if items and isinstance(items[0], np.ndarray):
        wanted = names + tuple(n for n in ("end_points",) if n not in names)
        return describe_masks(items, spacing=spacing, names=wanted)
    return [list(s) for s in items]


def _counts(frames: list[dict | None]) -> list[int]:
    return [0 if d is None else int(d["components"]) for d in frames]


def _set_row(key, name, main, floor, unit, good, target, factor) -> dict:
    value, base = main[key]["value"] * factor, floor[key]["value"] * factor
    return {
        "key": key,
        "name": name,
        "value": value,
        "interval": _scaled(main[key]["interval"], factor),
        "floor": base,
        "floor_interval": _scaled(floor[key]["interval"], factor),
        "unit": unit,
        "good": good,
        "target": target,
        "meets": (value <= 70) if key == "one_nna" else None,
    }


def _wasserstein_rows(measured: dict, names: tuple[str, ...]) -> list[dict]:
    rows = []
    for name in names:
        values = {k: _pooled(v, name) for k, v in measured.items()}
        with warnings.catch_warnings():  # the KS p-value's exact method gives up on ties; W1 is unaffected
            warnings.simplefilter("ignore", RuntimeWarning)
            main = distribution_distances(values["reference"], values["generated"])["wasserstein_normalised"]
            floor = distribution_distances(values["reference"], values["reference_b"])[
                "wasserstein_normalised"
            ]
        limit = max(0.5, 1.5 * floor) if floor is not None and floor > 0.33 else 0.5
        rows.append(
            {
                "key": f"w1/{name}",
                "name": f"W1/σ {name}" + (f" ({UNITS[name]})" if UNITS.get(name) else ""),
                "value": main,
                "interval": None,
                "floor": floor,
                "floor_interval": None,
                "unit": "reference SD",
                "good": "0 ideal",
                "target": f"≤ {limit:.2f}",
                "meets": None if main is None else main <= limit,
            }
        )
    return rows


def _topology_rows(topology: dict) -> list[dict]:
    kept, floor = topology["generated"], topology["reference_b"]
    return [
        {
            "key": "topology_kept",
            "name": f"topology kept ({kept['rule']})",
            "value": 100 * kept["kept"],
            "interval": None,
            "floor": 100 * floor["kept"],
            "floor_interval": None,
            "unit": "% of sequences",
            "good": "100 % ideal",
            "target": "≥ 90 %",
            "meets": 100 * kept["kept"] >= 90,
        },
        {
            "key": "fragments_per_frame",
            "name": "fragments per frame",
            "value": kept["fragments_per_frame"],
            "interval": None,
            "floor": floor["fragments_per_frame"],
            "floor_interval": None,
            "unit": "components per frame",
            "good": "0 ideal",
            "target": None,
            "meets": None,
        },
    ]


def _protrusion_rows(measured: dict) -> list[dict]:
    if not all(d is None or "end_points" in d for s in measured["reference"] for d in s):
        return []
    means = {k: float(np.mean([_mean_end_points(s) for s in v])) for k, v in measured.items()}
    reference = means["reference"]
    ratio = means["generated"] / reference if reference > 0 else float("nan")
    floor = means["reference_b"] / reference if reference > 0 else float("nan")
    return [
        {
            "key": "end_points_ratio",
            "name": f"skeleton end points per frame (reference {reference:.3g})",
            "value": ratio,
            "interval": None,
            "floor": floor,
            "floor_interval": None,
            "unit": "× reference",
            "good": "1 ideal",
            "target": "0.75–1.33",
            "meets": bool(0.75 <= ratio <= 1.33) if np.isfinite(ratio) else None,
        }
    ]


def _mean_end_points(frames: list[dict | None]) -> float:
    values = [d["end_points"] for d in frames if d is not None]
    return float(np.mean(values)) if values else float("nan")


def _novelty(matrices: dict, scale: np.ndarray) -> dict:
    training = matrices["training"]
    own = sequence_distances(training, training, scale)
    return {
        "generated": novelty(sequence_distances(matrices["generated"], training, scale), own),
        "floor": novelty(sequence_distances(matrices["reference_b"], training, scale), own),
    }


def _novelty_rows(detail: dict) -> list[dict]:
    main, floor = detail["generated"], detail["floor"]
    return [
        {
            "key": "novelty_ratio",
            "name": "distance to nearest training sequence / training NN distance (median)",
            "value": main["median_ratio"],
            "interval": None,
            "floor": floor["median_ratio"],
            "floor_interval": None,
            "unit": "×",
            "good": "about the floor (≈ 1); near 0 means copies",
            "target": None,
            "meets": None,
        },
        {
            "key": "copies",
            "name": "copies (closer than the 5th percentile of training NN distances)",
            "value": 100 * main["copies"],
            "interval": None,
            "floor": 100 * floor["copies"],
            "floor_interval": None,
            "unit": "% of sequences",
            "good": "about the floor (≈ 5 %)",
            "target": None,
            "meets": None,
        },
    ]


def _pooled(sequences: list[list[dict | None]], name: str) -> np.ndarray:
    return np.array([d[name] for s in sequences for d in s if d is not None], dtype=float)


def _scaled(interval: list[float] | None, factor: float) -> list[float] | None:
    return None if interval is None else [factor * x for x in interval]


def _missed_bounds(row: dict) -> tuple[float, ...]:
    """Return the numbers of a missed target (those the value must not be rounded onto), else nothing."""
    if row.get("meets") is not False:
        return ()
    return tuple(float(n) for n in re.findall(r"\d+(?:\.\d+)?", row.get("target") or ""))


def _with_interval(
    value: float | None, interval: list[float] | None, *, missed: tuple[float, ...] = ()
) -> str:
    """Format a value (3 significant digits) and its interval.

    A value that missed its target gets the digits that tell it from the target's bounds: 0.7496 against
    0.75–1.33 is "0.7496", not "0.75".

    Examples
    --------
    >>> _with_interval(0.7496, None, missed=(0.75, 1.33)), _with_interval(0.7496, [0.7, 0.8])
    ('0.7496', '0.75 [0.7–0.8]')
    """
    if value is None or not np.isfinite(value):
        return "–"
    digits = 3
    text = f"{value:.{digits}g}"
    while float(text) in missed and digits < 8:
        digits += 1
        text = f"{value:.{digits}g}"
    return text if interval is None else f"{text} [{interval[0]:.3g}–{interval[1]:.3g}]"
