"""The segmenter's training targets (background, cell interior, cell boundary) and input scaling."""

from __future__ import annotations

import numpy as np
from skimage.segmentation import find_boundaries

BACKGROUND, INTERIOR, BOUNDARY = 0, 1, 2
# An axis sampled this many times more coarsely than the finest is treated as a stack of planes.
ANISOTROPY = 2.0


def class_targets(labels: np.ndarray, *, spacing: tuple[float, ...] | None = None) -> np.ndarray:
    """Three classes per pixel: background, interior of a cell, or its boundary (inner pixels of its edge).

    The boundary class keeps touching cells apart: the watershed (:func:`cellsdf.segment.instances.instances`)
    grows one seed per interior region back over it.

    Parameters
    ----------
    labels : np.ndarray
        (Y, X) or (Z, Y, X) instance labels, 0 is background.
    spacing : tuple of float, optional
        Voxel size; an axis sampled more than twice as coarsely as the finest gets no boundary across it
        (the top and bottom slices of a cell in a 5-slice stack stay interior).

    Returns
    -------
    np.ndarray
        uint8 of the same shape: 0, 1 or 2.

    Examples
    --------
    >>> labels = np.zeros((5, 5), int); labels[1:4, 1:4] = 1
    >>> class_targets(labels)[2]
    array([0, 2, 1, 2, 0], dtype=uint8)
    """
    labels = np.asarray(labels)
    targets = (labels > 0).astype(np.uint8)
    coarse = _coarse_axes(labels.ndim, spacing)
    if coarse:
        # Boundaries within each plane of the fine axes.
        planes = np.moveaxis(labels, coarse, list(range(len(coarse))))
        edges = np.stack(
            [find_boundaries(p, mode="inner") for p in planes.reshape(-1, *planes.shape[len(coarse) :])]
        )
        edges = np.moveaxis(edges.reshape(planes.shape), list(range(len(coarse))), coarse)
    else:
        edges = find_boundaries(labels, mode="inner")
    targets[edges & (labels > 0)] = BOUNDARY
    return targets


def _coarse_axes(ndim: int, spacing: tuple[float, ...] | None) -> list[int]:
    if spacing is None or len(spacing) != ndim:
        return []
    finest = min(spacing)
    return [k for k, s in enumerate(spacing) if s > ANISOTROPY * finest]


def normalise(image: np.ndarray, *, low: float = 1.0, high: float = 99.8) -> np.ndarray:
    """Scale an image so that its ``low`` and ``high`` percentiles become 0 and 1 (as StarDist and cellpose).

    Parameters
    ----------
    image : np.ndarray
        Grey levels of any numeric type.
    low, high : float
        Percentiles mapped to 0 and 1.

    Returns
    -------
    np.ndarray
        float32, not clipped; a constant image becomes zeros.

    Examples
    --------
    >>> normalise(np.arange(101.0), low=0, high=100)[[0, 50, 100]]
    array([0. , 0.5, 1. ], dtype=float32)
    """
    image = np.asarray(image, dtype=np.float32)
    lo, hi = np.percentile(image, [low, high])
    if hi <= lo:
        return np.zeros_like(image)
    return (image - np.float32(lo)) / np.float32(hi - lo)
