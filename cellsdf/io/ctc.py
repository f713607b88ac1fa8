"""Cell Tracking Challenge folders with 3D label masks: one sequence per track label."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import ndimage

from cellsdf.errors import InputError
from cellsdf.io.tiff import read_timelapse

_MASK_NAME = re.compile(r"^(?:man_track|man_seg|mask)(\d+)\.tiff?$")
# Tracking markers cover every frame, segmentation ground truth often only a few; results are a fallback.
_SUBFOLDERS = ("_GT/TRA", "_GT/SEG", "_RES")
_SEQUENCE_DIR = re.compile(r"^(\d\d)(?:_GT|_RES)?$")


@dataclass(frozen=True)
class Track:
    """One tracked cell cut out of a CTC label sequence.

    Attributes
    ----------
    name : str
        ``<sequence>_label<id>``.
    masks : np.ndarray
        bool (T, Z, Y, X), the cell's voxels in the common crop of all its frames.
    frame_numbers : np.ndarray
        CTC frame number of each mask.
    spacing : tuple of float
        Voxel size (z, y, x) in µm, from the TIFF metadata.
    origin : tuple of int
        Voxel index (z, y, x) of the crop's corner in the full field.
    """

    name: str
    masks: np.ndarray
    frame_numbers: np.ndarray
    spacing: tuple[float, float, float]
    origin: tuple[int, int, int]


def is_ctc_folder(path: Path) -> bool:
    """Tell whether ``path`` is a CTC data set root or a folder of CTC label TIFFs."""
    return bool(_ctc_mask_folders(path))


def read_ctc_tracks(path: str | Path, margin: int = 2) -> list[Track]:
    """Read every track label of a CTC folder as its own sequence, cut out around the cell.

    Parameters
    ----------
    path : str or Path
        A data set root holding ``01_GT/TRA`` (or ``01_GT/SEG``, ``01_RES``; ``02``... too), or one folder of
        ``man_track000.tif`` / ``man_seg000.tif`` / ``mask000.tif`` files.
    margin : int
        Background voxels kept around the union of each cell's frames.

    Returns
    -------
    list of Track
        One per (sequence folder, label), in label order. The crop is shared by all frames of a track, so
        the cell's motion inside it is kept.

    Raises
    ------
    InputError
        If no CTC label files are found, a file is not a 3D label image, or frames differ in shape.
    """
    path = Path(path)
    folders = _ctc_mask_folders(path)
    if not folders:
        raise InputError(path, "no CTC label files (man_track*.tif, man_seg*.tif or mask*.tif) found")
    tracks = []
    for prefix, folder in folders:
        tracks.extend(_read_folder(prefix, folder, margin))
    if not tracks:
        raise InputError(path, "CTC label files hold no labelled cells")
    return tracks


def _ctc_mask_folders(path: Path) -> list[tuple[str, Path]]:
    if _mask_files(path):
        return [(path.name, path)]
    ids = (
        sorted({m.group(1) for p in path.iterdir() if (m := _SEQUENCE_DIR.match(p.name))})
        if path.is_dir()
        else []
    )
    found = []
    for seq in ids:
        for sub in _SUBFOLDERS:
            folder = path / f"{seq}{sub}"
            if _mask_files(folder):
                found.append((seq, folder))
                break
    return found


def _mask_files(folder: Path) -> list[tuple[int, Path]]:
    if not folder.is_dir():
        return []
    matches = ((_MASK_NAME.match(p.name), p) for p in folder.iterdir())
    return sorted((int(m.group(1)), p) for m, p in matches if m)


def _read_frame(path: Path) -> tuple[np.ndarray, tuple[float, float, float]]:
    stack = read_timelapse(path)
    if stack.has_time:
        raise InputError(
            path, f"expected one 3D label frame, got a time-lapse of {stack.data.shape[0]} frames"
        )
    labels = stack.data[0]
    if not np.issubdtype(labels.dtype, np.integer):
        raise InputError(path, f"CTC labels must be integers, got {labels.dtype}")
    return labels, stack.spacing


def _read_folder(prefix: str, folder: Path, margin: int) -> list[Track]:
    files = _mask_files(folder)
    # First pass: where each label lives over time, so that each track gets one crop for all its frames.
    boxes: dict[int, list[int]] = {}
    frames_of: dict[int, list[int]] = {}
    shape = spacing = None
    for number, file in files:
        labels, spacing = _read_frame(file)
        if shape is None:
            shape = labels.shape
        elif labels.shape != shape:
            raise InputError(file, f"frame shape {labels.shape} differs from {shape} of the first frame")
        for label, box in enumerate(ndimage.find_objects(labels), start=1):
            if box is None:
                continue
            lo = [s.start for s in box]
            hi = [s.stop for s in box]
            old = boxes.get(label)
            boxes[label] = lo + hi if old is None else [*np.minimum(old[:3], lo), *np.maximum(old[3:], hi)]
            frames_of.setdefault(label, []).append(number)
    crops = {
        label: tuple(slice(max(b[i] - margin, 0), min(b[i + 3] + margin, shape[i])) for i in range(3))
        for label, b in boxes.items()
    }
    masks: dict[int, list[np.ndarray]] = {label: [] for label in boxes}
    for number, file in files:
        labels, _ = _read_frame(file)
        for label, crop in crops.items():
            if number in frames_of[label]:
                masks[label].append(labels[crop] == label)
    return [
        Track(
            name=f"{prefix}_label{label}",
            masks=np.stack(masks[label]),
            frame_numbers=np.asarray(frames_of[label]),
            spacing=spacing,
            origin=tuple(s.start for s in crops[label]),
        )
        for label in sorted(boxes)
    ]
