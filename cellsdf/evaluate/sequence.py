"""Measure one sequence frame by frame, holding at most two frames in memory."""

from __future__ import annotations

import gc

import numpy as np

from cellsdf.errors import InputError
from cellsdf.evaluate.descriptors import DESCRIPTORS, MESH_DESCRIPTORS, crop_descriptors
from cellsdf.evaluate.inputs import SequenceSpec, iter_masks
from cellsdf.evaluate.shapes import centred
from cellsdf.evaluate.temporal import sequence_dynamics
from cellsdf.geometry.overlap import iou
from cellsdf.geometry.surface import crop_box, surface_mesh, surface_points


def describe_sequence(
    spec: SequenceSpec,
    *,
    names: tuple[str, ...] = DESCRIPTORS,
    temporal: bool = True,
    points: int = 0,
    seed: tuple[int, ...] = (0,),
    keep_last: bool = False,
) -> dict:
    """Measure every frame of a sequence and how it changes over time.

    Parameters
    ----------
    spec : SequenceSpec
        The sequence, with its voxel size set.
    names : tuple of str
        Frame descriptors to compute (see :func:`cellsdf.evaluate.descriptors.frame_descriptors`).
    temporal : bool
        Also measure volume growth, IoU of consecutive frames and changes in component count.
    points : int
        Surface points to draw per frame for shape-set metrics (0: none).
    seed : tuple of int
        Seed of the point draws; the frame index is appended, so every frame has its own stream.
    keep_last : bool
        Return the last non-empty frame's crop, for pictures.

    Returns
    -------
    dict
        ``name``, ``source``, ``spacing``, ``frames``; ``descriptors`` (one dict per frame, None for an empty
        frame); ``problems`` (``{"frame", "problem"}``); ``volume_growth``, ``temporal_iou``,
        ``division_frames`` (when ``temporal``); ``points`` (float32 (F, points, 3), centred, µm) with
        ``point_frames``; ``last`` (``(frame, crop)`` or None).
    """
    spacing = spec.spacing
    wanted = tuple(names) + tuple(n for n in ("volume", "components") if temporal and n not in names)
    descriptors: list[dict | None] = []
    problems: list[dict] = []
    ious: list[float | None] = []
    clouds, cloud_frames = [], []
    shape, previous, last = None, None, None
    for t, mask in enumerate(iter_masks(spec)):
        if shape is not None and mask.shape != shape:
            raise InputError(spec.source, f"frame {t} has shape {mask.shape}, the frames before {shape}")
        shape = mask.shape
        cropped = crop_box(mask)
        if temporal and t > 0:
            ious.append(None if previous is None or cropped is None else iou(previous, mask))
        previous = mask if temporal and cropped is not None else None
        if cropped is None:
            descriptors.append(None)
            problems.append({"frame": t, "problem": "empty mask (no foreground voxel); frame skipped"})
            continue
        crop, origin = cropped
        wants_mesh = points or MESH_DESCRIPTORS & set(wanted)
        mesh = surface_mesh(crop, spacing, origin=origin) if wants_mesh else None
        descriptors.append(crop_descriptors(crop, spacing, names=wanted, mesh=mesh))
        if points:
            clouds.append(centred(surface_points(mesh, points, np.random.default_rng([*seed, t]))))
            cloud_frames.append(t)
        if keep_last:
            last = (t, crop)
        # A trimesh mesh references itself through its cache, so only the cycle collector frees it; collecting
        # the young generations after every frame keeps memory flat (it costs well under a millisecond).
        del mesh
        gc.collect(1)
    out = {
        "name": spec.name,
        "source": spec.source,
        "spacing": list(spacing),
        "frames": len(descriptors),
        "descriptors": descriptors,
        "problems": problems,
        "points": np.stack(clouds) if clouds else np.zeros((0, points, 3), np.float32),
        "point_frames": cloud_frames,
        "last": last,
    }
    if temporal:
        volumes = [None if d is None else d["volume"] for d in descriptors]
        components = [None if d is None else d["components"] for d in descriptors]
        out.update(sequence_dynamics(volumes, components, ious))
    return out
