"""Decoded sequences to files: binary time-lapses, meshes and SDF volumes, one frame in memory at a time."""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import trimesh

from cellsdf.dataset.sdf import signed_distance
from cellsdf.decode.dense import decode_points
from cellsdf.decode.field import Field
from cellsdf.decode.join import join_fragments
from cellsdf.decode.narrowband import TrackingLost, decode_narrowband, decode_tracked
from cellsdf.decode.options import DEFAULT_MESH, MESH_FORMATS, MeshOptions
from cellsdf.geometry.components import component_count
from cellsdf.geometry.grid import grid_step
from cellsdf.geometry.surface import display_mesh, frame_mesh
from cellsdf.io.mesh import write_mesh, write_mesh_timelapse, write_napari_surface
from cellsdf.io.omezarr import omezarr_writer
from cellsdf.io.reference import reference_writer
from cellsdf.io.tiff import write_timelapse

TIMELAPSE_GLB = "mesh/timelapse.glb"
TIMELAPSE_NAPARI = "mesh/timelapse_napari.npz"
OMEZARR = "mask.ome.zarr"


@dataclass
class DecodeLog:
    """What decoding one sequence found, filled frame by frame as the frames of :func:`decode_masks` stream.

    A frame's entries are added before the frame is yielded, so a consumer reading the log as the frames
    stream past sees every frame's entries up to the one it holds.

    Attributes
    ----------
    lost : list of int
        Indices of the frames where tracking was lost (decoded from the coarse grid instead).
    joined : list of int
        Per frame, the number of fragments joined to their cell; empty when the decode neither joins nor
        counts components.
    components : list of int
        Per frame, the 26-connected components of the yielded mask; empty when the decode neither joins nor
        counts components.
    """

    lost: list[int] = field(default_factory=list)
    joined: list[int] = field(default_factory=list)
    components: list[int] = field(default_factory=list)


def decode_masks(
    decoder: Field,
    latent: torch.Tensor,
    times: Iterable[float],
    resolution: int,
    *,
    rotation: torch.Tensor | None = None,
    clamp: float = 0.1,
    precision: str = "32",
    tracking: bool = False,
    join: float = 0.0,
    count_components: bool = False,
) -> tuple[Iterator[np.ndarray], DecodeLog]:
    """Decode one sequence frame by frame as binary masks, narrow-band (see :mod:`cellsdf.decode.narrowband`).

    Frames are decoded as they are drawn from the returned iterator, one at a time; the returned log fills
    as they are.

    Parameters
    ----------
    decoder : Field
        Trained decoder (decodes on its device).
    latent : torch.Tensor
        (L,) code of the sequence.
    times : iterable of float
        Times in [-1, 1], one frame each.
    resolution : int
        Grid side over [-1, 1]³.
    rotation : torch.Tensor, optional
        (3, 3) rotation the model applies to the coordinates.
    clamp : float
        The model's training loss clamp, up to which its outputs are distances (sets the narrow band's
        coarsest block).
    precision : {'32', 'bf16'}
        Type of the hidden layers' products (see :func:`~cellsdf.decode.narrowband.decode_narrowband`).
    tracking : bool
        Decode every frame after the first by following the previous frame's surface
        (:func:`~cellsdf.decode.narrowband.decode_tracked`); a frame whose coarse check fails is decoded
        from the coarse grid instead, and its index is added to the log's ``lost``.
    join : float
        Join fragments to their cell where the field stays within this many voxels of zero between them
        (:func:`~cellsdf.decode.join.join_fragments`); 0 keeps the ``sdf <= 0`` mask as it is. Joining
        counts every frame's components and fragments joined into the log on the way.
    count_components : bool
        Count every frame's 26-connected components into the log (``components``, and ``joined``, all 0)
        without joining too.

    Returns
    -------
    masks : iterator of np.ndarray
        Per time, the bool (R, R, R) mask ``sdf <= 0`` (with any joining paths), axes (z, y, x), decoded as
        it is drawn.
    log : DecodeLog
        Frames where tracking was lost, and with ``join > 0`` or ``count_components`` each frame's fragments
        joined and components, filled as ``masks`` yields (a frame's entries before the frame).
    """
    log = DecodeLog()
    masks = _decoded_masks(
        decoder,
        latent,
        times,
        resolution,
        log,
        rotation=rotation,
        clamp=clamp,
        precision=precision,
        tracking=tracking,
        join=join,
        count=join > 0 or count_components,
    )
    return masks, log


