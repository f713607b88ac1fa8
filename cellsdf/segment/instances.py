"""From class probabilities to instance labels: one seed per interior region, grown by a watershed."""

from __future__ import annotations

import numpy as np
from scipy import ndimage
from skimage.segmentation import watershed

from cellsdf.segment.targets import BACKGROUND, INTERIOR


def instances(probabilities: np.ndarray, *, threshold: float = 0.5, min_size: int = 8) -> np.ndarray:
    """Label cells in the network's class probabilities.

    Seeds are the connected regions where the interior probability exceeds ``threshold``; each grows over
    the pixels whose foreground (interior + boundary) probability exceeds it, along rising background
    probability (:func:`skimage.segmentation.watershed`). Foreground that no seed reaches stays background.

    Parameters
    ----------
    probabilities : np.ndarray
        (3, ...) softmax of background, interior and boundary.
    threshold : float
        Probability above which a pixel is interior (seeds) or foreground (mask).
    min_size : int
        Seeds and cells of fewer pixels are dropped.

    Returns
    -------
    np.ndarray
        int32 labels 1..n over the spatial shape.

    Examples
    --------
    >>> p = np.zeros((3, 1, 9)); p[0] = 1
    >>> p[:, 0, 1:4] = [[0], [0.9], [0.1]]; p[:, 0, 5:8] = [[0], [0.9], [0.1]]
    >>> instances(p, min_size=1)[0]
    array([0, 1, 1, 1, 0, 2, 2, 2, 0], dtype=int32)
    """
    probabilities = np.asarray(probabilities, dtype=np.float32)
    interior = probabilities[INTERIOR] > threshold
    foreground = 1.0 - probabilities[BACKGROUND] > threshold
    full = np.ones((3,) * interior.ndim, dtype=bool)
    seeds = _drop_small(ndimage.label(interior, structure=full)[0], min_size)
    labels = watershed(probabilities[BACKGROUND], markers=seeds, mask=foreground | interior)
    return _drop_small(labels, min_size)


def _drop_small(labels: np.ndarray, min_size: int) -> np.ndarray:
    """Labels of fewer than ``min_size`` pixels become background; the rest are renumbered 1..n."""
    sizes = np.bincount(labels.ravel())
    keep = sizes >= min_size
    keep[0] = False
    lookup = np.zeros(sizes.size, dtype=np.int32)
    lookup[keep] = np.arange(1, int(keep.sum()) + 1, dtype=np.int32)
    return lookup[labels]
