"""Protrusion tracks of a prepared data set: every frame split into body and protrusions, linked over time.

The measurements are in the prepared data's normalised coordinates (each frame's centre and the common
scale), so that they sit on the bodies the auto-decoder learns from the same file.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy import ndimage
from scipy.optimize import linear_sum_assignment

from cellsdf.dataset.decompose import Protrusion, frame_protrusions
from cellsdf.dataset.prepared import read_index
from cellsdf.dataset.sources import SequenceLoader
from cellsdf.errors import InputError
from cellsdf.progress import track

# Border kept around a cell's box so that distances near its surface see background.
_PAD = 3


def principal_axes(centred: np.ndarray) -> np.ndarray:
    """Return the principal axes (rows, longest first) of (N, 3) points about their centre.

    A body's axes are measured this way on training masks and on drawn bodies, so that a protrusion's
    direction in them means the same in both.
    """
    return np.linalg.svd(centred, full_matrices=False)[2]


def body_frame(body: np.ndarray, spacing: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return a body's centroid (µm, voxel frame) and principal axes (rows, longest first).

    Examples
    --------
    >>> body = np.zeros((10, 10, 30), bool)
    >>> body[4:6, 4:6, 5:25] = True
    >>> centre, axes = body_frame(body, np.ones(3))
    >>> centre.tolist(), np.abs(axes[0]).round(3).tolist()
    ([4.5, 4.5, 14.5], [0.0, 0.0, 1.0])
    """
    points = np.argwhere(body) * spacing
    centre = points.mean(axis=0)
    return centre, principal_axes(points - centre)


def link_frames(previous: np.ndarray, current: np.ndarray, *, gate: float) -> dict[int, int]:
    """Match protrusions of consecutive frames by their bases (Hungarian assignment, at most ``gate`` apart).

    Parameters
    ----------
    previous, current : np.ndarray
        (M, 3) and (N, 3) base points.
    gate : float
        Largest distance of a match, in the points' units.

    Returns
    -------
    dict
        Index in ``current`` to index in ``previous``.

    Examples
    --------
    >>> link_frames(np.array([[0.0, 0, 0], [5, 0, 0]]), np.array([[5.2, 0, 0], [9, 9, 9]]), gate=1.0)
    {0: 1}
    """
    if len(previous) == 0 or len(current) == 0:
        return {}
    cost = np.linalg.norm(previous[:, None] - current[None], axis=-1)
    rows, cols = linear_sum_assignment(np.where(cost <= gate, cost, 1e9))
    return {int(c): int(r) for r, c in zip(rows, cols, strict=True) if cost[r, c] <= gate}


def _normalised(protrusion: Protrusion, centre: np.ndarray, scale: float) -> dict:
    branch = protrusion.branch
    return {
        "path": ((protrusion.path - centre) * scale).tolist(),
        "normal": protrusion.normal.tolist(),
        "radius": protrusion.radius * scale,
        "branch": None if branch is None else ((branch - centre) * scale).tolist(),
    }


def sequence_tracks(
    masks: np.ndarray,
    spacing: tuple[float, float, float],
    centres: np.ndarray,
    times: np.ndarray,
    *,
    scale: float,
    radius: float,
    reach: float,
    gate: float,
) -> dict:
    """Measure one sequence's body frames and protrusion tracks.

    Parameters
    ----------
    masks : np.ndarray
        bool (T, Z, Y, X) masks of one cell.
    spacing : tuple of float
        Voxel size (z, y, x), µm.
    centres : np.ndarray
        (T, 3) each frame's centre, µm in the voxel frame (the prepared file's ``frame_centre``).
    times : np.ndarray
        (T,) each frame's time in [-1, 1].
    scale : float
        Normalised units per µm.
    radius, reach : float
        Opening radius and least reach of a protrusion, µm
        (:func:`~cellsdf.dataset.decompose.frame_protrusions`).
    gate : float
        Farthest a protrusion's base moves between frames and stays the same protrusion, µm.

    Returns
    -------
    dict
        ``times``; ``body_centre`` (T, 3) and ``body_axes`` (T, 3, 3) in normalised units; ``tracks``, each
        with ``frames`` (indices) and, per frame, ``path`` (K, 3), ``normal`` (3,), ``radius`` and ``branch``
        ((K, 3) or None), in normalised units.
    """
    step = np.asarray(spacing, float)
    body_centres, body_axes, tracks = [], [], []
    open_tracks: dict[int, int] = {}
    previous = np.zeros((0, 3))
    for k, mask in enumerate(masks):
        box = ndimage.find_objects(mask.astype(np.uint8))
        if not box:
            raise InputError(f"frame {k}", "is empty; every frame of a cell needs its mask")
        box = tuple(slice(max(s.start - _PAD, 0), s.stop + _PAD) for s in box[0])
        offset = np.array([s.start for s in box]) * step
        body, found = frame_protrusions(mask[box], radius=radius, reach=reach, spacing=spacing)
        if not body.any():
            raise InputError(
                f"frame {k}",
                f"has no body: no ball of radius {radius} µm fits in the cell; lower body_radius",
            )
        centre, axes = body_frame(body, step)
        body_centres.append(((centre + offset - centres[k]) * scale).tolist())
        body_axes.append(axes.tolist())
        shifted = [
            Protrusion(p.path + offset, p.normal, p.radius, None if p.branch is None else p.branch + offset)
            for p in found
        ]
        bases = np.array([p.path[0] for p in shifted]).reshape(-1, 3)
        links = link_frames(previous, bases, gate=gate)
        now: dict[int, int] = {}
        for i, protrusion in enumerate(shifted):
            if i in links and links[i] in open_tracks:
                index = open_tracks[links[i]]
            else:
                index = len(tracks)
                tracks.append({"frames": [], "frame": []})
            tracks[index]["frames"].append(k)
            tracks[index]["frame"].append(_normalised(protrusion, centres[k], scale))
            now[i] = index
        open_tracks, previous = now, bases
    return {
        "times": [float(t) for t in times],
        "body_centre": body_centres,
        "body_axes": body_axes,
        "tracks": tracks,
    }


def measure_tracks(
    loaders: list[SequenceLoader],
    prepared: str | Path,
    *,
    radius: float,
    reach: float,
    gate: float,
    progress: bool = False,
) -> list[dict]:
    """Measure the protrusion tracks of every sequence of a prepared data set from its masks.

    Parameters
    ----------
    loaders : list of SequenceLoader
        The masks the data set was prepared from, in its order.
    prepared : str or Path
        The prepared dataset (its frame centres, times and scale place the measurements).
    radius, reach, gate : float
        See :func:`sequence_tracks`.
    progress : bool
        Show a progress bar.

    Returns
    -------
    list of dict
        One :func:`sequence_tracks` record per sequence, with its ``name``.
    """
    index = read_index(prepared)
    if [loader.name for loader in loaders] != index.names:
        raise InputError(prepared, "holds other sequences than the masks its protrusions are measured from")
    records = []
    for i, loader in enumerate(track(loaders, "measuring protrusions", show=progress)):
        seq = loader.load()
        rows = index.rows(i)
        try:
            record = sequence_tracks(
                seq.masks,
                seq.spacing,
                index.frame_centre[rows],
                index.frame_t[rows],
                scale=index.scale,
                radius=radius,
                reach=reach,
                gate=gate,
            )
        except InputError as err:
            raise InputError(seq.source, f"{seq.name}: {err}") from None
        records.append({"name": seq.name, **record})
    return records
