"""3D guesses from one 2D mask without a shape model: the ellipsoid and the extrusion (cylinder) baselines.

Both look along z (the mask's own view) and are centred in depth, as a lift from one view is. Their depth is
the mean of the mask's in-plane axes, taken from the ellipse with the mask's second moments (the axes of an
ellipse with covariance C are 2·√eigenvalues(C), as in scikit-image ``regionprops``).
"""

from __future__ import annotations

import numpy as np

from cellsdf.geometry.grid import grid_axis


def _moments(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return the moment ellipse's centroid (y, x), semi-axes and directions (columns), in world units."""
    axis = grid_axis(mask.shape[0])
    yy, xx = np.meshgrid(axis, axis, indexing="ij")
    points = np.stack([yy[mask], xx[mask]], axis=1)
    centroid = points.mean(axis=0)
    pixel = axis[1] - axis[0]
    # A pixel is a square, not a point: its own variance (pixel² / 12) keeps thin masks' ellipses open.
    covariance = np.cov(points, rowvar=False, bias=True) + np.eye(2) * pixel**2 / 12.0
    variances, directions = np.linalg.eigh(covariance)
    return centroid, 2.0 * np.sqrt(variances), directions


def baseline_depth(mask: np.ndarray) -> float:
    """Depth semi-axis of both baselines: the mean of the moment ellipse's semi-axes (world units)."""
    return float(_moments(mask)[1].mean())


def ellipsoid_baseline(mask: np.ndarray) -> np.ndarray:
    """Ellipsoid with the mask's moment ellipse in-plane and the mean in-plane semi-axis as depth semi-axis.

    Parameters
    ----------
    mask : np.ndarray
        bool (N, N) silhouette seen along z.

    Returns
    -------
    np.ndarray
        bool (N, N, N) volume on the world grid, centred at depth 0.
    """
    centroid, semi, directions = _moments(mask)
    axis = grid_axis(mask.shape[0])
    zz, yy, xx = np.meshgrid(axis, axis, axis, indexing="ij")
    offsets = np.stack([yy - centroid[0], xx - centroid[1]], axis=-1) @ directions
    depth = semi.mean()
    return (offsets[..., 0] / semi[0]) ** 2 + (offsets[..., 1] / semi[1]) ** 2 + (zz / depth) ** 2 <= 1.0


def extrusion_baseline(mask: np.ndarray) -> np.ndarray:
    """Extrude the mask along z over the ellipsoid baseline's depth: a generalised cylinder.

    Parameters
    ----------
    mask : np.ndarray
        bool (N, N) silhouette seen along z.

    Returns
    -------
    np.ndarray
        bool (N, N, N) volume, centred at depth 0.
    """
    axis = grid_axis(mask.shape[0])
    slab = np.abs(axis) <= baseline_depth(mask)
    return slab[:, None, None] & mask[None, :, :]