def _decoded_masks(
    decoder: Field,
    latent: torch.Tensor,
    times: Iterable[float],
    resolution: int,
    log: DecodeLog,
    *,
    rotation: torch.Tensor | None,
    clamp: float,
    precision: str,
    tracking: bool,
    join: float,
    count: bool,
) -> Iterator[np.ndarray]:
    """Yield :func:`decode_masks`'s frames, adding each one's entries to ``log`` before it is yielded."""
    step = grid_step(resolution)
    previous = None
    for index, t in enumerate(times):
        mask = None
        if tracking and previous is not None:
            try:
                mask = decode_tracked(
                    decoder, latent, float(t), previous, rotation=rotation, clamp=clamp, precision=precision
                )
            except TrackingLost:
                log.lost.append(index)
        if mask is None:
            mask = decode_narrowband(
                decoder, latent, float(t), resolution, rotation=rotation, clamp=clamp, precision=precision
            )
        if count:

            def distance(voxels: np.ndarray, *, t: float = float(t)) -> np.ndarray:
                # float32: the few points near a gap decide whether it closes within the tolerance.
                return decode_points(decoder, latent, t, -1.0 + voxels * step, rotation=rotation) / step

            mask, joined, parts = join_fragments(mask, distance, tolerance=join)
            log.joined.append(joined)
            log.components.append(parts)
        previous = mask
        yield mask


def reference_sdf(mask: np.ndarray) -> np.ndarray:
    """Signed distance of a mask as the published reference stores it: voxels, positive outside, / max |sdf|.

    Parameters
    ----------
    mask : np.ndarray
        bool (Z, Y, X) with foreground and background.

    Returns
    -------
    np.ndarray
        float32 (Z, Y, X) in [-1, 1].
    """
    if not mask.any() or mask.all():
        # No surface: the frame is all outside (+1) or all inside (-1) in the reference's normalised units.
        return np.full(mask.shape, -1.0 if mask.any() else 1.0, np.float32)
    sdf = signed_distance(mask)
    return sdf / np.abs(sdf).max()


_GARBAGE_SCOPES = 0  # open scopes of collected_garbage; the outermost one freezes and unfreezes


@contextmanager
def collected_garbage() -> Iterator[Callable[[], int]]:
    """Collect garbage often and cheaply: yield a collection that scans only what the scope allocated.

    Every trimesh mesh refers to itself (through its visuals), as do matplotlib figures, so a frame's meshes,
    full-size ones and their edge caches included, and a cell's preview are freed only by the cyclic
    collector, which on its own lets many frames' and cells' worth pile up (peak traced memory of a 256³
    cell 218 -> 262 MiB from 4 to 8 frames; at 64³, 23 -> 89 MiB from 1 to 8 cells). A full collection scans
    every object (0.3 s with torch loaded); freezing what exists when the outermost scope opens limits it to
    the scope's objects (46 ms for 8 frames), and the peak stays flat (158 -> 161 MiB; 23 MiB for 4 cells).
    Every scope collects as it closes. Scopes nest; a process runs one scope at a time.

    Yields
    ------
    callable
        ``gc.collect``; call it where a frame is done.
    """
    global _GARBAGE_SCOPES
    if _GARBAGE_SCOPES == 0:
        gc.freeze()
    _GARBAGE_SCOPES += 1
    try:
        yield gc.collect
    finally:
        gc.collect()
        _GARBAGE_SCOPES -= 1
        if _GARBAGE_SCOPES == 0:
            gc.unfreeze()


