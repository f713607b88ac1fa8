"""Overlap of two binary masks on the same grid: intersection over union (Jaccard) and Dice.

These are the one implementation of each; reconstruction scores, temporal IoU, lift metrics and silhouette
ranking all call them.
"""

from __future__ import annotations

import numpy as np


def _counts(predicted: np.ndarray, target: np.ndarray) -> tuple[int, int]:
    predicted, target = np.asarray(predicted, bool), np.asarray(target, bool)
    if predicted.shape != target.shape:
        raise ValueError(f"mask shapes differ: {predicted.shape} and {target.shape}")
    intersection = int(np.count_nonzero(predicted & target))
    return intersection, int(np.count_nonzero(predicted)) + int(np.count_nonzero(target))


def iou(predicted: np.ndarray, target: np.ndarray) -> float:
    """Intersection over union (Jaccard index) of two masks.

    Parameters
    ----------
    predicted, target : np.ndarray
        Masks of equal shape (any number of axes); non-zero is foreground.

    Returns
    -------
    float
        |P ∩ T| / |P ∪ T| in [0, 1]; 1 when both masks are empty.

    Raises
    ------
    ValueError
        If the shapes differ.

    Examples
    --------
    >>> a = np.array([1, 1, 1, 0], bool)
    >>> b = np.array([0, 1, 1, 1], bool)
    >>> iou(a, b)
    0.5
    """
    intersection, total = _counts(predicted, target)
    return intersection / (total - intersection) if total else 1.0


def dice(predicted: np.ndarray, target: np.ndarray) -> float:
    """Dice coefficient (F1 score) of two masks.

    Parameters
    ----------
    predicted, target : np.ndarray
        Masks of equal shape (any number of axes); non-zero is foreground.

    Returns
    -------
    float
        2 |P ∩ T| / (|P| + |T|) in [0, 1]; 1 when both masks are empty.

    Raises
    ------
    ValueError
        If the shapes differ.

    Examples
    --------
    >>> a = np.array([1, 1, 1, 0], bool)
    >>> b = np.array([0, 1, 1, 1], bool)
    >>> round(dice(a, b), 4)
    0.6667
    """
    intersection, total = _counts(predicted, target)
    return 2.0 * intersection / total if total else 1.0
