"""Annotated frames of data sets in the Cell Tracking Challenge layout: images with their instance labels."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tifffile

from cellsdf.errors import InputError
from cellsdf.io.tiff import read_header

_SEQUENCE = re.compile(r"\d{2,}")
# man_seg012.tif is a whole frame; man_seg_012_004.tif (one slice of a 3D frame) is not used.
_ANNOTATION = {"SEG": re.compile(r"man_seg(\d+)\.tif{1,2}"), "TRA": re.compile(r"man_track(\d+)\.tif{1,2}")}


@dataclass(frozen=True)
class Annotated:
    """One image with its instance labels.

    Attributes
    ----------
    image : np.ndarray
        (Y, X) or (Z, Y, X) grey levels.
    labels : np.ndarray
        Instance labels of the same shape, 0 is background.
    source : str
        Where it came from: ``<set>/<sequence>/t<frame>``.
    spacing : tuple of float
        Voxel size along the image's axes (the file's own for 3D frames; 1 where it states none).
    """

    image: np.ndarray
    labels: np.ndarray
    source: str
    spacing: tuple[float, ...]


def annotated_frames(path: str | Path) -> list[Annotated]:
    """Read every annotated frame of a CTC data set: ``NN/tT.tif`` with ``NN_GT/SEG/man_segT.tif``.

    A sequence without a ``SEG`` folder uses its ``TRA`` masks (cellsdf benchmarks write both, with the same
    labels). Sequences are the ``NN`` folders that have an ``NN_GT``; a folder that is itself one such
    sequence's parent is the set.

    Parameters
    ----------
    path : str or Path
        The set folder (holding ``01/``, ``01_GT/``, ...).

    Returns
    -------
    list of Annotated
        In sequence, then frame order.

    Raises
    ------
    InputError
        Naming the file or folder: missing folder, no annotated frame, an annotation without its image, shapes
        that differ, labels that are not non-negative integers, unreadable TIFFs.
    """
    path = Path(path)
    if not path.is_dir():
        raise InputError(path, "is not a folder (a data set in the Cell Tracking Challenge layout)")
    frames = []
    for sequence in sorted(p for p in path.iterdir() if p.is_dir() and _SEQUENCE.fullmatch(p.name)):
        truth = path / f"{sequence.name}_GT"
        for kind in ("SEG", "TRA"):
            found = _annotations(truth / kind, _ANNOTATION[kind])
            if found:
                frames += [_read_pair(path, sequence, t, mask) for t, mask in found]
                break
    if not frames:
        raise InputError(
            path,
            "holds no annotated frame (NN/tT.tif with NN_GT/SEG/man_segT.tif or NN_GT/TRA/man_trackT.tif)",
        )
    dims = {f.image.ndim for f in frames}
    if len(dims) > 1:
        raise InputError(path, "mixes 2D and 3D frames")
    return frames


def _annotations(folder: Path, pattern: re.Pattern) -> list[tuple[str, Path]]:
    if not folder.is_dir():
        return []
    matches = ((pattern.fullmatch(p.name), p) for p in folder.iterdir())
    return sorted((m.group(1), p) for m, p in matches if m)


def _read_pair(root: Path, sequence: Path, frame: str, mask: Path) -> Annotated:
    candidates = [sequence / f"t{frame}.tif", sequence / f"t{frame}.tiff"]
    image_file = next((c for c in candidates if c.is_file()), None)
    if image_file is None:
        raise InputError(mask, f"has no image {candidates[0].name} in {sequence}")
    image, labels = read_tiff(image_file), read_tiff(mask)
    if image.shape != labels.shape:
        raise InputError(
            mask, f"labels {labels.shape} and image {image_file.name} {image.shape} differ in shape"
        )
    if image.ndim not in (2, 3) or min(image.shape) < 1:
        raise InputError(image_file, f"has shape {image.shape}; a frame is (Y, X) or (Z, Y, X)")
    if image.dtype.kind not in "uif":
        raise InputError(image_file, f"holds {image.dtype} values, not numbers")
    if labels.dtype.kind not in "ui" or (labels.size and labels.min() < 0):
        raise InputError(mask, f"labels must be non-negative integers, got {labels.dtype}")
    spacing = (1.0,) * image.ndim
    if image.ndim == 3:
        stated = read_header(image_file).spacing
        spacing = tuple(float(s) for s in stated) if stated is not None else spacing
    return Annotated(image, labels, f"{root.name}/{sequence.name}/t{frame}", spacing)


def read_tiff(file: str | Path) -> np.ndarray:
    """Read a TIFF's first series without its length-1 axes; a damaged file is one line naming it.

    Raises
    ------
    InputError
        Naming the file when it cannot be read.
    """
    try:
        return np.squeeze(tifffile.imread(file))
    except (OSError, ValueError, KeyError, IndexError, tifffile.TiffFileError) as err:
        raise InputError(file, f"unreadable TIFF ({err})") from None
