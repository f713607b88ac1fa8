"""Write 2D time-lapses in the Cell Tracking Challenge (CTC) layout: images, ground truth and results.

Layout for sequence ``NN`` (two digits, three above 99) with frames zero-padded to three digits (four or more
when there are over 1000 frames)::

    folder/NN/t000.tif                  uint16 images
    folder/NN_GT/SEG/man_seg000.tif     uint16 instance labels
    folder/NN_GT/TRA/man_track000.tif   uint16 track labels (the same full masks, not just markers)
    folder/NN_GT/TRA/man_track.txt      one "L B E P" line per track
    folder/NN_RES/mask000.tif           a method's result, with NN_RES/res_track.txt
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import tifffile

from cellsdf.benchmark.tracks import track_table
from cellsdf.errors import InputError
from cellsdf.io.atomic import atomic_path


def sequence_name(number: int) -> str:
    """CTC folder name of sequence ``number``: ``01`` ... ``99``, then ``100`` ..."""
    if number < 1:
        raise ValueError(f"CTC sequence numbers start at 1, got {number}")
    return f"{number:02d}"


def frame_digits(n_frames: int) -> int:
    """Zero-padding of CTC frame numbers: 3 digits, more when frame numbers need them."""
    return max(3, len(str(max(n_frames - 1, 0))))


def write_ctc_sequence(
    folder: str | Path,
    number: int,
    images: np.ndarray,
    labels: np.ndarray,
    tracks: np.ndarray,
    overwrite: bool = False,
) -> Path:
    """Write one sequence with its segmentation and tracking ground truth.

    Parameters
    ----------
    folder : str or Path
        The data set root; ``NN`` and ``NN_GT`` are created inside it.
    number : int
        Sequence number, from 1.
    images : np.ndarray
        uint16 (T, Y, X) images.
    labels : np.ndarray
        uint16 (T, Y, X) instance labels, each cell keeping its label for the whole track.
    tracks : np.ndarray
        (N, 4) ``L B E P`` rows agreeing with ``labels`` (see ``cellsdf.benchmark.tracks``).
    overwrite : bool
        Replace an existing sequence; its frame files beyond the new frame count are removed.

    Returns
    -------
    Path
        The ``NN_GT`` folder.

    Raises
    ------
    ValueError
        If arrays are not uint16 (T, Y, X) of one shape, or ``tracks`` does not match ``labels``.
    InputError
        If the sequence already exists and ``overwrite`` is false.
    """
    images = _frames(images, "images")
    labels = _frames(labels, "labels")
    if images.shape != labels.shape:
        raise ValueError(f"images {images.shape} and labels {labels.shape} differ in shape")
    tracks = _checked_tracks(labels, tracks)
    root = Path(folder)
    name = sequence_name(number)
    parts = [
        (root / name, "t", images),
        (root / f"{name}_GT" / "SEG", "man_seg", labels),
        (root / f"{name}_GT" / "TRA", "man_track", labels),
    ]
    _refuse_existing([p[0] for p in parts], overwrite)
    for directory, prefix, frames in parts:
        _write_frames(directory, prefix, frames)
    write_track_file(root / f"{name}_GT" / "TRA" / "man_track.txt", tracks)
    return root / f"{name}_GT"


def write_ctc_result(
    folder: str | Path, number: int, labels: np.ndarray, tracks: np.ndarray, overwrite: bool = False
) -> Path:
    """Write a segmentation/tracking result as ``NN_RES/mask000.tif`` ... and ``NN_RES/res_track.txt``.

    Parameters
    ----------
    folder : str or Path
        The results root.
    number : int
        Sequence number, from 1.
    labels : np.ndarray
        uint16 (T, Y, X) result labels.
    tracks : np.ndarray
        (N, 4) ``L B E P`` rows agreeing with ``labels``.
    overwrite : bool
        Replace an existing result; its frame files beyond the new frame count are removed.

    Returns
    -------
    Path
        The ``NN_RES`` folder.
    """
    labels = _frames(labels, "labels")
    tracks = _checked_tracks(labels, tracks)
    directory = Path(folder) / f"{sequence_name(number)}_RES"
    _refuse_existing([directory], overwrite)
    _write_frames(directory, "mask", labels)
    write_track_file(directory / "res_track.txt", tracks)
    return directory


def write_track_file(path: str | Path, tracks: np.ndarray) -> None:
    """Write ``L B E P`` rows, space-separated, one track a line, atomically."""
    text = "".join(f"{label} {b} {e} {p}\n" for label, b, e, p in np.asarray(tracks, dtype=np.int64).tolist())
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def _frames(array: np.ndarray, what: str) -> np.ndarray:
    array = np.asarray(array)
    if array.ndim != 3 or array.dtype != np.uint16:
        raise ValueError(f"{what} must be uint16 (T, Y, X), got {array.dtype} {array.shape}")
    if array.shape[0] == 0:
        raise ValueError(f"{what} has no frames")
    return array


def _checked_tracks(labels: np.ndarray, tracks: np.ndarray) -> np.ndarray:
    # CTC tools reject a track file whose label spans disagree with the masks, so catch it before writing.
    tracks = np.asarray(tracks, dtype=np.int64).reshape(-1, 4)
    tracks = tracks[np.argsort(tracks[:, 0], kind="stable")]
    expected = track_table(labels)
    if tracks.shape != expected.shape or not np.array_equal(tracks[:, :3], expected[:, :3]):
        raise ValueError("tracks do not match the labels: each row's L B E must be where that label is")
    if np.any(tracks[:, 3] < 0) or not np.isin(tracks[tracks[:, 3] > 0, 3], tracks[:, 0]).all():
        raise ValueError("every parent in the tracks must be 0 or a track label")
    return tracks


def _refuse_existing(directories: list[Path], overwrite: bool) -> None:
    if overwrite:
        return
    for directory in directories:
        if directory.is_dir() and any(directory.iterdir()):
            raise InputError(directory, "already holds files; pass overwrite=true to replace them")


def _write_frames(directory: Path, prefix: str, frames: np.ndarray) -> None:
    digits = frame_digits(frames.shape[0])
    written = set()
    for t, frame in enumerate(frames):
        path = directory / f"{prefix}{t:0{digits}d}.tif"
        with atomic_path(path) as tmp:
            # No compression: CTC tools read plain TIFF, and imagecodecs may be missing.
            tifffile.imwrite(tmp, frame, photometric="minisblack")
        written.add(path.name)
    # A stale frame from an earlier, longer run would add a frame to the sequence; remove it.
    pattern = re.compile(rf"^{prefix}\d+\.tif$")
    for stale in directory.iterdir():
        if pattern.match(stale.name) and stale.name not in written:
            stale.unlink()
