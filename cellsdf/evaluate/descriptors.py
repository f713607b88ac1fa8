"""Shape descriptors of one cell in one frame, in physical units (µm, µm², µm³)."""

from __future__ import annotations

import numpy as np
import trimesh
from scipy import ndimage
from scipy.spatial import ConvexHull, QhullError
from skimage.measure import block_reduce, euler_number, regionprops
from skimage.morphology import skeletonize

from cellsdf.evaluate.metrics import DESCRIPTORS
from cellsdf.geometry.surface import crop_box, surface_mesh

UNITS = {
    "volume": "µm³",
    "area": "µm²",
    "sphericity": "",
    "elongation": "",
    "flatness": "",
    "solidity": "",
    "mean_curvature": "µm",
    "components": "",
    "euler": "",
    "end_points": "",
}
MESH_DESCRIPTORS = {"area", "sphericity", "solidity", "mean_curvature"}
_FULL = np.ones((3, 3, 3), bool)
_SKELETON_FULL_RESOLUTION = 64
# Skeleton voxels a branch needs from its tip to a junction to count as a protrusion. Thinning a rough voxel
# surface sprouts spurs of one or two voxels; on 128³ filo frames they were 11 % of the simulated cells' end
# points and 21 % of decoded, randomly rotated cells' (whose surfaces carry sub-voxel ripples).
MIN_BRANCH = 3


def frame_descriptors(
    mask: np.ndarray,
    spacing: tuple[float, float, float],
    *,
    names: tuple[str, ...] = DESCRIPTORS,
    mesh: trimesh.Trimesh | None = None,
) -> dict[str, float]:
    """Measure one frame's shape.

    Everything is computed on the mask's bounding box, so the cost follows the cell's size, not the grid's.

    - ``volume``: voxel count times voxel volume (µm³).
    - ``area``: area of the surface mesh (µm², see :func:`cellsdf.geometry.surface.surface_mesh`).
    - ``sphericity``: pi^(1/3) (6 V)^(2/3) / A with V and A of the mesh, 1 for a ball.
    - ``elongation``, ``flatness``: sqrt(l2 / l1) and sqrt(l3 / l1) of the principal second moments
      l1 >= l2 >= l3 of the voxels (from scikit-image ``regionprops``), 1 for a ball.
    - ``solidity``: mesh volume over the volume of its convex hull.
    - ``mean_curvature``: integral of the mean curvature (k1 + k2) / 2 over the surface (µm; 4 pi r for a
      ball of radius r), from the signed dihedral angles at the mesh edges (trimesh).
    - ``components``: 26-connected components (2 after a division).
    - ``euler``: Euler characteristic (26-connectivity): components - tunnels + cavities.
    - ``end_points``: end points of the 3D skeleton (scikit-image ``skeletonize``) whose branch is at least
      :data:`MIN_BRANCH` voxels long, one per protrusion tip (:func:`skeleton_end_points`).

    Parameters
    ----------
    mask : np.ndarray
        bool (Z, Y, X), not empty.
    spacing : tuple of float
        Voxel size (z, y, x) in µm.
    names : tuple of str
        Which descriptors to compute (a subset of :data:`DESCRIPTORS`); skipped ones cost nothing.
    mesh : trimesh.Trimesh, optional
        The frame's surface if already made, in µm.

    Returns
    -------
    dict of str to float
        One value per requested name.

    Raises
    ------
    ValueError
        If the mask is empty.
    """
    cropped = crop_box(mask)
    if cropped is None:
        raise ValueError("empty mask: no foreground voxel to describe")
    crop, origin = cropped
    if mesh is None and MESH_DESCRIPTORS & set(names):
        mesh = surface_mesh(crop, spacing, origin=origin)
    return crop_descriptors(crop, spacing, names=names, mesh=mesh)


def crop_descriptors(
    crop: np.ndarray,
    spacing: tuple[float, float, float],
    *,
    names: tuple[str, ...] = DESCRIPTORS,
    mesh: trimesh.Trimesh | None = None,
) -> dict[str, float]:
    """Measure a frame already cut to its bounding box (see :func:`frame_descriptors`).

    Parameters
    ----------
    crop : np.ndarray
        bool (Z, Y, X), not empty, with background on every face (:func:`cellsdf.geometry.surface.crop_box`).
    spacing : tuple of float
        Voxel size (z, y, x) in µm.
    names : tuple of str
        Which descriptors to compute.
    mesh : trimesh.Trimesh, optional
        The crop's surface in µm; made here when a requested descriptor needs it.

    Returns
    -------
    dict of str to float
        One value per requested name.
    """
    spacing = tuple(float(s) for s in spacing)
    out: dict[str, float] = {}
    volume = float(np.count_nonzero(crop)) * float(np.prod(spacing))
    if "volume" in names:
        out["volume"] = volume
    if MESH_DESCRIPTORS & set(names):
        mesh = surface_mesh(crop, spacing) if mesh is None else mesh
        area = float(mesh.area)
        if "area" in names:
            out["area"] = area
        if "sphericity" in names:
            # The mesh's own volume: for any closed surface this is at most 1 (isoperimetric inequality).
            out["sphericity"] = float(np.pi ** (1 / 3) * (6 * abs(mesh.volume)) ** (2 / 3) / area)
        if "solidity" in names:
            out["solidity"] = _solidity(mesh)
        if "mean_curvature" in names:
            out["mean_curvature"] = float(mesh.integral_mean_curvature)
    if "elongation" in names or "flatness" in names:
        l1, l2, l3 = principal_moments(crop, spacing)
        if "elongation" in names:
            out["elongation"] = float(np.sqrt(l2 / l1))
        if "flatness" in names:
            out["flatness"] = float(np.sqrt(l3 / l1))
    if "components" in names:
        out["components"] = float(ndimage.label(crop, structure=_FULL)[1])
    if "euler" in names:
        out["euler"] = float(euler_number(crop, connectivity=3))
    if "end_points" in names:
        out["end_points"] = float(skeleton_end_points(crop))
    return {name: out[name] for name in names}


