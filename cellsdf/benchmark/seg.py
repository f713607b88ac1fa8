"""The Cell Tracking Challenge SEG measure and an Otsu-threshold baseline segmentation."""

from __future__ import annotations

import numpy as np
from skimage.filters import threshold_otsu
from skimage.measure import label as connected_components


def seg_jaccards(truth: np.ndarray, predicted: np.ndarray, timelapse: bool = False) -> np.ndarray:
    """Jaccard index of each ground-truth object with the predicted object covering more than half of it.

    Parameters
    ----------
    truth, predicted : np.ndarray
        Integer label images of one shape, 0 is background.
    timelapse : bool
        The first axis is time: objects of different frames are different objects even with one label.

    Returns
    -------
    np.ndarray
        float64, one value per ground-truth object (ordered by frame, then label); 0 where no predicted
        object covers more than half of it.

    Raises
    ------
    ValueError
        If shapes differ or labels are not non-negative integers.
    """
    truth, predicted = np.asarray(truth), np.asarray(predicted)
    if truth.shape != predicted.shape:
        raise ValueError(f"truth {truth.shape} and predicted {predicted.shape} differ in shape")
    for what, array in (("truth", truth), ("predicted", predicted)):
        if not np.issubdtype(array.dtype, np.integer) or (array.size and array.min() < 0):
            raise ValueError(f"{what} must hold non-negative integer labels, got {array.dtype}")
    frames = np.arange(truth.shape[0]) if timelapse and truth.ndim else np.zeros(1, dtype=np.int64)
    frame = np.broadcast_to(frames.reshape((-1,) + (1,) * (truth.ndim - 1)), truth.shape).ravel()
    t = truth.ravel().astype(np.int64)
    p = predicted.ravel().astype(np.int64)
    # Fold (frame, label) into one integer so that 1D np.unique builds the contingency table.
    n_t, n_p = int(t.max(initial=0)) + 1, int(p.max(initial=0)) + 1
    t_key = frame * n_t + t
    p_key = frame * n_p + p
    gt_keys, gt_area = np.unique(t_key[t > 0], return_counts=True)
    pred_keys, pred_area = np.unique(p_key[p > 0], return_counts=True)
    both = (t > 0) & (p > 0)
    pair_keys, overlap = np.unique(t_key[both] * (n_p * frames.size) + p_key[both], return_counts=True)
    pair_t, pair_p = np.divmod(pair_keys, n_p * frames.size)
    area_t = gt_area[np.searchsorted(gt_keys, pair_t)]
    area_p = pred_area[np.searchsorted(pred_keys, pair_p)]
    # More than half of the object: at most one predicted object can pass, so no tie-breaking is needed.
    match = 2 * overlap > area_t
    jaccard = np.zeros(gt_keys.size)
    jaccard[np.searchsorted(gt_keys, pair_t[match])] = overlap[match] / (
        area_t[match] + area_p[match] - overlap[match]
    )
    return jaccard


def seg_measure(truth: np.ndarray, predicted: np.ndarray, timelapse: bool = False) -> float:
    """CTC SEG: mean over ground-truth objects of the Jaccard index with their matching predicted object.

    Parameters
    ----------
    truth, predicted : np.ndarray
        Integer label images of one shape, 0 is background.
    timelapse : bool
        The first axis is time; the mean runs over the objects of all frames, as CTC does.

    Returns
    -------
    float
        In [0, 1]; 1 when every object is segmented exactly. False positives do not lower it.

    Raises
    ------
    ValueError
        If the ground truth has no object (SEG is undefined), or as ``seg_jaccards``.
    """
    jaccard = seg_jaccards(truth, predicted, timelapse)
    if jaccard.size == 0:
        raise ValueError("the ground truth has no labelled object; SEG is undefined")
    return float(jaccard.mean())


def otsu_baseline(image: np.ndarray) -> np.ndarray:
    """Segment an image by Otsu's threshold and label the connected components (full connectivity).

    Parameters
    ----------
    image : np.ndarray
        One grey-level image (2D, or 3D for a volume); for a time-lapse, call it per frame.

    Returns
    -------
    np.ndarray
        uint16 labels of the same shape; all zero for a constant image.

    Raises
    ------
    ValueError
        If there are more than 65535 components.
    """
    image = np.asarray(image)
    if image.size == 0 or image.min() == image.max():
        return np.zeros(image.shape, dtype=np.uint16)
    labels = connected_components(image > threshold_otsu(image))
    if labels.max() > np.iinfo(np.uint16).max:
        raise ValueError(f"{labels.max()} components do not fit in uint16 labels")
    return labels.astype(np.uint16)
