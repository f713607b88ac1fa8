"""Mesh row: a frame's mesh file decimated within the stated tolerance against the full marching-cubes one."""

from __future__ import annotations

import io
import time

import numpy as np
import trimesh

from cellsdf.bench.row import Row
from cellsdf.geometry.grid import grid_spacing
from cellsdf.geometry.mesh_defaults import MESH_TOLERANCE
from cellsdf.geometry.surface import frame_mesh
from cellsdf.model.trained import load_trained

FRAMES_PER_CELL = 30  # the published sequences' length, for the size of one cell's meshes


def hausdorff(a: trimesh.Trimesh, b: trimesh.Trimesh) -> float:
    """Return the largest distance from a vertex or face centre of either mesh to the other mesh's surface.

    Parameters
    ----------
    a, b : trimesh.Trimesh
        The two surfaces.

    Returns
    -------
    float
        The distance, in the meshes' units (exact point-to-triangle distances, trimesh's closest-point query).

    Examples
    --------
    >>> small, large = trimesh.creation.box(extents=(1, 1, 1)), trimesh.creation.box(extents=(2, 2, 2))
    >>> round(hausdorff(small, large), 4)  # a corner of the large box to the small box's corner: √3 / 2
    0.866
    """
    farthest = 0.0
    for points, surface in (
        (np.vstack([a.vertices, a.triangles_center]), b),
        (
            np.vstack([b.vertices, b.triangles_center]),
            a,
        ),
    ):
        _, distance, _ = trimesh.proximity.closest_point(surface, points)
        farthest = max(farthest, float(distance.max()))
    return farthest


def _ply_mib(mesh: trimesh.Trimesh) -> float:
    buffer = io.BytesIO()
    mesh.export(buffer, file_type="ply")
    return buffer.tell() / 2**20


def mesh_row(model: str, *, size: int, sequence: int, t: float, judge: bool) -> Row:
    """Mesh one decoded frame in full and within :data:`MESH_TOLERANCE` voxels; compare sizes and shapes.

    The frame is ``model``'s learned sequence ``sequence`` at time ``t`` on a ``size``³ grid, meshed as
    ``cellsdf generate`` meshes it (marching cubes, Taubin smoothing), once in full and once decimated.

    Parameters
    ----------
    model : str
        Checkpoint path or built-in model name.
    size : int
        Grid side.
    sequence : int
        Learned sequence decoded.
    t : float
        Time of the frame, in [-1, 1].
    judge : bool
        Give the row a verdict.

    Returns
    -------
    Row
        MiB of the decimated PLY file against the full one (ratio: how many times smaller); the target text
        carries the Hausdorff distance in voxels, the faces, the seconds of meshing and decimating, and the
        size of one cell's 30 meshes.
    """
    trained = load_trained(model)
    latent, rotation = trained.code(sequence)
    masks, _ = trained.decode_masks(latent, [t], resolution=size, rotation=rotation)
    mask = next(masks)
    spacing = grid_spacing(size, trained.scale())
    start = time.perf_counter()
    full = frame_mesh(mask, spacing)
    full_seconds = time.perf_counter() - start
    start = time.perf_counter()
    decimated = frame_mesh(mask, spacing, tolerance=MESH_TOLERANCE)
    seconds = time.perf_counter() - start
    distance = hausdorff(full, decimated) / min(spacing)
    ours, reference = _ply_mib(decimated), _ply_mib(full)
    cell, full_cell = FRAMES_PER_CELL * ours, FRAMES_PER_CELL * reference
    return Row(
        name=f"mesh of one {model} frame at {size}³, decimated within {MESH_TOLERANCE:g} voxel vs full "
        "(MiB of PLY)",
        ours=ours,
        reference=reference,
        ratio=reference / ours,
        target=f"Hausdorff <= {MESH_TOLERANCE:g} voxel (measured {distance:.3f}; {len(decimated.faces)} of "
        f"{len(full.faces)} faces; {seconds:.2f} s against {full_seconds:.2f} s; one cell's "
        f"{FRAMES_PER_CELL} frames: {cell:.0f} MiB against {full_cell:.0f})",
        passed=distance <= MESH_TOLERANCE if judge else None,
        peak_mib=None,
    )
