"""CTC track tables (``L B E P``) from 2D or 3D label time-lapses and single-cell masks."""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from cellsdf.io.ctc import track_table

PARENT_LABEL = 1
DAUGHTER_LABELS = (2, 3)
# An object is a cell when its area is at least this fraction of the largest object's in its frame.
MIN_CELL_FRACTION = 0.1


def track_single_cell(
    masks: np.ndarray,
    division_frame: int | None = None,
    components: np.ndarray | None = None,
    *,
    min_fraction: float = MIN_CELL_FRACTION,
) -> tuple[np.ndarray, np.ndarray]:
    """Label a time-lapse of one cell's 2D masks, splitting it into two daughter tracks when it divides.

    Only objects that are cells take part (:func:`drop_specks`): in each frame, a component whose area is
    below ``min_fraction`` (10 % by default) of the area of that frame's largest component is a speck (a
    fragment of a decoded or segmented cell, not a cell); it is removed from the labels (background) and
    never counts towards a division, so a fragment never becomes a track.

    Before the division every cell pixel has label 1 (the parent). The division happens at
    ``division_frame``, or where the frame first holds two or more cells when none is given; if the frame
    still holds one cell at the recorded frame (the daughters overlap in a projection), the split waits for
    the first later frame with two. In the division frame the two largest cells become daughters 2 and 3
    (larger first) and the parent track ends in the frame before. After it, each cell takes the daughter
    label it overlaps most in the previous frame.

    Cells beyond two (after the specks are gone) are not given tracks of their own: they join the nearest
    daughter (pixel-wise nearest previous label for cells that touch no daughter, or touch both after the
    daughters merge in the projection).

    Parameters
    ----------
    masks : np.ndarray
        bool (T, Y, X) or (T, Z, Y, X), the cell's pixels in each frame (e.g. the maximum projection of a 3D
        cell, or the 3D cell itself). Components are fully connected (8 in 2D, 26 in 3D): pixels of one cell
        that touch only at a corner still belong together.
    division_frame : int or None
        Frame in which the daughters first exist, as recorded by a simulator or generator.
    components : np.ndarray, optional
        int (T, Y, X) ids of the objects each pixel belongs to (0 on the background), replacing the 2D
        connected components: e.g. the 3D connected components of each frame, projected, so that daughters
        that overlap in the projection are still told apart.
    min_fraction : float
        Least area of a cell, as a fraction of the largest component's area in its frame (0 keeps every
        component).

    Returns
    -------
    labels : np.ndarray
        uint16 (T, Y, X): 0 background, 1 parent, 2 and 3 daughters.
    tracks : np.ndarray
        int64 (N, 4) ``L B E P`` rows; daughters have parent 1 (parent 0 when the cell is already divided
        in frame 0, in which case label 1 is not used).

    Raises
    ------
    ValueError
        If ``masks`` is not (T, Y, X), ``division_frame`` is outside the sequence, ``min_fraction`` is not
        in [0, 1], or a track has a gap (the cell vanishes and comes back).

    Examples
    --------
    A cell with a one-pixel speck in frame 1 keeps one track; the speck is background:

    >>> masks = np.zeros((3, 12, 12), bool)
    >>> masks[:, 2:8, 2:8] = True
    >>> masks[1, 10, 10] = True
    >>> labels, tracks = track_single_cell(masks)
    >>> tracks.tolist(), int(labels[1, 10, 10])
    ([[1, 0, 2, 0]], 0)
    """
    masks = np.asarray(masks, dtype=bool)
    if masks.ndim not in (3, 4):
        raise ValueError(f"expected bool (T, Y, X) or (T, Z, Y, X) masks, got shape {masks.shape}")
    n_frames = masks.shape[0]
    if division_frame is not None and not 0 <= division_frame < n_frames:
        raise ValueError(f"division_frame {division_frame} is outside frames 0..{n_frames - 1}")
    if not 0 <= min_fraction <= 1:
        raise ValueError(f"min_fraction must be in [0, 1], got {min_fraction}")
    if components is None:
        connectivity = ndimage.generate_binary_structure(masks.ndim - 1, masks.ndim - 1)
        components = np.stack([ndimage.label(frame, structure=connectivity)[0] for frame in masks])
    elif components.shape != masks.shape:
        raise ValueError(f"components {components.shape} and masks {masks.shape} differ in shape")
    # Ids are compacted per frame: objects hidden in a projection leave gaps that counts must not see.
    components = [
        drop_specks(np.where(frame, ids, 0), min_fraction=min_fraction)
        for frame, ids in zip(masks, components, strict=True)
    ]
    first = division_frame or 0
    split = next((t for t in range(first, n_frames) if components[t][1] >= 2), None)
    labels = np.zeros(masks.shape, dtype=np.uint16)
    for t in range(n_frames):
        comp, count = components[t]
        if split is None or t < split:
            labels[t][comp > 0] = PARENT_LABEL
        elif t == split:
            labels[t] = _split_largest(comp, count)
        else:
            labels[t] = _follow(comp, count, labels[t - 1])
    divisions = [] if split in (None, 0) else [(split, PARENT_LABEL, DAUGHTER_LABELS)]
    return labels, track_table(labels, divisions)