def write_volumes(
    masks: Iterable[np.ndarray],
    folder: str | Path,
    n_frames: int,
    resolution: int,
    spacing: tuple[float, float, float],
    frame_interval: float,
    *,
    formats: Sequence[str] = ("tiff", "mesh"),
    mesh: MeshOptions = DEFAULT_MESH,
    components: Sequence[int] | None = None,
) -> list[dict]:
    """Write masks into ``folder``: ``mask.tif``, ``mesh/t000.<format>`` ..., ``sdf.h5``, ``mask.ome.zarr``.

    Masks are consumed one at a time, so memory does not grow with the number of frames (the time-lapse mesh
    files keep each frame's decimated mesh). Existing outputs in ``folder`` are replaced, meshes of frames
    beyond ``n_frames`` removed (the caller decides whether that is allowed). If ``masks`` raises, the files
    being written are not left behind.

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
        Seconds between frames, written to the TIFF, the OME-Zarr and the napari surface.
    formats : sequence of {'tiff', 'mesh', 'sdf', 'omezarr'}
        What to write: the uint8 0/255 TZYX time-lapse; one mesh per frame plus the time-lapse meshes
        ``mesh/timelapse.glb`` (one node per frame) and ``mesh/timelapse_napari.npz`` (a 4D surface; neither
        when every frame is empty); the SDF
        of every frame in the published reference's HDF5 layout (``sdf.h5``, dataset ``sdf_vid``); the
        masks as an OME-Zarr label image (``mask.ome.zarr``, see :func:`cellsdf.io.omezarr.omezarr_writer`).
    mesh : MeshOptions
        Mesh file type, smoothing and decimation.
    components : sequence of int, optional
        Each frame's 26-connected components, where the decoder counted them already (filled frame by frame
        as ``masks`` yields); None counts them here.

    Returns
    -------
    list of dict
        Per frame: ``voxels`` (foreground count), ``components`` (26-connected components, as the topology
        rules count them) and ``mesh`` (file name relative to ``folder``; None for an empty frame or without
        meshes).
    """
    folder = Path(folder)
    if "mesh" in formats:
        # Meshes left by an earlier, longer run into this folder would pass for frames of this one.
        for old in (folder / "mesh").glob("t[0-9][0-9][0-9].*"):
            if old.suffix[1:] in MESH_FORMATS:
                old.unlink()
    frames: list[dict] = []
    shown: list[trimesh.Trimesh | None] = []
    shape = (n_frames, resolution, resolution, resolution)
    with ExitStack() as stack:
        collect = stack.enter_context(collected_garbage())
        add_sdf = (
            stack.enter_context(reference_writer(folder / "sdf.h5", shape, overwrite=True))
            if "sdf" in formats
            else None
        )
        add_omezarr = (
            stack.enter_context(
                omezarr_writer(
                    folder / OMEZARR, shape, spacing=spacing, frame_interval=frame_interval, overwrite=True
                )
            )
            if "omezarr" in formats
            else None
        )

        def written(stream: Iterable[np.ndarray]) -> Iterator[np.ndarray]:
            for index, mask in enumerate(stream):
                parts = components[index] if components is not None else component_count(mask)
                frame = {"voxels": int(np.count_nonzero(mask)), "components": parts, "mesh": None}
                shown.append(None)
                if frame["voxels"] and "mesh" in formats:
                    surface = frame_mesh(
                        mask, spacing, smoothing=mesh.smoothing, tolerance=mesh.tolerance, faces=mesh.faces
                    )
                    frame["mesh"] = f"mesh/t{index:03d}.{mesh.format}"
                    write_mesh(surface, folder / frame["mesh"])
                    shown[-1] = display_mesh(surface, mesh.timelapse_faces)
                    # Kept until the time-lapse files are written: without the caches (edges, from the
                    # decimation's closed-surface check) that would make memory grow by several times the
                    # mesh with every frame.
                    shown[-1] = trimesh.Trimesh(shown[-1].vertices, shown[-1].faces, process=False)
                if add_sdf is not None:
                    add_sdf(reference_sdf(mask))
                if add_omezarr is not None:
                    add_omezarr(mask)
                frames.append(frame)
                collect()
                yield mask

        stream = written(masks)
        if "tiff" in formats:
            write_timelapse(
                folder / "mask.tif",
                stream,
                shape=shape,
                spacing=spacing,
                frame_interval=frame_interval,
                overwrite=True,
            )
        # The TIFF writer stops pulling after the last frame; running the stream out lets its wrappers
        # (progress bars) finish, and without a TIFF it is what writes the meshes.
        for _ in stream:
            pass
    if "mesh" in formats and any(m is not None for m in shown):
        write_mesh_timelapse(shown, folder / TIMELAPSE_GLB)
        write_napari_surface(shown, frame_interval, folder / TIMELAPSE_NAPARI)
    elif "mesh" in formats:
        # Every frame is empty (what a poor model may decode): there is no surface to show, so there are no
        # time-lapse meshes, and none left from an earlier run may pass for this one's.
        for name in (TIMELAPSE_GLB, TIMELAPSE_NAPARI):
            (folder / name).unlink(missing_ok=True)
    return frames
