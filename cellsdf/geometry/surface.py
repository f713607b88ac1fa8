"""Surfaces of binary masks in physical units (trimesh): cropping, marching cubes, sampling and simplifying.

Meshes have (z, y, x) vertices like every array in cellsdf; :func:`xyz_mesh` is the one place that turns them
into the (x, y, z) order that mesh files and viewers expect.
"""

from __future__ import annotations

import numpy as np
import pyfqmr
import trimesh
from scipy import ndimage
from skimage.measure import marching_cubes
from trimesh.smoothing import filter_taubin

from cellsdf.geometry.components import bounding_box
from cellsdf.geometry.mesh_defaults import SMOOTHING

_PAD = 1  # background around a crop, so that every surface closes


def crop_box(mask: np.ndarray, *, pad: int = _PAD) -> tuple[np.ndarray, np.ndarray] | None:
    """Cut a mask down to its bounding box with a zero border.

    Parameters
    ----------
    mask : np.ndarray
        bool (Z, Y, X).
    pad : int
        Voxels of background added on every side.

    Returns
    -------
    tuple of np.ndarray or None
        The padded crop (bool) and the index (z, y, x) of its first voxel in ``mask`` (may be negative, as
        the border reaches past the grid), or None for an empty mask.

    Examples
    --------
    >>> mask = np.zeros((5, 5, 5), bool)
    >>> mask[2, 1:3, 3] = True
    >>> crop, origin = crop_box(mask)
    >>> crop.shape, origin.tolist()
    ((3, 4, 3), [1, 0, 2])
    >>> crop_box(np.zeros((2, 2, 2), bool)) is None
    True
    """
    box = bounding_box(mask)
    if box is None:
        return None
    crop = np.pad(mask[box], pad)
    origin = np.array([s.start - pad for s in box])
    return crop, origin


def surface_shell(mask: np.ndarray) -> np.ndarray:
    """Voxels next to the surface: those with a voxel of the other sign among their 18 neighbours.

    The surface passes midway between voxels of different sign, so these are the voxels whose centre lies
    within about one voxel of it (edge neighbours are √2 voxels apart): the fewest a decoder must evaluate to
    place the surface, the yardstick for the points a narrow-band decode spends.

    Parameters
    ----------
    mask : np.ndarray
        bool (Z, Y, X).

    Returns
    -------
    np.ndarray
        bool (Z, Y, X), True on both sides of every sign change; voxels beyond the grid count as the grid's
        border voxels (a mask filling the grid has no shell).

    Examples
    --------
    >>> mask = np.zeros((5, 5, 5), bool)
    >>> mask[1:4, 1:4, 1:4] = True
    >>> int(surface_shell(mask).sum())  # the cube but its centre, and all around it but the grid's corners
    116
    """
    edges = ndimage.generate_binary_structure(3, 2)
    grown = ndimage.binary_dilation(mask, edges, border_value=0)
    shrunk = ndimage.binary_erosion(mask, edges, border_value=1)
    return (grown & ~mask) | (mask & ~shrunk)


def surface_mesh(
    crop: np.ndarray,
    spacing: tuple[float, float, float],
    *,
    origin: np.ndarray | None = None,
    smoothing: int = SMOOTHING,
    step: int = 1,
) -> trimesh.Trimesh:
    """Triangulate the surface of a mask: marching cubes on the binary mask, then Taubin smoothing.

    The binary mesh has the mask's exact topology, so protrusions one voxel thin stay, but its staircase makes
    areas about 9% too large. Taubin smoothing (trimesh), which hardly shrinks the shape, removes the
    staircase: areas, volumes and integral mean curvatures of balls and ellipsoids from radius 5 voxels up
    come out within 1%.

    Parameters
    ----------
    crop : np.ndarray
        bool (Z, Y, X) with background on every face (see :func:`crop_box`).
    spacing : tuple of float
        Voxel size (z, y, x) in µm.
    origin : np.ndarray, optional
        Index of the crop's first voxel in the full frame, so vertices land in the frame's µm coordinates.
    smoothing : int
        Taubin iterations; 0 keeps the binary mesh.
    step : int
        Marching-cubes step in voxels; larger steps give coarser meshes for pictures.

    Returns
    -------
    trimesh.Trimesh
        Closed mesh with outward normals, vertices (z, y, x) in µm.

    Examples
    --------
    >>> z, y, x = np.ogrid[-12:13, -12:13, -12:13]
    >>> ball = z**2 + y**2 + x**2 <= 10**2
    >>> mesh = surface_mesh(np.pad(ball, 1), (0.5, 0.5, 0.5))
    >>> mesh.is_watertight, bool(abs(mesh.volume / (4 / 3 * np.pi * 5.0**3) - 1) < 0.03)
    (True, True)
    """
    verts, faces, _, _ = marching_cubes(crop.astype(np.float32), 0.5, spacing=spacing, step_size=step)
    if origin is not None:
        verts += np.asarray(origin) * np.asarray(spacing)
    # skimage orders faces so that normals point to lower values, i.e. into the cell; flip them outward.
    mesh = trimesh.Trimesh(verts, faces[:, ::-1], process=False)
    if smoothing:
        filter_taubin(mesh, iterations=smoothing)
    return mesh


