"""Novelty: whether generated sequences are new cells or copies of the training cells.

Each generated sequence's distance to its nearest training sequence is set against the training set's own
leave-one-out nearest-neighbour distances: a generator that draws new cells of the same kind lands about as
far from the training cells as they lie from each other (ratio about 1), a generator that returns training
cells lands much closer (ratio near 0).
"""

from __future__ import annotations

import numpy as np


def novelty(
    to_training: np.ndarray, training_distances: np.ndarray, *, copy_quantile: float = 0.05
) -> dict[str, float | int | list[float]]:
    """Compare nearest-training distances of generated sequences with the training set's own.

    Parameters
    ----------
    to_training : np.ndarray
        (G, N) distances from each generated sequence to each training sequence.
    training_distances : np.ndarray
        (N, N) distances between training sequences (N at least 2; the diagonal is ignored).
    copy_quantile : float
        A generated sequence closer to a training sequence than this quantile of the training set's
        nearest-neighbour distances counts as a copy.

    Returns
    -------
    dict
        ``median_ratio`` (median over generated sequences of nearest-training distance over the median
        training nearest-neighbour distance; about 1 for new cells, near 0 for copies), ``copies`` (fraction
        of generated sequences counted as copies), ``copy_threshold`` (the distance), ``training_nn_median``,
        ``nearest`` (each generated sequence's nearest-training distance) and ``n_generated``, ``n_training``.

    Examples
    --------
    >>> training = np.array([[0.0, 1.0, 2.0], [1.0, 0.0, 1.0], [2.0, 1.0, 0.0]])
    >>> novelty(training[:2], training)["copies"]
    1.0
    """
    to_training = np.asarray(to_training, dtype=float)
    training_distances = np.array(training_distances, dtype=float)
    if training_distances.ndim != 2 or len(training_distances) < 2:
        raise ValueError(f"need (N, N) training distances with N >= 2, got shape {training_distances.shape}")
    if to_training.ndim != 2 or to_training.shape[1] != len(training_distances):
        raise ValueError(
            f"generated-to-training distances {to_training.shape} do not match {len(training_distances)} "
            "training sequences"
        )
    np.fill_diagonal(training_distances, np.inf)
    training_nn = training_distances.min(axis=1)
    nearest = to_training.min(axis=1)
    typical = float(np.median(training_nn))
    threshold = float(np.quantile(training_nn, copy_quantile))
    return {
        "median_ratio": float(np.median(nearest) / typical) if typical > 0 else float("inf"),
        "copies": float(np.mean(nearest <= threshold)) if len(nearest) else float("nan"),
        "copy_threshold": threshold,
        "training_nn_median": typical,
        "nearest": [float(x) for x in nearest],
        "n_generated": len(nearest),
        "n_training": len(training_nn),
    }