def drop_specks(ids: np.ndarray, *, min_fraction: float = MIN_CELL_FRACTION) -> tuple[np.ndarray, int]:
    """Keep the objects of one frame that are cells: at least ``min_fraction`` of the largest one's area.

    Parameters
    ----------
    ids : np.ndarray
        int (Y, X) object ids, 0 on the background (e.g. connected components, or projected 3D components).
    min_fraction : float
        Least area of a cell relative to the frame's largest object; smaller objects (specks) become
        background.

    Returns
    -------
    ids : np.ndarray
        int64 (Y, X), the cells numbered 1..count (in the order of their old ids), 0 elsewhere.
    count : int
        Number of cells.

    Examples
    --------
    >>> ids = np.array([[1] * 12 + [0, 2, 0, 3, 3]])  # areas 12, 1 and 2: object 2 is a speck
    >>> cells, count = drop_specks(ids)
    >>> cells.tolist(), count
    ([[1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 2, 2]], 2)
    """
    compact, count = _compact(np.asarray(ids))
    if count < 2 or min_fraction <= 0:
        return compact, count
    areas = np.bincount(compact.ravel(), minlength=count + 1)[1:]
    keep = areas >= min_fraction * areas.max()
    lut = np.zeros(count + 1, dtype=np.int64)
    lut[1:][keep] = np.arange(1, int(keep.sum()) + 1)
    return lut[compact], int(keep.sum())


def _compact(ids: np.ndarray) -> tuple[np.ndarray, int]:
    """Renumber a frame's object ids to 1..count (0 stays background); return them and the count."""
    values, inverse = np.unique(ids, return_inverse=True)
    offset = 1 if values[0] == 0 else 0
    compact = (inverse.reshape(ids.shape) + 1 - offset).astype(np.int64)
    return compact, len(values) - offset


def _split_largest(comp: np.ndarray, count: int) -> np.ndarray:
    sizes = np.bincount(comp.ravel(), minlength=count + 1)[1:]
    largest = np.argsort(-sizes, kind="stable")[:2] + 1
    seeds = np.zeros(comp.shape, dtype=np.uint16)
    for label, component in zip(DAUGHTER_LABELS, largest, strict=True):
        seeds[comp == component] = label
    return _fill_nearest(seeds, comp > 0)


def _follow(comp: np.ndarray, count: int, previous: np.ndarray) -> np.ndarray:
    out = np.zeros(comp.shape, dtype=np.uint16)
    if count == 0 or not previous.any():
        return out
    # overlap[c, l]: pixels of component c on previous label l; one bincount instead of a loop over pairs.
    n_prev = int(previous.max()) + 1
    overlap = np.bincount(
        comp.ravel().astype(np.int64) * n_prev + previous.ravel(), minlength=(count + 1) * n_prev
    ).reshape(count + 1, n_prev)[1:, 1:]
    touched = (overlap > 0).sum(axis=1)
    lut = np.zeros(count + 1, dtype=np.uint16)
    single = touched == 1
    lut[1:][single] = overlap[single].argmax(axis=1) + 1
    out[:] = lut[comp]
    # Components that touch no previous label or several of them are shared out pixel by pixel.
    ambiguous = np.isin(comp, np.flatnonzero(~single) + 1)
    if ambiguous.any():
        nearest = _fill_nearest(previous, ambiguous)
        out[ambiguous] = nearest[ambiguous]
    return out


def _fill_nearest(seeds: np.ndarray, where: np.ndarray) -> np.ndarray:
    """Give every pixel of ``where`` the label of its nearest non-zero pixel of ``seeds``."""
    _, nearest = ndimage.distance_transform_edt(seeds == 0, return_indices=True)
    return np.where(where, seeds[tuple(nearest)], 0).astype(np.uint16)
