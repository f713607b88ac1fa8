"""How close a lifted 3D shape is to the truth, in the measures of the SHAPR and DISPR papers.

IoU comes from :func:`cellsdf.geometry.overlap.iou` and the mesh from
:func:`cellsdf.geometry.surface.surface_mesh`, the project's single implementations; the rest are defined
here:

- relative volume error |ΣP − ΣG| / ΣG;
- relative surface error with S(X) the number of object voxels with a background voxel among their 26
  neighbours;
- relative roughness error with R(X) = Σ |1[gauss_σ=2(X) > 0.5] − X|, the voxels that smoothing changes;
- relative curvature error |c_P − c_G| / |c_G| with c the mean, over the vertices of the marching-cubes mesh
  (Taubin-smoothed, in voxel units), of trimesh's discrete Gaussian curvature measure in a ball of radius 2.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage
from trimesh.curvature import discrete_gaussian_curvature_measure

from cellsdf.geometry.overlap import iou
from cellsdf.geometry.surface import crop_box, surface_mesh

LIFT_METRICS = ("iou", "volume_error", "surface_error", "roughness_error", "curvature_error")
CURVATURE_RADIUS = 2.0  # voxels
_FULL = np.ones((3, 3, 3), bool)


def surface_voxels(mask: np.ndarray) -> int:
    """Count S(X): object voxels with a background voxel among their 26 neighbours (outside is background)."""
    return int(np.count_nonzero(mask & ~ndimage.binary_erosion(mask, _FULL, border_value=0)))


def roughness(mask: np.ndarray, *, sigma: float = 2.0) -> int:
    """R(X) = Σ |1[gauss_σ(X) > 0.5] − X|: how many voxels a Gaussian smoothing of the mask flips."""
    smooth = ndimage.gaussian_filter(mask.astype(np.float32), sigma) > 0.5
    return int(np.count_nonzero(smooth != mask))


def mean_gaussian_curvature(mask: np.ndarray) -> float:
    """Average trimesh's discrete Gaussian curvature measure (radius 2) over mesh vertices; nan if empty."""
    cropped = crop_box(mask)
    if cropped is None:
        return float("nan")
    mesh = surface_mesh(cropped[0], (1.0, 1.0, 1.0))
    return float(np.mean(discrete_gaussian_curvature_measure(mesh, mesh.vertices, CURVATURE_RADIUS)))


def _relative(predicted: float, truth: float) -> float:
    return float(abs(predicted - truth) / abs(truth)) if truth else float("nan")


def lift_metrics(
    predicted: np.ndarray, truth: np.ndarray, *, truth_curvature: float | None = None
) -> dict[str, float]:
    """Measure a lifted volume against its truth on the same grid (the five measures).

    Parameters
    ----------
    predicted, truth : np.ndarray
        bool (Z, Y, X) of equal shape; ``truth`` not empty.
    truth_curvature : float, optional
        :func:`mean_gaussian_curvature` of ``truth`` when already known (it is the slow part).

    Returns
    -------
    dict of str to float
        One value per name in :data:`LIFT_METRICS`; errors are relative (0 is perfect).
    """
    truth_curvature = mean_gaussian_curvature(truth) if truth_curvature is None else truth_curvature
    return {
        "iou": iou(predicted, truth),
        "volume_error": _relative(np.count_nonzero(predicted), np.count_nonzero(truth)),
        "surface_error": _relative(surface_voxels(predicted), surface_voxels(truth)),
        "roughness_error": _relative(roughness(predicted), roughness(truth)),
        "curvature_error": _relative(mean_gaussian_curvature(predicted), truth_curvature),
    }
