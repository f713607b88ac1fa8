"""A cell mask split into a body and protrusions: the body is the mask opened by a ball, exact in µm.

The opening keeps every part of the cell a ball of the given radius fits in; what it removes and reaches
far enough beyond the body is a protrusion (a filopodium, a neurite). Thin rims of a flattened body are
cut off by the opening too, but they hug the body, which is why a protrusion must *reach* beyond it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage
from skimage.graph import MCP_Geometric

# Protrusions are 26-connected: one voxel thick diagonal tubes are one piece.
_CONNECT = np.ones((3, 3, 3), bool)


def open_body(mask: np.ndarray, *, radius: float, spacing: tuple[float, float, float]) -> np.ndarray:
    """Return the mask opened by a ball of ``radius`` µm (erosion and dilation by exact distances).

    Parameters
    ----------
    mask : np.ndarray
        bool (Z, Y, X) cell mask.
    radius : float
        Ball radius in µm: between the protrusions' half-thickness and the body's.
    spacing : tuple of float
        Voxel size (z, y, x) in µm.

    Returns
    -------
    np.ndarray
        bool mask of the body, a subset of ``mask``; empty when no ball fits.

    Examples
    --------
    >>> cell = np.zeros((20, 40, 40), bool)
    >>> cell[5:15, 5:25, 5:25] = True      # a body
    >>> cell[9:11, 14:16, 25:38] = True    # a thin protrusion
    >>> body = open_body(cell, radius=2.0, spacing=(1.0, 1.0, 1.0))
    >>> bool(body[10, 15, 10]), bool(body[10, 15, 33])
    (True, False)
    """
    mask = np.asarray(mask, bool)
    return _opened(mask, ndimage.distance_transform_edt(mask, sampling=spacing), radius, spacing)


def _opened(mask: np.ndarray, inside: np.ndarray, radius: float, spacing: tuple[float, ...]) -> np.ndarray:
    """Open ``mask`` by a ball, given its distances to the background ``inside``."""
    core = inside > radius
    if not core.any():
        return core
    return (ndimage.distance_transform_edt(~core, sampling=spacing) <= radius) & mask


def protrusion_labels(
    mask: np.ndarray, body: np.ndarray, *, reach: float, spacing: tuple[float, float, float]
) -> tuple[np.ndarray, int]:
    """Label the pieces of ``mask`` outside ``body`` that reach at least ``reach`` µm beyond it.

    Parameters
    ----------
    mask, body : np.ndarray
        bool (Z, Y, X) cell and its body (:func:`open_body`).
    reach : float
        How far (µm) a piece must reach beyond the body to count; shorter ones stay part of the body.
    spacing : tuple of float
        Voxel size (z, y, x) in µm.

    Returns
    -------
    labels : np.ndarray
        int32 (Z, Y, X), 1..n for the protrusions, 0 elsewhere.
    n : int
        Number of protrusions.
    """
    if not body.any():
        return np.zeros(body.shape, np.int32), 0
    return _reaching(mask, body, ndimage.distance_transform_edt(~body, sampling=spacing), reach)


def _reaching(mask: np.ndarray, body: np.ndarray, away: np.ndarray, reach: float) -> tuple[np.ndarray, int]:
    """Label the pieces of ``mask`` outside ``body`` whose distance ``away`` from it reaches ``reach``."""
    rest = np.asarray(mask, bool) & ~body
    labels, n = ndimage.label(rest, _CONNECT)
    if n == 0:
        return np.zeros(rest.shape, np.int32), 0
    far = np.asarray(ndimage.maximum(away, labels, index=np.arange(1, n + 1))) >= reach
    relabel = np.zeros(n + 1, np.int32)
    relabel[1:][far] = np.arange(1, int(far.sum()) + 1)
    return relabel[labels], int(far.sum())


@dataclass(frozen=True)
class Protrusion:
    """One protrusion in one frame, in µm in the frame's voxel coordinates (z, y, x).

    Attributes
    ----------
    path : np.ndarray
        (K, 3) centreline from its base on the body's surface to its tip, evenly spaced.
    normal : np.ndarray
        (3,) outward unit normal of the body at the base.
    radius : float
        Median half-thickness along the centreline, µm.
    branch : np.ndarray or None
        (K, 3) centreline of its largest branch, from where it leaves ``path`` to its tip; None without one.
    """

    path: np.ndarray
    normal: np.ndarray
    radius: float
    branch: np.ndarray | None

    @property
    def length(self) -> float:
        """Length of the centreline, µm."""
        return float(arc_lengths(self.path)[-1])


def arc_lengths(points: np.ndarray) -> np.ndarray:
    """Return the length along a (P, 3) polyline at each of its points, starting at 0.

    Examples
    --------
    >>> arc_lengths(np.array([[0.0, 0, 0], [0, 3, 4], [0, 3, 5]])).tolist()
    [0.0, 5.0, 6.0]
    """
    return np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(points, axis=0), axis=1))])


def resample(points: np.ndarray, count: int) -> np.ndarray:
    """Return ``count`` points evenly spaced by arc length along a polyline (its ends kept).

    Examples
    --------
    >>> resample(np.array([[0.0, 0, 0], [0, 0, 1], [0, 0, 3]]), 4)[:, 2].tolist()
    [0.0, 1.0, 2.0, 3.0]
    """
    arc = arc_lengths(points)
    if arc[-1] == 0.0:
        return np.repeat(points[:1], count, axis=0)
    where = np.linspace(0.0, arc[-1], count)
    return np.stack([np.interp(where, arc, points[:, axis]) for axis in range(points.shape[1])], axis=1)


def _smoothed(voxels: np.ndarray) -> np.ndarray:
    # A voxel path zigzags by a voxel; a running mean over three keeps its ends and its bends.
    if len(voxels) < 3:
        return voxels.astype(float)
    inner = (voxels[:-2] + voxels[1:-1] + voxels[2:]) / 3.0
    return np.concatenate([voxels[:1], inner, voxels[-1:]]).astype(float)


def _farthest_path(
    piece: np.ndarray, starts: np.ndarray, spacing: np.ndarray, among: np.ndarray | None = None
) -> np.ndarray:
    """Return the shortest path in ``piece`` from ``starts`` to its voxel (of ``among``) farthest by one."""
    mcp = MCP_Geometric(np.where(piece, 1.0, np.inf), sampling=tuple(spacing))
    cumulative, _ = mcp.find_costs([tuple(s) for s in starts])
    targets = piece if among is None else among
    reachable = np.where(targets & np.isfinite(cumulative), cumulative, -1.0)
    tip = np.unravel_index(int(np.argmax(reachable)), piece.shape)
    return np.asarray(mcp.traceback(tip))


def frame_protrusions(
    mask: np.ndarray,
    *,
    radius: float,
    reach: float,
    spacing: tuple[float, float, float],
    points: int = 8,
) -> tuple[np.ndarray, list[Protrusion]]:
    """Split one cell mask into its body and its protrusions' centrelines.

    Each protrusion's centreline is the shortest path inside it from its base (its voxels next to the body)
    to the voxel farthest from the base along such paths; its largest branch, the largest part farther than
    its thickness from that path that still reaches ``reach`` beyond it, is followed the same way.

    Parameters
    ----------
    mask : np.ndarray
        bool (Z, Y, X) cell mask (a crop with a free border is enough).
    radius, reach : float
        Opening radius and least reach beyond the body, µm (:func:`open_body`, :func:`protrusion_labels`).
    spacing : tuple of float
        Voxel size (z, y, x) in µm.
    points : int
        Points per centreline.

    Returns
    -------
    body : np.ndarray
        bool mask of the body.
    protrusions : list of Protrusion
        In µm of the mask's voxel frame (voxel index times spacing).
    """
    mask = np.asarray(mask, bool)
    step = np.asarray(spacing, float)
    # Three distance transforms serve the opening, the reach, the normals and the radii.
    inside = ndimage.distance_transform_edt(mask, sampling=spacing)
    body = _opened(mask, inside, radius, spacing)
    if not body.any():
        return body, []
    away = ndimage.distance_transform_edt(~body, sampling=spacing)
    labels, n = _reaching(mask, body, away, reach)
    if n == 0:
        return body, []
    gradient = np.stack(np.gradient(away, *step))
    found = []
    for index, box in enumerate(ndimage.find_objects(labels), start=1):
        box = tuple(slice(max(s.start - 2, 0), s.stop + 2) for s in box)
        offset = np.array([s.start for s in box])
        piece = labels[box] == index
        near = away[box]
        base = np.argwhere(piece & (near <= near[piece].min() + step.max()))
        voxels = _farthest_path(piece, base, step)
        path = resample(_smoothed(voxels + offset) * step, points)
        start = tuple(voxels[0] + offset)
        normal = gradient[(slice(None), *start)]
        normal = normal / max(float(np.linalg.norm(normal)), 1e-9)
        thickness = float(np.median(inside[tuple((voxels + offset).T)]))
        branch = _branch(piece, voxels, thickness, reach, step, offset, points)
        found.append(Protrusion(path, normal, thickness, branch))
    return body, found


def _branch(
    piece: np.ndarray,
    voxels: np.ndarray,
    thickness: float,
    reach: float,
    step: np.ndarray,
    offset: np.ndarray,
    points: int,
) -> np.ndarray | None:
    """Return the centreline of the largest branch off the path ``voxels`` of ``piece``, or None."""
    on_path = np.zeros(piece.shape, bool)
    on_path[tuple(voxels.T)] = True
    from_path = ndimage.distance_transform_edt(~on_path, sampling=step)
    rest = piece & (from_path > thickness + step.max())
    labels, n = ndimage.label(rest, _CONNECT)
    if n == 0:
        return None
    far = np.asarray(ndimage.maximum(from_path, labels, index=np.arange(1, n + 1)))
    if far.max() < reach + thickness:
        return None
    side = labels == int(np.argmax(far)) + 1
    traced = _farthest_path(piece, voxels, step, among=side)
    return resample(_smoothed(traced + offset) * step, points)
