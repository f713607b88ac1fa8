"""Writing and reading surface meshes (trimesh): per-frame files, GLB time-lapses and napari surfaces.

Meshes have (z, y, x) vertices like every array here (they are made by :mod:`cellsdf.geometry.surface`); the
writers store them in the (x, y, z) order that mesh files and viewers expect, through
:func:`cellsdf.geometry.surface.xyz_mesh`.
"""

from __future__ import annotations

import zipfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import trimesh

from cellsdf.geometry.surface import xyz_mesh
from cellsdf.io.atomic import atomic_path


def write_mesh(mesh: trimesh.Trimesh, path: str | Path) -> Path:
    """Write a mesh with (z, y, x) vertices to a file in (x, y, z) order, the format given by the suffix.

    Parameters
    ----------
    mesh : trimesh.Trimesh
        Vertices (z, y, x), as :func:`cellsdf.geometry.surface.surface_mesh` makes them.
    path : str or Path
        ``.ply``, ``.obj``, ``.stl`` or ``.glb`` file, written atomically.

    Returns
    -------
    Path
        The written file.
    """
    path = Path(path)
    with atomic_path(path) as tmp:
        xyz_mesh(mesh).export(tmp, file_type=path.suffix[1:])
    return path


def write_mesh_timelapse(meshes: Sequence[trimesh.Trimesh | None], path: str | Path) -> Path:
    """Write one GLB scene holding every frame's mesh as its own node, named ``t000``, ``t001``, ...

    Viewers that read glTF (Blender, the three.js and Windows 3D viewers) list the frames as nodes to show one
    at a time. Empty frames (None) get no node.

    Parameters
    ----------
    meshes : sequence of trimesh.Trimesh or None
        One mesh per frame, vertices (z, y, x) in µm.
    path : str or Path
        Output ``.glb`` file, written atomically.

    Returns
    -------
    Path
        The written file.
    """
    scene = trimesh.Scene()
    for index, mesh in enumerate(meshes):
        if mesh is not None:
            name = f"t{index:03d}"
            scene.add_geometry(xyz_mesh(mesh), node_name=name, geom_name=name)
    path = Path(path)
    with atomic_path(path) as tmp:
        scene.export(tmp, file_type="glb")
    return path


def napari_surface(
    meshes: Sequence[trimesh.Trimesh | None], frame_interval: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Stack a time-lapse of meshes into the ``(vertices, faces, values)`` of one 4D napari surface.

    Parameters
    ----------
    meshes : sequence of trimesh.Trimesh or None
        One mesh per frame (None for an empty frame), vertices (z, y, x) in µm.
    frame_interval : float
        Seconds between frames.

    Returns
    -------
    tuple of np.ndarray
        float32 vertices (N, 4) as (t, z, y, x) with t the frame index, int32 faces (M, 3) indexing all
        frames' vertices, and values (N,) the frame time in seconds (for colouring).

    Examples
    --------
    >>> box = trimesh.creation.box()
    >>> v, f, values = napari_surface([box, None, box], 60.0)
    >>> v.shape, f.shape, sorted(set(values.tolist()))
    ((16, 4), (24, 3), [0.0, 120.0])
    """
    vertices, faces, offset = [], [], 0
    for index, mesh in enumerate(meshes):
        if mesh is None:
            continue
        frame = np.full((len(mesh.vertices), 1), index, np.float32)
        vertices.append(np.hstack([frame, np.asarray(mesh.vertices, np.float32)]))
        faces.append(np.asarray(mesh.faces, np.int32) + offset)
        offset += len(mesh.vertices)
    v = np.concatenate(vertices) if vertices else np.zeros((0, 4), np.float32)
    f = np.concatenate(faces) if faces else np.zeros((0, 3), np.int32)
    return v, f, v[:, 0] * frame_interval


def write_napari_surface(
    meshes: Sequence[trimesh.Trimesh | None], frame_interval: float, path: str | Path
) -> Path:
    """Write a time-lapse of meshes as one 4D surface for napari's Surface layer (``.npz``).

    The file holds ``vertices`` (N, 4) as (t, z, y, x) with t the frame index and z, y, x in µm, ``faces``
    (M, 3) indexing all frames' vertices, ``values`` (N,) the frame time in seconds (for colouring), and
    ``frame_interval``. ``napari.Viewer().add_surface((v, f, values))`` shows it with a time slider; see
    :func:`read_napari_surface`.

    Parameters
    ----------
    meshes : sequence of trimesh.Trimesh or None
        One mesh per frame (None for an empty frame), vertices (z, y, x) in µm.
    frame_interval : float
        Seconds between frames.
    path : str or Path
        Output ``.npz`` file, written atomically.

    Returns
    -------
    Path
        The written file.
    """
    v, f, values = napari_surface(meshes, frame_interval)
    arrays = {"vertices": v, "faces": f, "values": values, "frame_interval": frame_interval}
    path = Path(path)
    with atomic_path(path) as tmp, zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, array in arrays.items():
            # numpy.savez stamps every member with the current time; a fixed stamp makes the same cell give
            # the same bytes in every run (sharded runs are compared with single runs file by file).
            member = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            member.compress_type = zipfile.ZIP_DEFLATED
            with archive.open(member, "w") as handle:
                np.lib.format.write_array(handle, np.asarray(array))
    return path


def read_napari_surface(path: str | Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Read a file of :func:`write_napari_surface` as the ``(vertices, faces, values)`` napari takes.

    Parameters
    ----------
    path : str or Path
        ``.npz`` file.

    Returns
    -------
    tuple of np.ndarray
        Vertices (N, 4) (t, z, y, x), faces (M, 3), values (N,).
    """
    with np.load(path) as data:
        return data["vertices"], data["faces"], data["values"]