def surface_points(mesh: trimesh.Trimesh, count: int, seed: int | np.random.Generator) -> np.ndarray:
    """Draw points uniformly over a mesh's area.

    Parameters
    ----------
    mesh : trimesh.Trimesh
        The surface.
    count : int
        Number of points.
    seed : int or numpy.random.Generator
        Seed (or generator) of the draw, so a run is repeatable.

    Returns
    -------
    np.ndarray
        float32 (count, 3) points (z, y, x) in the mesh's units.

    Examples
    --------
    >>> points = surface_points(trimesh.creation.icosphere(radius=2.0), 100, seed=0)
    >>> points.shape, bool(np.allclose(np.linalg.norm(points, axis=1), 2.0, atol=0.05))
    ((100, 3), True)
    """
    points, _ = trimesh.sample.sample_surface(mesh, count, seed=seed)
    return points.astype(np.float32)


def display_mesh(mesh: trimesh.Trimesh, face_count: int | None) -> trimesh.Trimesh:
    """Simplify a mesh for display to a face count by quadric decimation (``pyfqmr``).

    Parameters
    ----------
    mesh : trimesh.Trimesh
        The full mesh.
    face_count : int or None
        Target number of faces; None, or a mesh that already has no more, returns ``mesh`` unchanged.

    Returns
    -------
    trimesh.Trimesh
        The simplified mesh; decimation to a face count may shift the volume by a few percent,
        so measurements use the full mesh.

    Examples
    --------
    >>> sphere = trimesh.creation.icosphere(subdivisions=3)
    >>> len(sphere.faces), len(display_mesh(sphere, 200).faces) <= 200, display_mesh(sphere, None) is sphere
    (1280, True, True)
    """
    if face_count is None or len(mesh.faces) <= face_count:
        return mesh
    return _decimated(mesh, lossless=False, target_count=int(face_count))


def simplify_mesh(mesh: trimesh.Trimesh, tolerance: float) -> trimesh.Trimesh:
    """Decimate a mesh as far as its surface stays within a distance of the full one (``pyfqmr``, lossless).

    An edge is collapsed only while the quadric error of the merged vertex (the sum of its squared distances
    to the planes of every original face merged into it) stays below ``tolerance²``, so each vertex lies
    within ``tolerance`` of every plane it replaces. On decoded cells the Hausdorff distance to the full mesh
    is well inside the tolerance (0.2 voxel for a 0.5-voxel tolerance on a 256³ plat frame, which keeps
    9 % of the faces) and the volume within 0.1 % (``tests/test_geometry.py``). A tube one or two voxels
    thick can collapse to a pinch, where an edge joins four faces: when a closed mesh would come out open,
    the tolerance is halved until it does not (after four halvings the full mesh is returned).

    Parameters
    ----------
    mesh : trimesh.Trimesh
        The full mesh.
    tolerance : float
        Largest distance in the mesh's units (µm for cellsdf's meshes) that decimation may move the surface.

    Returns
    -------
    trimesh.Trimesh
        The decimated mesh, faces oriented as in ``mesh``.

    Examples
    --------
    >>> sphere = trimesh.creation.icosphere(subdivisions=4, radius=10.0)
    >>> coarse = simplify_mesh(sphere, 0.2)
    >>> radii = np.linalg.norm(coarse.vertices, axis=1)
    >>> len(sphere.faces), len(coarse.faces) < 5120 / 4, bool(np.abs(radii - 10).max() < 0.2)
    (5120, True, True)
    """
    for halvings in range(5):
        simplified = _decimated(mesh, lossless=True, epsilon=(float(tolerance) / 2**halvings) ** 2)
        # The full mesh's own check costs as much as the decimation's, so it is made only when needed.
        if simplified.is_watertight or (halvings == 0 and not mesh.is_watertight):
            return simplified
    return mesh


