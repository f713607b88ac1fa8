"""Scores of an instance segmentation against ground truth: CTC SEG and DET, and average precision at IoU 0.5.

SEG and DET follow the Cell Tracking Challenge (Maška et al. 2014; Matula et al. 2015) as py-ctcmetrics
computes them; the ground truth's labels serve as the DET reference markers. Counts are pooled over all frames
of a test set, so a set's score weighs every cell once.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from cellsdf.benchmark.seg import seg_jaccards

# AOGM-D weights of the CTC's DET: splitting a merged object, adding a missed one, deleting a false one.
W_SPLIT, W_MISSED, W_FALSE = 5, 10, 1


def overlaps(truth: np.ndarray, predicted: np.ndarray) -> np.ndarray:
    """Contingency table: pixels shared by each ground-truth label (rows) and predicted label (columns).

    Row and column 0 are the background.

    Examples
    --------
    >>> overlaps(np.array([0, 1, 1, 2]), np.array([1, 1, 0, 0]))
    array([[0, 1],
           [1, 1],
           [1, 0]])
    """
    t = np.asarray(truth).ravel().astype(np.int64)
    p = np.asarray(predicted).ravel().astype(np.int64)
    n_p = int(p.max(initial=0)) + 1
    counts = np.bincount(t * n_p + p, minlength=(int(t.max(initial=0)) + 1) * n_p)
    return counts.reshape(-1, n_p)


def frame_counts(truth: np.ndarray, predicted: np.ndarray) -> dict:
    """Count what DET and AP need in one frame.

    Parameters
    ----------
    truth, predicted : np.ndarray
        Instance labels of one shape, 0 is background.

    Returns
    -------
    dict
        ``objects`` (ground-truth objects), ``predicted``; DET's ``missed`` (no predicted object covers more
        than half of it), ``false`` (a predicted object covering more than half of none) and ``splits``
        (extra objects a predicted object covers more than half of); AP's ``matched`` (pairs with IoU > 0.5).
    """
    table = overlaps(truth, predicted)
    area_t, area_p = table.sum(axis=1), table.sum(axis=0)
    present_t = np.flatnonzero(area_t[1:]) + 1
    present_p = np.flatnonzero(area_p[1:]) + 1
    table = table[np.ix_(present_t, present_p)]
    area_t, area_p = area_t[present_t], area_p[present_p]
    covers = 2 * table > area_t[:, None]
    per_predicted = covers.sum(axis=0)
    iou = table / (area_t[:, None] + area_p[None, :] - table) if table.size else table
    return {
        "objects": int(present_t.size),
        "predicted": int(present_p.size),
        "missed": int((~covers.any(axis=1)).sum()),
        "false": int((per_predicted == 0).sum()),
        "splits": int(np.maximum(per_predicted - 1, 0).sum()),
        # IoU > 0.5 pairs are one-to-one, so counting them is the optimal matching.
        "matched": int((iou > 0.5).sum()),
    }


def segmentation_scores(pairs: Iterable[tuple[np.ndarray, np.ndarray]]) -> dict:
    """SEG, DET and AP at IoU 0.5 of predicted labels over a set of frames.

    Parameters
    ----------
    pairs : iterable of (truth, predicted)
        Instance labels per frame.

    Returns
    -------
    dict
        ``SEG`` (mean Jaccard of every ground-truth object with the predicted object covering more than half
        of it), ``DET`` (1 - min(AOGM-D, AOGM-D0) / AOGM-D0 with AOGM-D = 5 splits + 10 missed + 1 false,
        AOGM-D0 = 10 objects), ``AP50`` (matched / (matched + false positives + false negatives) at
        IoU > 0.5), and the pooled counts.

    Raises
    ------
    ValueError
        If the ground truth holds no object.
    """
    jaccards, totals = [], dict.fromkeys(("objects", "predicted", "missed", "false", "splits", "matched"), 0)
    for truth, predicted in pairs:
        jaccards.append(seg_jaccards(np.asarray(truth), np.asarray(predicted)))
        for key, value in frame_counts(truth, predicted).items():
            totals[key] += value
    if totals["objects"] == 0:
        raise ValueError("the ground truth has no labelled object; SEG and DET are undefined")
    aogm_0 = W_MISSED * totals["objects"]
    aogm = W_SPLIT * totals["splits"] + W_MISSED * totals["missed"] + W_FALSE * totals["false"]
    unmatched = totals["predicted"] - totals["matched"] + totals["objects"] - totals["matched"]
    return {
        "SEG": float(np.concatenate(jaccards).mean()),
        "DET": 1.0 - min(aogm, aogm_0) / aogm_0,
        "AP50": totals["matched"] / (totals["matched"] + unmatched),
        **totals,
    }


def score_line(scores: dict) -> str:
    """Format SEG, DET and AP50 of :func:`segmentation_scores` on one line.

    Examples
    --------
    >>> score_line({"SEG": 0.75, "DET": 0.9, "AP50": 0.8})
    'SEG 0.750, DET 0.900, AP50 0.800'
    """
    return ", ".join(f"{key} {scores[key]:.3f}" for key in ("SEG", "DET", "AP50"))
