"""What a decode writes and how: file formats and the memory each holds per voxel, mesh options, precisions.

Light on purpose (no torch, no mesh library): the command line checks options against these before any of
the decoder is loaded.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from cellsdf.geometry.mesh_defaults import MESH_TOLERANCE, SMOOTHING
from cellsdf.options import OneOf, Real, Whole, check_fields, option

PRECISIONS = ("32", "bf16")
FORMATS = ("tiff", "mesh", "sdf", "omezarr")
MESH_FORMATS = ("ply", "obj", "stl", "glb")
# Bytes per voxel held at once while a frame is decoded and written (mask, TIFF page, decoder grids), and
# what the SDF format adds (edt's distances and the normalised copy, float32), and the OME-Zarr (the 0/1
# and 0/255 frames, and the compressor's buffer); the base is the model and libraries.
_BYTES_PER_VOXEL = {"tiff": 0, "mesh": 0, "sdf": 12, "omezarr": 3}
_FRAME_BYTES_PER_VOXEL = 6
WRITE_BASE_BYTES = 1 << 29


def bytes_per_voxel(formats: Iterable[str]) -> int:
    """Return the bytes per voxel of one frame held at once while decoding and writing ``formats``.

    Examples
    --------
    >>> bytes_per_voxel(["tiff"]), bytes_per_voxel(["tiff", "sdf"])
    (6, 18)
    """
    return _FRAME_BYTES_PER_VOXEL + sum(_BYTES_PER_VOXEL[f] for f in set(formats))


@dataclass(frozen=True)
class MeshOptions:
    """How frames become mesh files.

    Attributes
    ----------
    format : {'ply', 'obj', 'stl', 'glb'}
        Per-frame file type.
    smoothing : int
        Taubin iterations after marching cubes (0: the binary staircase mesh).
    tolerance : float or None
        Decimate every per-frame mesh as far as its surface stays within this many voxels of the full mesh
        (:func:`cellsdf.geometry.surface.simplify_mesh`); None keeps every face.
    faces : int or None
        Then decimate every per-frame mesh to at most this many faces; None sets no limit.
    timelapse_faces : int or None
        Faces per frame in the time-lapse files (GLB scene, napari surface), which hold every frame at once.
    """

    format: str = option("ply", OneOf(MESH_FORMATS))
    smoothing: int = option(SMOOTHING, Whole(0))
    tolerance: float | None = option(MESH_TOLERANCE, Real(0, 10, null=True))  # voxels
    faces: int | None = option(None, Whole(4, null=True))
    timelapse_faces: int | None = option(20000, Whole(4, null=True))

    def __post_init__(self) -> None:
        check_fields(self, prefix="mesh.")


DEFAULT_MESH = MeshOptions()