def _decimated(mesh: trimesh.Trimesh, *, lossless: bool, **options: float) -> trimesh.Trimesh:
    """Run pyfqmr's decimation, to a face count or (``lossless``) within a quadric error, on a copy."""
    simplifier = pyfqmr.Simplify()
    simplifier.setMesh(mesh.vertices, mesh.faces)
    if lossless:
        simplifier.simplify_mesh_lossless(verbose=False, **options)
    else:
        simplifier.simplify_mesh(verbose=False, **options)
    vertices, faces, _ = simplifier.getMesh()
    return trimesh.Trimesh(vertices, faces, process=False)


def frame_mesh(
    mask: np.ndarray,
    spacing: tuple[float, float, float],
    *,
    smoothing: int = SMOOTHING,
    tolerance: float | None = None,
    faces: int | None = None,
) -> trimesh.Trimesh | None:
    """Mesh one frame's mask where it lies in the frame: crop, marching cubes, smoothing, decimation.

    Parameters
    ----------
    mask : np.ndarray
        bool (Z, Y, X) frame.
    spacing : tuple of float
        Voxel size (z, y, x) in µm.
    smoothing : int
        Taubin iterations (:func:`surface_mesh`).
    tolerance : float or None
        Decimate as far as the surface stays within this many voxels (of the finest spacing) of the full mesh
        (:func:`simplify_mesh`); None keeps every face.
    faces : int or None
        Then decimate to at most this many faces (:func:`display_mesh`); None sets no limit.

    Returns
    -------
    trimesh.Trimesh or None
        Vertices (z, y, x) in µm of the frame's coordinates; None for an empty frame.

    Examples
    --------
    >>> z, y, x = np.ogrid[:12, :12, :12]
    >>> mesh = frame_mesh((z - 6) ** 2 + (y - 6) ** 2 + (x - 6) ** 2 <= 16, (1.0, 1.0, 1.0))
    >>> bool(np.allclose(mesh.vertices.mean(axis=0), 6.0, atol=0.1))
    True
    >>> frame_mesh(np.zeros((4, 4, 4), bool), (1.0, 1.0, 1.0)) is None
    True
    """
    crop = crop_box(mask)
    if crop is None:
        return None
    mesh = surface_mesh(crop[0], spacing, origin=crop[1], smoothing=smoothing)
    if tolerance is not None:
        mesh = simplify_mesh(mesh, tolerance * min(spacing))
    return display_mesh(mesh, faces)


def xyz_mesh(mesh: trimesh.Trimesh) -> trimesh.Trimesh:
    """Turn a mesh with (z, y, x) vertices into one with (x, y, z) vertices, as files and viewers expect.

    Reversing the axes mirrors the mesh, so the faces are reversed too and the normals keep pointing outward.

    Parameters
    ----------
    mesh : trimesh.Trimesh
        Vertices (z, y, x).

    Returns
    -------
    trimesh.Trimesh
        A new mesh, vertices (x, y, z), same orientation of its surface.

    Examples
    --------
    >>> box = trimesh.creation.box(extents=(1.0, 2.0, 3.0))
    >>> turned = xyz_mesh(box)
    >>> turned.extents.tolist(), bool(turned.volume > 0)
    ([3.0, 2.0, 1.0], True)
    """
    return trimesh.Trimesh(mesh.vertices[:, ::-1], mesh.faces[:, ::-1], process=False)
