"""Ellipsoids in place of cells: the control for benchmarks of learned shapes.

Published work argues that learned cell shapes train segmentation methods better than "simple geometric
objects like ellipsoids". The control keeps everything but the shape: every connected component of a frame
becomes the solid ellipsoid with its centroid, its principal axes and axis ratios, and its volume, so sizes,
elongations, orientations, counts and motion follow the cells they stand for, and a dividing cell becomes a
pair of ellipsoids.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import ndimage

# What a benchmark's cells are (``cellsdf benchmark shapes=...``): the cells themselves, or their ellipsoids.
SHAPES = ("cells", "ellipsoids")
# Least semi-axis in voxels: an ellipsoid always holds the voxel at its centre.
MIN_SEMI_AXIS = 0.5


def ellipsoid_mask(mask: np.ndarray) -> np.ndarray:
    """Replace every connected component of a mask by the solid ellipsoid of the same moments and volume.

    Each fully connected component (26 neighbours in 3D, 8 in 2D) is fitted by the ellipsoid (an ellipse in
    2D) with its centroid and its principal axes, whose semi-axes are in the ratios of the standard
    deviations along those axes (a solid ellipsoid's variance along a principal axis is a² / 5 in 3D, a² / 4
    in 2D), scaled so that its volume is the component's voxel count. Ellipsoids are rendered on the frame's
    voxel centres (clipped at its border); where two overlap, each voxel goes to the one it lies deeper in,
    and where they meet, a one-voxel gap keeps them apart: the components stay as many objects (a dividing
    cell becomes two ellipsoids, never one).

    Parameters
    ----------
    mask : np.ndarray
        bool (Z, Y, X) or (Y, X).

    Returns
    -------
    np.ndarray
        bool, the shape of ``mask``.

    Raises
    ------
    TypeError
        If ``mask`` is not bool.
    ValueError
        If ``mask`` is not 2D or 3D.

    Notes
    -----
    The fit needs no voxel size: moments and volumes transform linearly with the voxel grid, so the ellipsoid
    fitted in voxel coordinates is the one fitted in physical coordinates on anisotropic voxels. Each voxel
    counts as a small cube (variance 1/12 along each axis, Sheppard's correction): a component one voxel thin,
    or a single voxel, gives an ellipsoid at least that thick instead of a degenerate one.

    Examples
    --------
    An L of two touching boxes becomes one ellipsoid of about its volume and centroid:

    >>> mask = np.zeros((12, 20, 20), bool)
    >>> mask[4:8, 4:16, 4:8] = mask[4:8, 12:16, 8:16] = True
    >>> fitted = ellipsoid_mask(mask)
    >>> int(mask.sum()), int(fitted.sum()), ndimage.label(fitted, np.ones((3, 3, 3)))[1]
    (320, 324, 1)
    """
    mask = np.asarray(mask)
    if mask.dtype != bool:
        raise TypeError(f"expected a bool mask, got dtype {mask.dtype}")
    if mask.ndim not in (2, 3):
        raise ValueError(f"expected a 2D (Y, X) or 3D (Z, Y, X) mask, got shape {mask.shape}")
    ids, count = ndimage.label(mask, structure=np.ones((3,) * mask.ndim, bool))
    ellipsoids = [
        _fit(np.argwhere(ids[box] == k) + [s.start for s in box])
        for k, box in enumerate(ndimage.find_objects(ids), start=1)
    ]
    labels = np.zeros(mask.shape, np.int32)
    for k, ellipsoid in enumerate(ellipsoids, start=1):
        _render(labels, k, ellipsoid, ellipsoids)
    if count > 1:
        # A voxel next to a higher label leaves: afterwards no two labels touch in any direction.
        box = tuple(
            slice(max(s.start - 1, 0), s.stop + 1)
            for s in ndimage.find_objects((labels > 0).astype(np.uint8))[0]
        )
        near = labels[box]
        near[ndimage.maximum_filter(near, size=3) > near] = 0
    return labels > 0


def shaped_mask(mask: np.ndarray, *, shapes: str) -> np.ndarray:
    """Return a benchmark frame's mask with the shapes asked for: the cells as they are, or their ellipsoids.

    Parameters
    ----------
    mask : np.ndarray
        bool (Z, Y, X) or (Y, X).
    shapes : str
        One of :data:`SHAPES`: ``"cells"`` returns ``mask``, ``"ellipsoids"`` :func:`ellipsoid_mask` of it.

    Returns
    -------
    np.ndarray
        bool, the shape of ``mask``.

    Raises
    ------
    ValueError
        If ``shapes`` is not one of :data:`SHAPES`.
    """
    if shapes not in SHAPES:
        raise ValueError(f"shapes must be one of {', '.join(SHAPES)}, got {shapes!r}")
    return ellipsoid_mask(mask) if shapes == "ellipsoids" else mask


def _fit(points: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return the centre, principal axes (columns) and semi-axes of the ellipsoid of a component's voxels."""
    n, dims = points.shape
    centre = points.mean(axis=0)
    spread = np.cov(points, rowvar=False, bias=True).reshape(dims, dims) + np.eye(dims) / 12
    variances, axes = np.linalg.eigh(spread)
    semi = np.sqrt((dims + 2) * np.clip(variances, 1 / 12, None))
    ball = math.pi ** (dims / 2) / math.gamma(dims / 2 + 1)  # volume of the unit ball
    semi *= (n / (ball * semi.prod())) ** (1 / dims)
    return centre, axes, np.maximum(semi, MIN_SEMI_AXIS)


def _depth(points: np.ndarray, ellipsoid: tuple[np.ndarray, np.ndarray, np.ndarray]) -> np.ndarray:
    """Squared normalised radius of points in an ellipsoid: <= 1 inside, 0 at its centre."""
    centre, axes, semi = ellipsoid
    return ((((points - centre) @ axes) / semi) ** 2).sum(axis=-1)


def _render(
    labels: np.ndarray,
    k: int,
    ellipsoid: tuple[np.ndarray, np.ndarray, np.ndarray],
    ellipsoids: list[tuple[np.ndarray, np.ndarray, np.ndarray]],
) -> None:
    """Write label ``k`` on the voxels inside an ellipsoid, within its bounding box clipped to the frame."""
    centre, axes, semi = ellipsoid
    reach = np.sqrt(((axes * semi) ** 2).sum(axis=1))  # half the bounding box's side along each array axis
    low = np.maximum(np.floor(centre - reach).astype(int), 0)
    high = np.minimum(np.ceil(centre + reach).astype(int) + 1, labels.shape)
    if np.any(high <= low):
        return
    box = tuple(slice(a, b) for a, b in zip(low, high, strict=True))
    grid = np.stack(
        np.meshgrid(*(np.arange(a, b) for a, b in zip(low, high, strict=True)), indexing="ij"), -1
    )
    depth = _depth(grid, ellipsoid)
    inside = depth <= 1
    region = labels[box]
    taken = inside & (region > 0)
    if taken.any():
        # Voxels another ellipsoid holds go to the one they lie deeper in.
        others = region[taken]
        theirs = np.empty(others.shape)
        for other in np.unique(others):
            theirs[others == other] = _depth(grid[taken][others == other], ellipsoids[other - 1])
        lost = np.zeros(inside.shape, bool)
        lost[taken] = depth[taken] >= theirs
        inside &= ~lost
    region[inside] = k
