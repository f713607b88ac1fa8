"""Distances between sets of shapes given as surface point clouds: MMD, coverage and 1-NN accuracy.

Sets of sequences are compared sequence against sequence (:func:`sequence_chamfer`), since frames of one cell
are not independent samples. Each shape is a fixed number of points drawn uniformly on its surface, in µm and
centred on their mean: a shape's position in the field does not count, its size does. Two shapes are compared
by the symmetric Chamfer distance of :func:`cellsdf.evaluate.reconstruction.surface_distances`.
"""

from __future__ import annotations

import numpy as np
from scipy.spatial import cKDTree

SHAPE_METRICS = ("mmd", "coverage", "1nna")


def centred(points: np.ndarray) -> np.ndarray:
    """Shift a point cloud so its mean is the origin.

    Parameters
    ----------
    points : np.ndarray
        (N, 3) points.

    Returns
    -------
    np.ndarray
        float32 (N, 3).
    """
    return (points - points.mean(axis=0)).astype(np.float32)


def chamfer_matrix(shapes: list[np.ndarray]) -> np.ndarray:
    """Symmetric Chamfer distances between every pair of shapes.

    The same distance as :func:`cellsdf.evaluate.reconstruction.surface_distances` (the mean of the two mean
    nearest-neighbour distances), computed with one KD-tree query per shape over the points of all shapes.

    Parameters
    ----------
    shapes : list of np.ndarray
        (N, 3) point clouds in µm, all with the same number of points.

    Returns
    -------
    np.ndarray
        float (S, S), zero on the diagonal.
    """
    points = np.concatenate(shapes)
    count = len(shapes)
    # directed[j, i]: mean distance from the points of shape j to shape i.
    directed = np.empty((count, count))
    for i, shape in enumerate(shapes):
        directed[:, i] = cKDTree(shape).query(points, workers=-1)[0].reshape(count, -1).mean(axis=1)
    return 0.5 * (directed + directed.T)


def shape_set_metrics(real: list[np.ndarray], generated: list[np.ndarray]) -> dict[str, float | int]:
    """Compare a set of generated shapes with a set of real ones.

    - ``mmd`` (minimum matching distance, µm): for each real shape the Chamfer distance to its closest
      generated shape, averaged; small when every real shape has a close generated one (fidelity).
    - ``coverage``: the fraction of real shapes that are the closest real shape of at least one generated
      shape; small when the generated shapes collapse onto a few modes (diversity).
    - ``1nna``: accuracy of the leave-one-out 1-nearest-neighbour classifier that tells real from generated in
      the union of both sets; 0.5 when the sets are indistinguishable, 1 when they are apart.

    Parameters
    ----------
    real, generated : list of np.ndarray
        Point clouds (N, 3) in µm, centred (see :func:`centred`); each list non-empty.

    Returns
    -------
    dict
        ``mmd``, ``coverage``, ``1nna``, ``n_real``, ``n_generated``.
    """
    if not real or not generated:
        raise ValueError("both shape sets need at least one shape")
    return distance_set_metrics(chamfer_matrix([*real, *generated]), len(real))


def distance_set_metrics(distances: np.ndarray, n_real: int) -> dict[str, float | int]:
    """MMD, coverage and 1-NNA (as :func:`shape_set_metrics`) from the distances between all members.

    Parameters
    ----------
    distances : np.ndarray
        (N, N) distances, real members first; infinite where two members cannot be compared.
    n_real : int
        Real members (at least 1, and at least 1 generated).

    Returns
    -------
    dict
        ``mmd`` (in the distances' unit), ``coverage``, ``1nna``, ``n_real``, ``n_generated``.

    Examples
    --------
    >>> d = np.array([[0.0, 1.0, 5.0], [1.0, 0.0, 5.0], [5.0, 5.0, 0.0]])
    >>> distance_set_metrics(d, 2)["1nna"]
    0.6666666666666666
    """
    distances = np.array(distances, dtype=float)
    n = int(n_real)
    if not 0 < n < len(distances):
        raise ValueError(f"need at least one real and one generated member, got {n} of {len(distances)}")
    cross = distances[:n, n:]
    np.fill_diagonal(distances, np.inf)
    is_real = np.arange(len(distances)) < n
    nearest = np.argmin(distances, axis=1)
    return {
        "mmd": float(cross.min(axis=1).mean()),
        "coverage": float(len(np.unique(cross.argmin(axis=0))) / n),
        "1nna": float(np.mean(is_real[nearest] == is_real)),
        "n_real": n,
        "n_generated": len(distances) - n,
    }


def sequence_chamfer(sequences: list[dict[int, np.ndarray]]) -> np.ndarray:
    """Distances between sequences of shapes: the mean Chamfer distance over the frame indices both have.

    Frames of one sequence are not independent samples, so shape sets are compared sequence against
    sequence, frame index by frame index.

    Parameters
    ----------
    sequences : list of dict of int to np.ndarray
        Per sequence, frame index to its (N, 3) point cloud (µm, centred); all clouds of one size.

    Returns
    -------
    np.ndarray
        float (S, S) in µm, zero on the diagonal, infinite for two sequences without a common frame index.
    """
    count = len(sequences)
    total, shared = np.zeros((count, count)), np.zeros((count, count))
    for t in sorted({t for s in sequences for t in s}):
        members = [i for i, s in enumerate(sequences) if t in s]
        if len(members) < 2:
            continue
        block = np.ix_(members, members)
        total[block] += chamfer_matrix([sequences[i][t] for i in members])
        shared[block] += 1
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.where(shared > 0, total / np.maximum(shared, 1), np.inf)
    np.fill_diagonal(out, 0.0)
    return out
