"""Tracks from label time-lapses whose labels are per frame (segmentation output): link objects by overlap."""

from __future__ import annotations

import numpy as np

# A current object counts as a piece of a previous one only when it shares at least this share of its own
# voxels with it; below that, a touch of neighbouring cells would read as a division.
_MIN_CHILD_OVERLAP = 0.3


def link_overlap(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Link each frame's objects to the previous frame's by overlap, recording divisions.

    Every frame's objects are matched to the tracks alive in the previous frame. A previous object that at
    least two current objects overlap (each with at least 30 % of its own voxels) has divided: its track ends
    and each of those objects starts a daughter track. The remaining objects are matched one to one by an
    optimal assignment on IoU (:func:`scipy.optimize.linear_sum_assignment`); an object that overlaps no
    unmatched track starts a new track without a parent.

    Parameters
    ----------
    labels : np.ndarray
        Integer (T, Z, Y, X) labels, 0 is background; the same value in two frames need not be the same cell.

    Returns
    -------
    tuple of np.ndarray
        The labels renumbered so that each track keeps one id (int32, same shape), and the track table
        (N, 4) int64 with rows ``L B E P`` (track id, first frame, last frame, parent id or 0), as in the
        Cell Tracking Challenge's ``man_track.txt``.

    Examples
    --------
    >>> frames = np.zeros((2, 1, 1, 4), np.uint16)
    >>> frames[0, 0, 0, :] = 5                       # one object
    >>> frames[1, 0, 0, :2], frames[1, 0, 0, 2:] = 7, 9  # split in two
    >>> tracks, table = link_overlap(frames)
    >>> table.tolist()
    [[1, 0, 0, 0], [2, 1, 1, 1], [3, 1, 1, 1]]
    """
    labels = np.asarray(labels)
    if labels.ndim != 4 or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"expected integer (T, Z, Y, X) labels, got {labels.dtype} {labels.shape}")
    tracks = np.zeros(labels.shape, np.int32)
    rows: list[list[int]] = []  # [id, begin, end, parent]; id = row index + 1
    previous = np.zeros(labels.shape[1:], np.int32)
    for t, frame in enumerate(labels):
        # New tracks are numbered in raster order of the objects, so the result does not depend on the values.
        objects, first = np.unique(frame, return_index=True)
        objects = objects[np.argsort(first)]
        objects = objects[objects != 0]
        ids = np.asarray(_assign(previous, frame, objects, rows, t), np.int32)
        for track_id in ids:
            rows[track_id - 1][2] = t
        # One look-up for the whole frame rather than a pass over it per object.
        foreground = frame != 0
        order = np.argsort(objects)
        tracks[t][foreground] = ids[order][np.searchsorted(objects[order], frame[foreground])]
        previous = tracks[t]
    return tracks, np.asarray(rows, dtype=np.int64).reshape(-1, 4)


def _assign(
    previous: np.ndarray, frame: np.ndarray, objects: np.ndarray, rows: list[list[int]], t: int
) -> list[int]:
    """Track id of each current object; new tracks are appended to ``rows``."""
    alive = np.unique(previous)
    alive = alive[alive != 0]
    assigned = [0] * len(objects)
    if len(alive) and len(objects):
        inter, iou, sizes = _overlaps(previous, frame, alive, objects)
        best = inter.argmax(axis=0)
        shared = inter[best, np.arange(len(objects))]
        pieces = (shared >= _MIN_CHILD_OVERLAP * sizes) & (shared > 0)
        divided = {int(p) for p in np.unique(best[pieces]) if np.count_nonzero(pieces & (best == p)) >= 2}
        for j in np.flatnonzero(pieces):
            if int(best[j]) in divided:
                rows.append([len(rows) + 1, t, t, int(alive[best[j]])])
                assigned[j] = len(rows)
        free_rows = [i for i in range(len(alive)) if i not in divided]
        free_cols = [j for j in range(len(objects)) if not assigned[j]]
        if free_rows and free_cols:
            # scipy.optimize is imported here: the command line's option checks import this module's names.
            from scipy.optimize import linear_sum_assignment

            sub = iou[np.ix_(free_rows, free_cols)]
            for r, c in zip(*linear_sum_assignment(sub, maximize=True), strict=True):
                if sub[r, c] > 0:
                    assigned[free_cols[c]] = int(alive[free_rows[r]])
    for j, track_id in enumerate(assigned):
        if not track_id:
            rows.append([len(rows) + 1, t, t, 0])
            assigned[j] = len(rows)
    return assigned


def _overlaps(
    previous: np.ndarray, frame: np.ndarray, alive: np.ndarray, objects: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Voxels shared and IoU of previous tracks (rows) and current objects (columns); the objects' sizes."""
    row = np.searchsorted(alive, previous)
    order = np.argsort(objects)
    col = order[np.minimum(np.searchsorted(objects[order], frame), len(objects) - 1)]
    both = (previous != 0) & (frame != 0)
    pairs = row[both] * len(objects) + col[both]
    inter = np.bincount(pairs, minlength=len(alive) * len(objects)).reshape(len(alive), len(objects))
    prev_sizes = np.bincount(row[previous != 0], minlength=len(alive))
    cur_sizes = np.bincount(col[frame != 0], minlength=len(objects))
    union = prev_sizes[:, None] + cur_sizes[None, :] - inter
    return inter, inter / np.maximum(union, 1), cur_sizes
