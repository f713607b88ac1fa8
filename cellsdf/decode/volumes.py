"""Decoded sequences to files: binary time-lapses and per-frame meshes, one frame in memory at a time."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import numpy as np
import torch
import trimesh

from cellsdf.decode.dense import decode_dense
from cellsdf.io.atomic import atomic_path
from cellsdf.io.mesh import crop_box, surface_mesh
from cellsdf.io.tiff import write_timelapse
from cellsdf.model.siren import SirenDecoder

FORMATS = ("tiff", "mesh")
MESH_FORMATS = ("ply", "obj", "stl", "glb")


def grid_spacing(resolution: int, scale: float) -> tuple[float, float, float]:
    """Voxel size (z, y, x) in µm of a ``resolution``³ grid spanning [-1, 1]³.

    Parameters
    ----------
    resolution : int
        Grid side; neighbouring points are 2 / (resolution − 1) normalised units apart.
    scale : float
        Normalised units per µm of the data the model was trained on.

    Returns
    -------
    tuple of float
        Isotropic voxel size in µm.
    """
    step = 2.0 / (resolution - 1) / scale
    return (step, step, step)


def decode_masks(
    decoder: SirenDecoder,
    latent: torch.Tensor,
    times: Iterable[float],
    resolution: int,
    rotation: torch.Tensor | None = None,
) -> Iterator[np.ndarray]:
    """Decode one sequence frame by frame as binary masks.

    Parameters
    ----------
    decoder : SirenDecoder
        Trained decoder (decodes on its device).
    latent : torch.Tensor
        (L,) code of the sequence.
    times : iterable of float
        Times in [-1, 1], one frame each.
    resolution : int
        Grid side over [-1, 1]³.
    rotation : torch.Tensor, optional
        (3, 3) rotation the model applies to the coordinates.

    Yields
    ------
    np.ndarray
        bool (R, R, R) mask, ``sdf <= 0``, axes (z, y, x).
    """
    for t in times:
        yield decode_dense(decoder, latent, float(t), resolution, rotation) <= 0


def write_mesh(mesh: trimesh.Trimesh, path: str | Path) -> Path:
    """Write a mesh with (z, y, x) vertices to a file in (x, y, z) order, the format given by the suffix.

    Parameters
    ----------
    mesh : trimesh.Trimesh
        Vertices (z, y, x), as :func:`cellsdf.io.mesh.surface_mesh` makes them.
    path : str or Path
        ``.ply``, ``.obj``, ``.stl`` or ``.glb`` file, written atomically.

    Returns
    -------
    Path
        The written file.
    """
    # Reversing the axes mirrors the mesh, so the faces are reversed too to keep the normals pointing outward.
    xyz = trimesh.Trimesh(mesh.vertices[:, ::-1], mesh.faces[:, ::-1], process=False)
    path = Path(path)
    with atomic_path(path) as tmp:
        xyz.export(tmp, file_type=path.suffix[1:])
    return path


def write_volumes(
    masks: Iterable[np.ndarray],
    folder: str | Path,
    n_frames: int,
    resolution: int,
    spacing: tuple[float, float, float],
    frame_interval: float,
    formats: Sequence[str] = FORMATS,
    mesh_format: str = "ply",
) -> list[dict]:
    """Write a sequence of masks as ``folder/mask.tif`` and ``folder/mesh/t000.<mesh_format>`` ...

    Masks are consumed one at a time, so memory does not grow with the number of frames. Existing outputs in
    ``folder`` are replaced, meshes of frames beyond ``n_frames`` removed (the caller decides whether that is
    allowed).

    Parameters
    ----------
    masks : iterable of np.ndarray
        ``n_frames`` bool (R, R, R) masks.
    folder : str or Path
        Output folder of the sequence.
    n_frames, resolution : int
        Number of frames and grid side.
    spacing : tuple of float
        Voxel size (z, y, x) in µm, written to the TIFF and applied to mesh vertices.
    frame_interval : float
        Seconds between frames, written to the TIFF.
    formats : sequence of {'tiff', 'mesh'}
        What to write.
    mesh_format : {'ply', 'obj', 'stl', 'glb'}
        Mesh file type.

    Returns
    -------
    list of dict
        Per frame: ``voxels`` (foreground count) and ``mesh`` (file name relative to ``folder``, or None when
        the frame is empty or meshes are not written).
    """
    folder = Path(folder)
    if "mesh" in formats:
        # Meshes left by an earlier, longer run into this folder would pass for frames of this one.
        for old in (folder / "mesh").glob("t[0-9][0-9][0-9].*"):
            if old.suffix[1:] in MESH_FORMATS:
                old.unlink()
    frames: list[dict] = []

    def written(stream: Iterable[np.ndarray]) -> Iterator[np.ndarray]:
        for index, mask in enumerate(stream):
            frame = {"voxels": int(np.count_nonzero(mask)), "mesh": None}
            crop = crop_box(mask) if "mesh" in formats else None
            if crop is not None:
                name = f"mesh/t{index:03d}.{mesh_format}"
                write_mesh(surface_mesh(crop[0], spacing, crop[1]), folder / name)
                frame["mesh"] = name
            frames.append(frame)
            yield mask

    stream = written(masks)
    if "tiff" in formats:
        shape = (n_frames, resolution, resolution, resolution)
        write_timelapse(folder / "mask.tif", stream, shape, spacing, frame_interval, overwrite=True)
    # The TIFF writer stops pulling after the last frame; running the stream out lets its wrappers (progress
    # bars) finish, and without a TIFF it is what writes the meshes.
    for _ in stream:
        pass
    return frames