def principal_moments(crop: np.ndarray, spacing: tuple[float, float, float]) -> np.ndarray:
    """Return the variances l1 >= l2 >= l3 (µm²) of the voxel positions along the principal axes.

    Parameters
    ----------
    crop : np.ndarray
        bool (Z, Y, X) with at least one voxel.
    spacing : tuple of float
        Voxel size (z, y, x) in µm.

    Returns
    -------
    np.ndarray
        float (3,), descending.
    """
    props = regionprops(crop.astype(np.uint8), spacing=spacing)[0]
    # The inertia tensor is trace(C) * I - C for the covariance C, so C's eigenvalues are sum(I) / 2 - I_k.
    inertia = np.asarray(props.inertia_tensor_eigvals)
    variances = np.sort(inertia.sum() / 2 - inertia)[::-1]
    # A flat one-voxel-thick shape has a third variance of zero up to rounding.
    return np.maximum(variances, 0.0) if variances[0] > 0 else np.ones(3)


def skeleton_end_points(crop: np.ndarray, *, min_branch: int = MIN_BRANCH) -> int:
    """Count the tips of the 3D skeleton's branches that are at least ``min_branch`` voxels long.

    A tip is a skeleton voxel with exactly one 26-neighbour on the skeleton; its branch runs from it through
    voxels with at most two neighbours until a junction. Shorter branches are spurs of surface roughness,
    not protrusions. A compact blob thins to a point or short line (0 to 2 tips); each protrusion adds one.
    Crops longer than 64 voxels are first reduced by 2 x 2 x 2 blocks (a block is foreground if any voxel
    is): thinning then costs an eighth, roughness sprouts fewer spurs, and protrusions, which are several
    voxels thick at such resolutions, survive the any-voxel rule.

    Parameters
    ----------
    crop : np.ndarray
        bool (Z, Y, X) with background on every face.
    min_branch : int
        Skeleton voxels from the tip to the junction (tip included) a branch needs; 1 counts every tip.

    Returns
    -------
    int
        Number of tips.

    Examples
    --------
    A rod thins to a line with two tips; a two-voxel bump on its side adds a spur, not a tip:

    >>> rod = np.zeros((9, 9, 30), bool)
    >>> rod[3:6, 3:6, 2:28] = True
    >>> bumped = rod.copy(); bumped[6:8, 4, 15] = True
    >>> skeleton_end_points(rod), skeleton_end_points(bumped), skeleton_end_points(bumped, min_branch=1)
    (2, 2, 3)
    """
    if max(crop.shape) > _SKELETON_FULL_RESOLUTION:
        crop = np.pad(block_reduce(crop, (2, 2, 2), np.max), 1)
    skeleton = skeletonize(crop).astype(bool)
    coords = np.argwhere(skeleton)
    offsets = np.argwhere(_FULL) - 1
    offsets = offsets[np.any(offsets != 0, axis=1)]
    degree = np.zeros(skeleton.shape, np.int8)
    degree[tuple(coords.T)] = skeleton[tuple((coords[:, None, :] + offsets[None]).transpose(2, 0, 1))].sum(
        axis=1
    )
    tips = coords[degree[tuple(coords.T)] == 1]
    return sum(_branch_length(degree, tip, offsets, min_branch) >= min_branch for tip in tips)


def _branch_length(degree: np.ndarray, tip: np.ndarray, offsets: np.ndarray, most: int) -> int:
    """Skeleton voxels from ``tip`` along its branch before a junction, counted up to ``most``."""
    previous, current, length = None, tuple(tip), 1
    while length < most:
        ahead = [
            n for n in (tuple(v) for v in np.asarray(current) + offsets) if degree[n] > 0 and n != previous
        ]
        if len(ahead) != 1 or degree[ahead[0]] > 2:
            return length
        previous, current, length = current, ahead[0], length + 1
    return length


def _solidity(mesh: trimesh.Trimesh) -> float:
    try:
        hull = ConvexHull(mesh.vertices).volume
    except QhullError:  # a flat shape one voxel thick has no 3D hull
        return 1.0
    return float(min(mesh.volume / hull, 1.0)) if hull > 0 else 1.0
