"""Per-frame agreement of a reconstructed mask with its target: IoU, Dice, Chamfer, 95% Hausdorff.

IoU and Dice come from :mod:`cellsdf.geometry.overlap`. This is the one implementation of the frame score;
``cellsdf evaluate`` and ``cellsdf reconstruct`` both call it.
"""

from __future__ import annotations

import numpy as np
from scipy.spatial import cKDTree

from cellsdf.geometry.overlap import dice, iou
from cellsdf.geometry.surface import crop_box, surface_mesh


def surface_distances(
    a: np.ndarray, b: np.ndarray, *, tree_a: cKDTree | None = None, tree_b: cKDTree | None = None
) -> dict[str, float]:
    """Symmetric Chamfer distance and 95% Hausdorff distance between two surface point sets.

    Parameters
    ----------
    a, b : np.ndarray
        (N, 3) and (M, 3) points in µm.
    tree_a, tree_b : cKDTree, optional
        KD-trees of ``a`` and ``b`` when already built (comparing many shapes reuses them).

    Returns
    -------
    dict
        ``chamfer``: the mean of the two mean nearest-neighbour distances a to b and b to a (µm), an average
        surface distance; ``hausdorff95``: the larger of the two 95th percentiles of those distances (µm).
    """
    to_b = (cKDTree(b) if tree_b is None else tree_b).query(a)[0]
    to_a = (cKDTree(a) if tree_a is None else tree_a).query(b)[0]
    return {
        "chamfer": 0.5 * (float(to_b.mean()) + float(to_a.mean())),
        "hausdorff95": max(float(np.percentile(to_b, 95)), float(np.percentile(to_a, 95))),
    }


def mask_surface(mask: np.ndarray, spacing: tuple[float, float, float]) -> np.ndarray | None:
    """Return the vertices (µm, in the grid's frame) of a mask's surface mesh, or None for an empty mask.

    Parameters
    ----------
    mask : np.ndarray
        bool (Z, Y, X).
    spacing : tuple of float
        Voxel size (z, y, x) in µm.

    Returns
    -------
    np.ndarray or None
        (N, 3) vertices.
    """
    cropped = crop_box(mask)
    if cropped is None:
        return None
    return np.asarray(surface_mesh(cropped[0], spacing, origin=cropped[1]).vertices)


def reconstruction_metrics(
    predicted: np.ndarray, target: np.ndarray, spacing: tuple[float, float, float]
) -> dict[str, float | None]:
    """Compare a reconstructed frame with the true one.

    Parameters
    ----------
    predicted, target : np.ndarray
        bool (Z, Y, X) on the same grid.
    spacing : tuple of float
        Voxel size (z, y, x) in µm.

    Returns
    -------
    dict
        ``iou``, ``dice``, ``chamfer`` (µm) and ``hausdorff95`` (µm); the two distances are None when either
        mask is empty.
    """
    out: dict[str, float | None] = {"iou": iou(predicted, target), "dice": dice(predicted, target)}
    a, b = mask_surface(predicted, spacing), mask_surface(target, spacing)
    if a is None or b is None:
        return {**out, "chamfer": None, "hausdorff95": None}
    return {**out, **surface_distances(a, b)}
