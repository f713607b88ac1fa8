"""Join fragments to their cell where the decoded field nearly connects them.

A decoder that draws a thin part (a filopodium) slightly too thin lets its field rise a little above zero
for a stretch: the ``sdf <= 0`` mask then shows the part's tip as a floating fragment although the field
still holds the connection. Measured on ``filo`` models, almost every fragment meets its cell where the field
stays within a quarter of a voxel of zero. :func:`join_fragments` finds, for each fragment, the path to a
cell whose highest field value is lowest, and adds that path's voxels to the mask when the value is within
``tolerance`` voxels of the surface. The mask then still agrees with the field to within the tolerance;
fragments the field separates by more stay, and the topology checks count them.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy import ndimage
from skimage.graph import MCP

from cellsdf.geometry.components import FULL, component_count, label_box

JOIN_TOLERANCE = 0.5  # voxels: a gap the field closes within half a voxel is joined
CELL_FRACTION = 0.1  # a component below this share of the frame's largest is a fragment (as benchmark specks)
_REACH = 6  # voxels around a fragment searched for its cell (gaps up to 5 voxels long)

Field = Callable[[np.ndarray], np.ndarray]


def join_fragments(
    mask: np.ndarray,
    field: Field,
    *,
    tolerance: float = JOIN_TOLERANCE,
    cell_fraction: float = CELL_FRACTION,
) -> tuple[np.ndarray, int, int]:
    """Add to a mask the voxels that join each fragment to a cell through a near-zero stretch of the field.

    Components are 26-connected. A component smaller than ``cell_fraction`` of the largest is a fragment;
    the others are cells (after a division, two). Each fragment is joined along the path to a cell, within
    :data:`_REACH` voxels of it, that keeps the field lowest, when the field stays at most ``tolerance``
    voxels above zero along it.

    Parameters
    ----------
    mask : np.ndarray
        bool (Z, Y, X), ``sdf <= 0``.
    field : callable
        Maps (N, 3) int voxel indices (z, y, x) to the field there, float (N,), in voxels (positive outside).
    tolerance : float
        Highest field value, in voxels, a joining path may pass; 0 joins nothing.
    cell_fraction : float
        Share of the largest component's voxels from which a component counts as a cell.

    Returns
    -------
    mask : np.ndarray
        bool (Z, Y, X): ``mask`` with the joining paths (a copy when any were added).
    joined : int
        Fragments joined to a cell.
    components : int
        26-connected components of the returned mask (the count the topology rules use, found on the way).

    Raises
    ------
    ValueError
        If ``mask`` is not 3D, ``tolerance`` is negative or ``cell_fraction`` is outside [0, 1].

    Examples
    --------
    Two blocks one voxel apart, with the field a tenth of a voxel above zero in the gap:

    >>> mask = np.zeros((5, 5, 12), bool)
    >>> mask[1:4, 1:4, 1:6] = True
    >>> mask[2, 2, 7] = True
    >>> field = lambda idx: np.where((idx == [2, 2, 6]).all(axis=1), 0.1, 5.0)
    >>> joined, n, components = join_fragments(mask, field)
    >>> n, components, bool(joined[2, 2, 6]), int(joined.sum() - mask.sum())
    (1, 1, True, 1)
    """
    mask = np.asarray(mask, bool)
    if mask.ndim != 3:
        raise ValueError(f"mask must be 3D, got shape {mask.shape}")
    if not tolerance >= 0:
        raise ValueError(f"tolerance must be >= 0, got {tolerance!r}")
    if not 0 <= cell_fraction <= 1:
        raise ValueError(f"cell_fraction must be in [0, 1], got {cell_fraction!r}")
    labelled = label_box(mask)
    if labelled is None:
        return mask, 0, 0
    labels, count, box = labelled
    if count < 2 or tolerance == 0:
        return mask, 0, count
    sizes = np.bincount(labels.ravel())[1:]
    fragments = np.flatnonzero(sizes < cell_fraction * sizes.max()) + 1
    if not len(fragments):
        return mask, 0, count
    offset = np.array([s.start for s in box])
    out = mask.copy()
    cells = np.zeros(mask.shape, bool)
    cells[box] = np.isin(labels, np.flatnonzero(sizes >= cell_fraction * sizes.max()) + 1)
    slices = ndimage.find_objects(labels)
    joined = 0
    # Largest first: a small tip may reach its cell through a larger piece joined before it.
    for label in sorted(fragments, key=lambda i: -sizes[i - 1]):
        own = slices[label - 1]
        local = tuple(
            slice(max(s.start + o - _REACH, 0), min(s.stop + o + _REACH, n))
            for s, o, n in zip(own, offset, mask.shape, strict=True)
        )
        # The fragment's voxels in the crop's frame (the crop holds the fragment's whole bounding box).
        inside = tuple(
            slice(s.start + o - c.start, s.stop + o - c.start)
            for s, o, c in zip(own, offset, local, strict=True)
        )
        start = np.zeros(tuple(s.stop - s.start for s in local), bool)
        start[inside] = labels[own] == label
        path = _joining_path(out[local], cells[local], start, field, local, tolerance)
        if path is None:
            continue
        region = out[local]
        region[path] = True
        cells_local = cells[local]
        cells_local[start | path] = True
        joined += 1
    if not joined:
        return mask, 0, count
    # A path may pass through another fragment, so the joined mask is counted afresh.
    return out, joined, component_count(out)


def _joining_path(
    mask: np.ndarray,
    cells: np.ndarray,
    start: np.ndarray,
    field: Field,
    local: tuple[slice, slice, slice],
    tolerance: float,
) -> np.ndarray | None:
    """Voxels (bool, the crop's shape) of the lowest path from ``start`` to ``cells``, or None."""
    if not cells.any():
        return None
    outside = np.argwhere(~mask)
    values = np.zeros(mask.shape, np.float64)
    corner = np.array([s.start for s in local])
    values[tuple(outside.T)] = field(outside + corner)
    passable = mask | (values <= tolerance)
    reach, _ = ndimage.label(passable, structure=FULL)
    shared = np.unique(reach[start])
    if not np.isin(reach[cells], shared).any():
        return None
    # Each step costs one, plus a penalty that grows with the field, so the path keeps as low as it can and is
    # as short as that allows; impassable voxels are infinite.
    costs = np.where(passable, 1.0 + 100.0 * np.clip(values, 0, None) / max(tolerance, 1e-6), np.inf)
    finder = MCP(costs, fully_connected=True)
    cumulative, _ = finder.find_costs(np.argwhere(start), np.argwhere(cells), find_all_ends=False)
    ends = np.argwhere(cells)
    end = ends[np.argmin(cumulative[tuple(ends.T)])]
    path = np.zeros(mask.shape, bool)
    path[tuple(np.array(finder.traceback(end)).T)] = True
    return path
