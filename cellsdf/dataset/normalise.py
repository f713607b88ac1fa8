"""Where a cell is and how large: bounding boxes, centres and the data-set-wide scale into [-1, 1]³."""

from __future__ import annotations

import numpy as np
from scipy import ndimage


def frame_boxes(masks: np.ndarray) -> np.ndarray:
    """Bounding box of each frame.

    Parameters
    ----------
    masks : np.ndarray
        bool (T, Z, Y, X), every frame non-empty.

    Returns
    -------
    np.ndarray
        int (T, 2, 3): first and last foreground voxel index (inclusive) along (z, y, x).
    """
    boxes = np.empty((len(masks), 2, 3), dtype=np.int64)
    for i, frame in enumerate(masks):
        (box,) = ndimage.find_objects(frame.view(np.uint8))
        boxes[i] = [[s.start for s in box], [s.stop - 1 for s in box]]
    return boxes


def centres(boxes: np.ndarray, spacing: tuple[float, float, float], mode: str) -> np.ndarray:
    """Centre of each frame in µm.

    Parameters
    ----------
    boxes : np.ndarray
        int (T, 2, 3) from :func:`frame_boxes`.
    spacing : tuple of float
        Voxel size (z, y, x) in µm.
    mode : {'sequence', 'frame'}
        'sequence': one centre (of the union box) for all frames, so motion inside the sequence is kept;
        'frame': each frame centred on its own box.

    Returns
    -------
    np.ndarray
        float (T, 3) centres (z, y, x) in µm.
    """
    if mode == "sequence":
        lo, hi = boxes[:, 0].min(axis=0), boxes[:, 1].max(axis=0)
        return np.tile(0.5 * (lo + hi) * np.asarray(spacing), (len(boxes), 1))
    if mode == "frame":
        return 0.5 * (boxes[:, 0] + boxes[:, 1]) * np.asarray(spacing)
    raise ValueError(f"centre must be 'sequence' or 'frame', got {mode!r}")


def half_extent(boxes: np.ndarray, spacing: tuple[float, float, float], centre: np.ndarray) -> float:
    """Largest distance (µm, along any axis) from a frame's centre to the outer face of its voxels.

    Parameters
    ----------
    boxes : np.ndarray
        int (T, 2, 3).
    spacing : tuple of float
        Voxel size (z, y, x) in µm.
    centre : np.ndarray
        (T, 3) centres in µm.

    Returns
    -------
    float
        Half the side of the smallest cube around the centres that holds every frame.
    """
    spacing = np.asarray(spacing)
    low = centre - (boxes[:, 0] - 0.5) * spacing
    high = (boxes[:, 1] + 0.5) * spacing - centre
    return float(max(low.max(), high.max()))


def crop_padded(volume: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Cut ``volume[lo:hi]`` out of a 3D array, filling with zeros where the box leaves it.

    Parameters
    ----------
    volume : np.ndarray
        (Z, Y, X).
    lo, hi : np.ndarray
        (3,) start (inclusive) and stop (exclusive) indices; may lie outside the volume.

    Returns
    -------
    np.ndarray
        Shape ``hi - lo``, same dtype.
    """
    out = np.zeros(tuple(hi - lo), dtype=volume.dtype)
    src_lo = np.maximum(lo, 0)
    src_hi = np.minimum(hi, volume.shape)
    if np.all(src_hi > src_lo):
        dst = tuple(slice(a - b, c - b) for a, b, c in zip(src_lo, lo, src_hi, strict=True))
        out[dst] = volume[tuple(slice(a, c) for a, c in zip(src_lo, src_hi, strict=True))]
    return out
