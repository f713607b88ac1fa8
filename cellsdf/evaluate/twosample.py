"""Two-sample statistics whose unit is the sequence: 1-NNA, coverage and MMD, with bootstrap intervals.

Frames of one cell are not independent samples (each is its neighbours' nearest neighbour), so every statistic
here treats one sequence as one sample. A sequence is described by its descriptor matrix (T frames x D
descriptors, resampled to a common frame count by frame index, :func:`sequence_matrix`); two sequences are
compared by the root mean square, over frame index and descriptor, of their differences in units of the
reference set's spread (:func:`sequence_distances`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def sequence_matrix(descriptors: Sequence[dict | None], names: Sequence[str], frames: int) -> np.ndarray:
    """Arrange one sequence's per-frame descriptors as a (frames, D) matrix aligned by frame index.

    Frame ``i`` of a sequence of ``T`` frames sits at relative time ``i / (T - 1)``; the matrix holds the
    descriptors linearly interpolated at ``frames`` equally spaced relative times, so sequences of different
    lengths are compared frame index for frame index. Frames without descriptors (None, e.g. empty) are
    skipped in the interpolation; a sequence with none gives NaN.

    Parameters
    ----------
    descriptors : sequence of dict or None
        One dict per frame (descriptor name to value), or None for a frame that was not measured.
    names : sequence of str
        Descriptors to take, in column order.
    frames : int
        Rows of the result (at least 1).

    Returns
    -------
    np.ndarray
        float (frames, len(names)).

    Examples
    --------
    >>> sequence_matrix([{"volume": 1.0}, None, {"volume": 3.0}], ["volume"], 5)[:, 0].tolist()
    [1.0, 1.5, 2.0, 2.5, 3.0]
    """
    if frames < 1:
        raise ValueError(f"frames must be at least 1, got {frames}")
    count = len(descriptors)
    out = np.full((frames, len(names)), np.nan)
    measured = [i for i, d in enumerate(descriptors) if d is not None]
    if not measured:
        return out
    where = np.array(measured, dtype=float) / max(count - 1, 1)
    target = np.linspace(0.0, 1.0, frames) if frames > 1 else np.zeros(1)
    for column, name in enumerate(names):
        values = np.array([float(descriptors[i][name]) for i in measured])
        out[:, column] = np.interp(target, where, values)
    return out


def descriptor_scale(reference: Sequence[np.ndarray], *others: Sequence[np.ndarray]) -> np.ndarray:
    """Spread of each descriptor: the standard deviation of the reference's frames, pooled over sequences.

    A descriptor that does not vary in the reference (e.g. one component in every frame) takes the spread of
    all given sets pooled; one that varies nowhere takes 1 (it then adds nothing to any distance).

    Parameters
    ----------
    reference : sequence of np.ndarray
        (T, D) matrices of the reference sequences.
    *others : sequence of np.ndarray
        Further sets of (T, D) matrices, used only for descriptors without spread in the reference.

    Returns
    -------
    np.ndarray
        float (D,), positive.
    """
    pooled = np.concatenate([np.asarray(m) for m in reference])
    scale = np.nanstd(pooled, axis=0)
    flat = ~(scale > 0)
    if flat.any() and others:
        everything = np.concatenate([pooled, *(np.concatenate(list(s)) for s in others if len(s))])
        scale[flat] = np.nanstd(everything[:, flat], axis=0)
    scale[~(scale > 0)] = 1.0
    return scale


def sequence_distances(a: Sequence[np.ndarray], b: Sequence[np.ndarray], scale: np.ndarray) -> np.ndarray:
    """Distances between the sequences of two sets, in units of the reference spread.

    d(x, y) = sqrt(mean over frame index and descriptor of ((x - y) / scale)²), over the entries measured in
    both (inf when none is).

    Parameters
    ----------
    a, b : sequence of np.ndarray
        (T, D) matrices, all of one shape (:func:`sequence_matrix`).
    scale : np.ndarray
        (D,) spreads (:func:`descriptor_scale`).

    Returns
    -------
    np.ndarray
        float (len(a), len(b)).

    Examples
    --------
    >>> x, y = np.zeros((3, 2)), np.ones((3, 2))
    >>> sequence_distances([x], [x, y], np.array([1.0, 2.0])).round(3).tolist()
    [[0.0, 0.791]]
    """
    left = np.stack([np.asarray(m, dtype=float) for m in a]) / scale
    right = np.stack([np.asarray(m, dtype=float) for m in b]) / scale
    squared = ((left[:, None] - right[None]) ** 2).reshape(len(left), len(right), -1)
    measured = np.isfinite(squared)
    count = measured.sum(axis=2)
    mean = np.where(measured, squared, 0.0).sum(axis=2) / np.maximum(count, 1)
    return np.sqrt(np.where(count > 0, mean, np.inf))


def rbf_bandwidth(reference_distances: np.ndarray) -> float:
    """Median heuristic: the median of the distances between distinct reference sequences (1 if none)."""
    upper = reference_distances[np.triu_indices(len(reference_distances), 1)]
    upper = upper[np.isfinite(upper) & (upper > 0)]
    return float(np.median(upper)) if len(upper) else 1.0


def set_statistics(
    distances: np.ndarray, is_reference: np.ndarray, bandwidth: float, *, origin: np.ndarray | None = None
) -> dict[str, float]:
    """1-NNA, coverage and MMD² of two sets from the distances between all their members.

    - ``one_nna``: accuracy of the leave-one-out 1-nearest-neighbour classifier telling the sets apart
      (0.5 when they are indistinguishable, 1 when they are apart).
    - ``coverage``: fraction of reference members that are the nearest reference member of at least one
      member of the other set (1 when the other set spans the reference, small when it collapses).
    - ``mmd``: unbiased squared maximum mean discrepancy with the kernel exp(-d² / (2 bandwidth²)); about 0
      for equal distributions.

    Parameters
    ----------
    distances : np.ndarray
        (N, N) distances between all members of both sets.
    is_reference : np.ndarray
        bool (N,), True for reference members.
    bandwidth : float
        RBF kernel bandwidth, in the distances' unit (:func:`rbf_bandwidth`).
    origin : np.ndarray, optional
        int (N,) original member of each row; rows of one origin (copies drawn by a bootstrap) are never
        each other's neighbours nor kernel pairs.

    Returns
    -------
    dict of str to float
        ``one_nna``, ``coverage``, ``mmd``.
    """
    n = len(distances)
    origin = np.arange(n) if origin is None else np.asarray(origin)
    same = origin[:, None] == origin[None]
    masked = np.where(same, np.inf, distances)
    nearest = np.argmin(masked, axis=1)
    # A member that cannot be compared with any other (e.g. every frame empty) is told apart.
    isolated = ~np.isfinite(masked).any(axis=1)
    one_nna = float(np.mean((is_reference[nearest] == is_reference) | isolated))
    ref, other = np.flatnonzero(is_reference), np.flatnonzero(~is_reference)
    cross = masked[np.ix_(other, ref)]
    covered = origin[ref][np.argmin(cross, axis=1)[np.isfinite(cross).any(axis=1)]]
    coverage = float(len(np.unique(covered)) / len(np.unique(origin[ref])))
    kernel = np.exp(-(distances**2) / (2 * bandwidth**2))
    kernel = np.where(same, np.nan, kernel)

    def mean(rows: np.ndarray, cols: np.ndarray) -> float:
        block = kernel[np.ix_(rows, cols)]
        return float(np.nanmean(block)) if np.isfinite(block).any() else 0.0

    mmd = mean(ref, ref) + mean(other, other) - 2 * mean(ref, other)
    return {"one_nna": one_nna, "coverage": coverage, "mmd": mmd}


def two_sample(
    reference: Sequence[np.ndarray],
    other: Sequence[np.ndarray],
    *,
    scale: np.ndarray,
    bandwidth: float | None = None,
    resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> dict[str, dict[str, float | list[float]]]:
    """Sequence-level 1-NNA, coverage and MMD² of a set against the reference, with bootstrap intervals.

    The interval is the percentile interval of the statistic over ``resamples`` draws of the sequences
    (with replacement, each set on its own); copies of one sequence are never each other's neighbours.

    Parameters
    ----------
    reference, other : sequence of np.ndarray
        (T, D) matrices (:func:`sequence_matrix`); at least two reference and one other sequence.
    scale : np.ndarray
        (D,) descriptor spreads (:func:`descriptor_scale`).
    bandwidth : float, optional
        RBF bandwidth; by default the median distance between reference sequences.
    resamples : int
        Bootstrap draws (0: no interval).
    confidence : float
        Coverage of the interval.
    seed : int
        Seed of the bootstrap draws.

    Returns
    -------
    dict
        For each of ``one_nna``, ``coverage``, ``mmd``: ``value`` and ``interval`` ([low, high], or None);
        plus ``n_reference``, ``n_other`` and ``bandwidth``.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> a = [rng.normal(size=(4, 2)) for _ in range(20)]
    >>> b = [rng.normal(size=(4, 2)) + 3 for _ in range(20)]
    >>> two_sample(a, b, scale=np.ones(2), resamples=0)["one_nna"]["value"]
    1.0
    """
    if len(reference) < 2 or len(other) < 1:
        raise ValueError(
            f"need at least 2 reference and 1 other sequence, got {len(reference)} and {len(other)}"
        )
    members = [*reference, *other]
    distances = sequence_distances(members, members, scale)
    return two_sample_distances(
        distances, len(reference), bandwidth=bandwidth, resamples=resamples, confidence=confidence, seed=seed
    )


def two_sample_distances(
    distances: np.ndarray,
    n_reference: int,
    *,
    bandwidth: float | None = None,
    resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> dict[str, dict[str, float | list[float]]]:
    """:func:`two_sample` from the distances between all sequences (reference first), in any unit.

    Parameters
    ----------
    distances : np.ndarray
        (N, N) distances; rows and columns ``:n_reference`` are the reference sequences.
    n_reference : int
        Reference sequences (at least 2, and at least 1 other).
    bandwidth : float, optional
        RBF bandwidth; by default the median distance between reference sequences.
    resamples : int
        Bootstrap draws (0: no interval).
    confidence : float
        Coverage of the interval.
    seed : int
        Seed of the bootstrap draws.

    Returns
    -------
    dict
        As :func:`two_sample`.
    """
    distances = np.asarray(distances, dtype=float)
    n_ref = int(n_reference)
    if n_ref < 2 or len(distances) - n_ref < 1:
        raise ValueError(
            f"need at least 2 reference and 1 other sequence, got {n_ref} and {len(distances) - n_ref}"
        )
    n_other = len(distances) - n_ref
    is_reference = np.arange(len(distances)) < n_ref
    if bandwidth is None:
        bandwidth = rbf_bandwidth(distances[:n_ref, :n_ref])
    point = set_statistics(distances, is_reference, bandwidth)
    draws = {k: [] for k in point}
    rng = np.random.default_rng(seed)
    for _ in range(resamples):
        pick = np.concatenate([rng.integers(0, n_ref, n_ref), n_ref + rng.integers(0, n_other, n_other)])
        stats = set_statistics(distances[np.ix_(pick, pick)], is_reference[pick], bandwidth, origin=pick)
        for k, v in stats.items():
            draws[k].append(v)
    tail = 100 * (1 - confidence) / 2
    out: dict = {
        k: {"value": v, "interval": _percentiles(draws[k], tail) if resamples else None}
        for k, v in point.items()
    }
    out.update({"n_reference": n_ref, "n_other": n_other, "bandwidth": float(bandwidth)})
    return out


def _percentiles(draws: list[float], tail: float) -> list[float]:
    return [float(x) for x in np.percentile(draws, [tail, 100 - tail])]


def _percentiles(draws: list[float], tail: float) -> list[float]:
    return [float(x) for x in np.percentile(draws, [tail, 100 - tail])]
