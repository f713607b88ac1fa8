"""Label images to cells: one sequence per label (or per linked track), cut out, with the border rule."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage
from skimage.segmentation import relabel_sequential

from cellsdf.dataset.linking import link_overlap

LINKS = ("labels", "overlap")
BORDERS = ("drop", "keep")


@dataclass(frozen=True)
class LabelCell:
    """One cell cut out of a label time-lapse.

    Attributes
    ----------
    name : str
        ``<image>_label<id>`` (labels are tracks) or ``<image>_track<id>`` (linked by overlap).
    masks : np.ndarray
        bool (T, Z, Y, X) in one crop shared by all the cell's frames, so its motion is kept.
    frame_numbers : np.ndarray
        Index of each mask's frame in the image; frames in which the cell is absent are skipped.
    division_frame : int or None
        Index (into ``masks``) of the first frame of the daughters, when the cell divided.
    touches_border : bool
        Whether the cell reaches the image border in any frame, so that its shape is cut.
    """

    name: str
    masks: np.ndarray
    frame_numbers: np.ndarray
    division_frame: int | None
    touches_border: bool


def is_label_image(values: np.ndarray) -> bool:
    """Tell whether an integer image holds more than one non-zero value (several labelled objects)."""
    foreground = values[values != 0]
    return bool(foreground.size) and foreground.min() != foreground.max()


def touches_border(masks: np.ndarray) -> bool:
    """Tell whether any frame of a (T, Z, Y, X) mask has foreground on a face of its volume."""
    for axis in range(1, masks.ndim):
        first = np.take(masks, 0, axis=axis)
        last = np.take(masks, masks.shape[axis] - 1, axis=axis)
        if first.any() or last.any():
            return True
    return False


def label_cells(labels: np.ndarray, *, name: str, link: str = "labels", margin: int = 2) -> list[LabelCell]:
    """Split a (T, Z, Y, X) label image into cells.

    With ``link='labels'`` each label value is one cell in every frame it occurs in (as in a Cell Tracking
    Challenge folder); a label that vanishes and comes back stays one cell whose missing frames are skipped.
    With ``link='overlap'`` the labels are per frame and objects are linked into tracks by
    :func:`cellsdf.dataset.linking.link_overlap`. A cell that divides is one sequence with its daughters
    (as the simulator's dividing cells are), up to their own division; grand-daughters start new sequences.

    Parameters
    ----------
    labels : np.ndarray
        Integer (T, Z, Y, X) labels, 0 is background.
    name : str
        Name of the image, the prefix of the cells' names.
    link : {'labels', 'overlap'}
        What makes one cell over time.
    margin : int
        Background voxels kept around the union of a cell's frames.

    Returns
    -------
    list of LabelCell
        In track order (label value, or order of first appearance when linked).
    """
    if link not in LINKS:
        raise ValueError(f"link must be one of {LINKS}, got {link!r}")
    if link == "overlap":
        tracks, table = link_overlap(labels)
        kind, names = "track", {int(i): int(i) for i in table[:, 0]}
    else:
        # Consecutive ids keep the per-label bookkeeping small whatever values the labels use.
        tracks, _, inverse = relabel_sequential(np.asarray(labels))
        ids = np.arange(1, len(inverse.in_values))
        table = np.stack([ids, ids * 0, ids * 0, ids * 0], axis=1).astype(np.int64)
        kind, names = "label", {int(i): int(inverse[i]) for i in ids}
    parents = {int(row[0]): int(row[3]) for row in table}
    heads: dict[int, bool] = {}
    for track_id in sorted(parents):  # a parent's id is always lower than its daughters'
        parent = parents[track_id]
        heads[track_id] = parent == 0 or not heads[parent]
    members = {h: [h] for h, is_head in heads.items() if is_head}
    for track_id, is_head in heads.items():
        if not is_head:
            members[parents[track_id]].append(track_id)
    boxes = _boxes(tracks, int(table[:, 0].max()) if len(table) else 0)
    shape = np.asarray(labels.shape[1:])
    cells = []
    for head, ids in members.items():
        frames = sorted({t for i in ids for t in boxes[i]})
        lo = np.min([boxes[i][t][0] for i in ids for t in boxes[i]], axis=0)
        hi = np.max([boxes[i][t][1] for i in ids for t in boxes[i]], axis=0)
        start, stop = np.maximum(lo - margin, 0), np.minimum(hi + margin, shape)
        crop = tuple(slice(a, b) for a, b in zip(start, stop, strict=True))
        daughters = [i for i in ids if i != head]
        division = frames.index(min(min(boxes[i]) for i in daughters)) if daughters else None
        cells.append(
            LabelCell(
                name=f"{name}_{kind}{names[head]}",
                masks=np.stack([np.isin(tracks[t][crop], ids) for t in frames]),
                frame_numbers=np.asarray(frames),
                division_frame=division,
                touches_border=bool(np.any(lo == 0) or np.any(hi == shape)),
            )
        )
    return cells


def _boxes(tracks: np.ndarray, max_label: int) -> dict[int, dict[int, tuple[np.ndarray, np.ndarray]]]:
    """Per track id, per frame it occurs in: its bounding box (start inclusive, stop exclusive)."""
    boxes: dict[int, dict[int, tuple[np.ndarray, np.ndarray]]] = {}
    for t, frame in enumerate(tracks):
        for index, box in enumerate(ndimage.find_objects(frame, max_label=max_label)):
            if box is not None:
                start = np.array([s.start for s in box])
                stop = np.array([s.stop for s in box])
                boxes.setdefault(index + 1, {})[t] = (start, stop)
    return boxes
