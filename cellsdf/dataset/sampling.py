"""Point samples of a gridded SDF for training: most near the surface, the rest uniform in the cube."""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

from cellsdf.dataset.sdf import interpolate_sdf


def local_thickness(sdf: np.ndarray, step: np.ndarray) -> np.ndarray:
    """Half-thickness of the cell near each voxel: the deepest inside distance within 4 voxels, in voxels.

    A filopodium 3 voxels across gets about 1.5 wherever its surface is; the body of a cell gets its own
    depth, up to about 4. Voxels farther than 4 voxels from the cell get 0.

    Parameters
    ----------
    sdf : np.ndarray
        float (Z, Y, X), negative inside.
    step : np.ndarray
        (3,) voxel size (z, y, x) in the units of ``sdf``.

    Returns
    -------
    np.ndarray
        float32 (Z, Y, X).

    Examples
    --------
    >>> rod = np.ones((9, 9, 9), np.float32)
    >>> rod[:, 4, 4] = -0.5
    >>> float(local_thickness(rod, np.ones(3))[4, 4, 5])
    0.5
    """
    depth = np.maximum(-sdf, 0.0) / float(np.min(step))
    return ndi.maximum_filter(depth.astype(np.float32), size=9, mode="nearest")


def sample_points(
    sdf: np.ndarray,
    origin: np.ndarray,
    step: np.ndarray,
    n: int,
    rng: np.random.Generator,
    *,
    surface_fraction: float = 0.8,
    sigmas: tuple[float, ...] = (0.01, 0.05),
    thin_power: float = 0.0,
    interior_fraction: float = 0.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Draw training points in [-1, 1]³ and their signed distances.

    Near-surface points start at a random voxel next to the zero level, move uniformly within that voxel and
    then by Gaussian noise; the near-surface share is split evenly over the noise scales ``sigmas``.
    Interior points lie uniformly within random voxels inside the cell. With ``thin_power`` > 0 the start
    voxels of both are drawn with weight ``max(h, 1) ** -thin_power``, ``h`` the local half-thickness in
    voxels (:func:`local_thickness`): thin parts such as filopodia, whose sign a decoder gets wrong first, get
    more samples than their share of the surface and of the volume.

    Parameters
    ----------
    sdf : np.ndarray
        float (Z, Y, X), normalised units, negative inside.
    origin : np.ndarray
        (3,) normalised coordinates (z, y, x) of voxel (0, 0, 0).
    step : np.ndarray
        (3,) voxel size (z, y, x) in normalised units.
    n : int
        Number of points.
    rng : np.random.Generator
        Source of randomness.
    surface_fraction : float
        Share of points near the surface, in [0, 1].
    sigmas : tuple of float
        Standard deviations of the Gaussian jitter, in normalised units.
    thin_power : float
        Exponent of the thin-part weighting, >= 0; 0 draws start voxels uniformly.
    interior_fraction : float
        Share of points inside the cell, in [0, 1 - surface_fraction]: along a filopodium one voxel deep
        the surface samples' jitter lands mostly outside, so the decoder sees few of its negative values.

    Returns
    -------
    points : np.ndarray
        float32 (n, 3) coordinates (z, y, x), clipped to [-1, 1].
    values : np.ndarray
        float32 (n,) signed distances at the points.
    """
    if not 0.0 <= surface_fraction <= 1.0:
        raise ValueError(f"surface_fraction must lie in [0, 1], got {surface_fraction}")
    if not 0.0 <= interior_fraction <= 1.0 - surface_fraction:
        raise ValueError(
            f"interior_fraction must lie in [0, 1 - surface_fraction = {1.0 - surface_fraction:g}], "
            f"got {interior_fraction}"
        )
    if not thin_power >= 0.0:
        raise ValueError(f"thin_power must be >= 0, got {thin_power}")
    thickness = local_thickness(sdf, step).ravel() if thin_power > 0.0 else None

    def draw(candidates: np.ndarray, count: int) -> np.ndarray:
        """Voxel indices (count, 3) drawn from flat indices, weighted toward thin parts by ``thin_power``."""
        weights = None
        if thickness is not None:
            weights = np.maximum(thickness[candidates], 1.0) ** -thin_power
            weights /= weights.sum()
        return np.stack(np.unravel_index(rng.choice(candidates, count, p=weights), sdf.shape), axis=1)

    near = np.flatnonzero(np.abs(sdf) <= step.max())
    inside = np.flatnonzero(sdf < 0) if interior_fraction > 0.0 else near[:0]
    n_surface = int(round(n * surface_fraction)) if near.size else 0
    n_interior = int(round(n * interior_fraction)) if inside.size else 0
    parts = []
    if n_surface:
        voxel = origin + (draw(near, n_surface) + rng.uniform(-0.5, 0.5, (n_surface, 3))) * step
        scale = np.asarray(sigmas)[np.arange(n_surface) % len(sigmas)]
        parts.append(voxel + rng.normal(size=voxel.shape) * scale[:, None])
    if n_interior:
        parts.append(origin + (draw(inside, n_interior) + rng.uniform(-0.5, 0.5, (n_interior, 3))) * step)
    parts.append(rng.uniform(-1.0, 1.0, (n - n_surface - n_interior, 3)))
    points = np.clip(np.concatenate(parts), -1.0, 1.0)
    return points.astype(np.float32), interpolate_sdf(sdf, origin, step, points)
