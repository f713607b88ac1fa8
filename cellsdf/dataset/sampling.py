"""Point samples of a gridded SDF for training: most near the surface, the rest uniform in the cube."""

from __future__ import annotations

import numpy as np

from cellsdf.dataset.sdf import interpolate_sdf


def sample_points(
    sdf: np.ndarray,
    origin: np.ndarray,
    step: np.ndarray,
    n: int,
    rng: np.random.Generator,
    surface_fraction: float = 0.8,
    sigmas: tuple[float, ...] = (0.01, 0.05),
) -> tuple[np.ndarray, np.ndarray]:
    """Draw training points in [-1, 1]³ and their signed distances.

    Near-surface points start at a random voxel next to the zero level, move uniformly within that voxel and
    then by Gaussian noise; the near-surface share is split evenly over the noise scales ``sigmas``.

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

    Returns
    -------
    points : np.ndarray
        float32 (n, 3) coordinates (z, y, x), clipped to [-1, 1].
    values : np.ndarray
        float32 (n,) signed distances at the points.
    """
    if not 0.0 <= surface_fraction <= 1.0:
        raise ValueError(f"surface_fraction must lie in [0, 1], got {surface_fraction}")
    near = np.flatnonzero(np.abs(sdf) <= step.max())
    n_surface = int(round(n * surface_fraction)) if near.size else 0
    seeds = np.stack(np.unravel_index(rng.choice(near, n_surface), sdf.shape), axis=1) if n_surface else None
    parts = []
    if n_surface:
        voxel = origin + (seeds + rng.uniform(-0.5, 0.5, seeds.shape)) * step
        scale = np.asarray(sigmas)[np.arange(n_surface) % len(sigmas)]
        parts.append(voxel + rng.normal(size=voxel.shape) * scale[:, None])
    parts.append(rng.uniform(-1.0, 1.0, (n - n_surface, 3)))
    points = np.clip(np.concatenate(parts), -1.0, 1.0)
    return points.astype(np.float32), interpolate_sdf(sdf, origin, step, points)
