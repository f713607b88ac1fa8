"""Cell Tracking Challenge (CTC) folders, read and written.

Reading: folders with 3D label masks, one sequence per track label. Writing: 2D or 3D time-lapses for
sequence ``NN`` (two digits, three above 99) with frames zero-padded to three digits (four or more when there
are over 1000 frames); 3D frames are ZYX ImageJ stacks carrying their voxel size and frame interval, written
one frame at a time by :class:`CtcWriter`::

    folder/NN/t000.tif                  uint16 images
    folder/NN_GT/SEG/man_seg000.tif     uint16 instance labels
    folder/NN_GT/TRA/man_track000.tif   uint16 track labels (the same full masks, not just markers)
    folder/NN_GT/TRA/man_track.txt      one "L B E P" line per track
    folder/NN_RES/mask000.tif           a method's result, with NN_RES/res_track.txt
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tifffile
from scipy import ndimage

from cellsdf.errors import InputError
from cellsdf.io.atomic import atomic_path
from cellsdf.io.tiff import read_timelapse

_MASK_NAME = re.compile(r"^(?:man_track|man_seg|mask)(\d+)\.tiff?$")
# Tracking markers cover every frame, segmentation ground truth often only a few; results are a fallback.
_SUBFOLDERS = ("_GT/TRA", "_GT/SEG", "_RES")
_SEQUENCE_DIR = re.compile(r"^(\d\d)(?:_GT|_RES)?$")
# ASCII digits only: int() would also take other scripts' digits and underscores.
_WHOLE_NUMBER = re.compile(r"[+-]?[0-9]{1,19}")


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
    touches_border : bool
        Whether the cell reaches the border of the field in any frame (its shape is cut there).
    """

    name: str
    masks: np.ndarray
    frame_numbers: np.ndarray
    spacing: tuple[float, float, float]
    origin: tuple[int, int, int]
    touches_border: bool = False


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
    if labels.size and labels.min() < 0:
        raise InputError(path, f"CTC labels must not be negative, got {labels.min()}")
    return labels, stack.spacing


def _objects(labels: np.ndarray) -> Iterator[tuple[int, tuple[slice, ...]]]:
    """Yield each label present and its bounding box.

    ``ndimage.find_objects`` lists every value up to the largest, so one voxel of label 2³² − 1 would ask for
    a list of 4 billion entries; the labels present are numbered 1 .. K first.
    """
    ids, inverse = np.unique(labels, return_inverse=True)
    numbered = inverse.reshape(labels.shape) + 1
    numbered[labels == 0] = 0
    for label, box in zip(ids.tolist(), ndimage.find_objects(numbered, max_label=len(ids)), strict=True):
        if box is not None:
            yield label, box


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
        for label, box in _objects(labels):
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
            touches_border=min(boxes[label][:3]) == 0
            or any(boxes[label][3 + i] == shape[i] for i in range(3)),
        )
        for label in sorted(boxes)
    ]


Division = tuple[int, int, Sequence[int]]


def track_table(labels: np.ndarray, divisions: Sequence[Division] = ()) -> np.ndarray:
    """Build the CTC track table of a label time-lapse in which each cell keeps its label while it lives.

    Parameters
    ----------
    labels : np.ndarray
        Integer (T, Y, X) or (T, Z, Y, X) labels, 0 is background. A label must be present in every frame from
        its first to its last; CTC has no gaps inside a track.
    divisions : sequence of (frame, parent, daughters)
        Known divisions: ``parent`` is last seen in ``frame - 1`` and each label of ``daughters`` first
        appears in ``frame``.

    Returns
    -------
    np.ndarray
        int64 (N, 4) rows ``L B E P`` (label, first frame, last frame, parent label or 0), sorted by label.

    Raises
    ------
    ValueError
        If ``labels`` is not a 3D or 4D integer array, a label has a gap, or a division does not fit them.
    """
    labels = np.asarray(labels)
    if labels.ndim not in (3, 4) or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(
            f"expected integer (T, Y, X) or (T, Z, Y, X) labels, got {labels.dtype} {labels.shape}"
        )
    if labels.size and labels.min() < 0:
        raise ValueError("labels must not be negative")
    return table_of_present([np.unique(frame) for frame in labels], divisions)


def table_of_present(present: Sequence[np.ndarray], divisions: Sequence[Division] = ()) -> np.ndarray:
    """Build the track table from the labels present in each frame (what :func:`track_table` reads).

    A writer that sees one frame at a time keeps ``np.unique(frame)`` per frame and builds the table at the
    end, without holding the frames.

    Parameters
    ----------
    present : sequence of np.ndarray
        Per frame, the label values in it (0 is ignored).
    divisions : sequence of (frame, parent, daughters)
        As for :func:`track_table`.

    Returns
    -------
    np.ndarray
        int64 (N, 4) ``L B E P`` rows, sorted by label.

    Examples
    --------
    >>> table_of_present([np.array([0, 1]), np.array([0, 2, 3])], [(1, 1, [2, 3])]).tolist()
    [[1, 0, 0, 0], [2, 1, 1, 1], [3, 1, 1, 1]]
    """
    n_frames = len(present)
    ids = np.unique(np.concatenate(present)) if present else np.zeros(0, dtype=np.int64)
    ids = ids[ids != 0]
    # presence[i, t]: label ids[i] is in frame t; one boolean matrix makes first/last/gap checks vectorised.
    presence = np.zeros((ids.size, n_frames), dtype=bool)
    for t, frame_ids in enumerate(present):
        presence[np.searchsorted(ids, frame_ids[frame_ids != 0]), t] = True
    begin = presence.argmax(axis=1)
    end = n_frames - 1 - presence[:, ::-1].argmax(axis=1)
    gaps = presence.sum(axis=1) != end - begin + 1
    if gaps.any():
        raise ValueError(
            f"label {int(ids[gaps][0])} disappears and comes back; a CTC track must not have gaps"
        )
    table = np.stack([ids, begin, end, np.zeros_like(ids)], axis=1).astype(np.int64)
    row = {int(label): i for i, label in enumerate(ids)}
    for frame, parent, daughters in divisions:
        if parent not in row:
            raise ValueError(f"division at frame {frame}: parent label {parent} is not in the labels")
        if table[row[parent], 2] != frame - 1:
            raise ValueError(
                f"division at frame {frame}: parent label {parent} must end at frame {frame - 1}, "
                f"it ends at {table[row[parent], 2]}"
            )
        for daughter in daughters:
            if daughter not in row or table[row[daughter], 1] != frame:
                raise ValueError(
                    f"division at frame {frame}: daughter label {daughter} must begin at frame {frame}"
                )
            table[row[daughter], 3] = parent
    return table


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


@dataclass(frozen=True)
class CtcSequence:
    """One sequence of a CTC folder as written by :func:`write_ctc_sequence`: images, track labels, tracks.

    Attributes
    ----------
    name : str
        Sequence folder name (``01``).
    images : np.ndarray
        (T, ...) frames of ``NN/t*.tif``.
    labels : np.ndarray
        (T, ...) track labels of ``NN_GT/TRA/man_track*.tif``.
    tracks : np.ndarray
        int (K, 4) ``L B E P`` rows of ``man_track.txt``.
    spacing : tuple of float or None
        Voxel size (z, y, x) in µm that 3D frames state (None for 2D frames).
    frame_interval : float or None
        Seconds between frames that 3D frames state.
    """

    name: str
    images: np.ndarray
    labels: np.ndarray
    tracks: np.ndarray
    spacing: tuple[float, float, float] | None = None
    frame_interval: float | None = None


def ctc_sequences(path: str | Path) -> list[str]:
    """Names of the sequences in a CTC folder that have images and tracking ground truth with its table.

    Examples
    --------
    >>> import tempfile
    >>> ctc_sequences(tempfile.mkdtemp())
    []
    """
    path = Path(path)
    if not path.is_dir():
        return []
    names = sorted(p.name for p in path.iterdir() if p.is_dir() and re.fullmatch(r"\d{2,}", p.name))
    return [n for n in names if (path / f"{n}_GT" / "TRA" / "man_track.txt").is_file()]


def read_ctc_sequence(path: str | Path, name: str) -> CtcSequence:
    """Read sequence ``name`` of a CTC folder: its images, track labels and ``man_track.txt``.

    Parameters
    ----------
    path : str or Path
        The CTC folder (holding ``NN/`` and ``NN_GT/``).
    name : str
        Sequence folder name, e.g. ``01``.

    Returns
    -------
    CtcSequence

    Raises
    ------
    InputError
        If the images or labels are missing, differ in number or shape, or the track table is malformed.
    """
    path = Path(path)
    frames = sorted((path / name).glob("t*.tif"))
    masks = [p for _, p in _mask_files(path / f"{name}_GT" / "TRA")]
    if not frames or len(frames) != len(masks):
        raise InputError(path, f"sequence {name}: {len(frames)} images and {len(masks)} track label files")
    images = np.stack([tifffile.imread(p) for p in frames])
    labels = np.stack([tifffile.imread(p) for p in masks])
    if images.shape != labels.shape:
        raise InputError(path, f"sequence {name}: images {images.shape} and labels {labels.shape} differ")
    table = path / f"{name}_GT" / "TRA" / "man_track.txt"
    tracks = _read_track_table(table)
    _check_track_rows(table, tracks, len(labels))
    if images.ndim != 4:
        return CtcSequence(name, images, labels, tracks)
    first = read_timelapse(frames[0])
    return CtcSequence(name, images, labels, tracks, first.spacing, first.frame_interval)


def _read_track_table(table: Path) -> np.ndarray:
    """Read ``L B E P`` rows of whole numbers as int64 (K, 4); blank lines and ``#`` comments are skipped.

    Parsed here rather than with ``np.loadtxt``, which crashed the interpreter (numpy 2.4) on some non-ASCII
    text.
    """
    try:
        text = table.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise InputError(table, f"unreadable track table ({err})") from None
    rows = []
    for number, line in enumerate(text.splitlines(), start=1):
        fields = line.split("#", 1)[0].split()
        if not fields:
            continue
        if len(fields) != 4:
            raise InputError(table, f"row {number}: expected 4 columns (L B E P), got {len(fields)}")
        if not all(_WHOLE_NUMBER.fullmatch(field) for field in fields):
            raise InputError(table, f"row {number}: expected 4 whole numbers (L B E P), got {line.strip()!r}")
        values = [int(field) for field in fields]
        if max(abs(v) for v in values) >= 2**63:
            raise InputError(table, f"row {number}: a number is out of range: {line.strip()!r}")
        rows.append(values)
    return np.array(rows, dtype=np.int64).reshape(-1, 4)


def _check_track_rows(table: Path, tracks: np.ndarray, n_frames: int) -> None:
    """Refuse rows that CTC tools would refuse: labels 1 and up, once each; frames in order and in range."""
    labels = tracks[:, 0]
    for row, (label, b, e, p) in enumerate(tracks.tolist(), start=1):
        if label < 1:
            raise InputError(table, f"row {row}: track label {label} must be 1 or more")
        if not 0 <= b <= e < n_frames:
            raise InputError(
                table, f"row {row}: frames {b} .. {e} do not lie in order within 0 .. {n_frames - 1}"
            )
        if p != 0 and (p == label or p not in labels):
            raise InputError(table, f"row {row}: parent {p} is neither 0 nor another track's label")
    if len(np.unique(labels)) != len(labels):
        raise InputError(table, "a track label is listed on more than one row")


def _frames(array: np.ndarray, what: str) -> np.ndarray:
    array = np.asarray(array)
    if array.ndim not in (3, 4) or array.dtype != np.uint16:
        raise ValueError(f"{what} must be uint16 (T, Y, X) or (T, Z, Y, X), got {array.dtype} {array.shape}")
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
    for t, frame in enumerate(frames):
        _write_frame(directory / f"{prefix}{t:0{digits}d}.tif", frame)
    _remove_stale(directory, prefix, frames.shape[0])


def _write_frame(
    path: Path, frame: np.ndarray, spacing: Sequence[float] | None = None, frame_interval: float | None = None
) -> None:
    """Write one frame atomically; a 3D frame with ``spacing`` as a ZYX ImageJ stack carrying it in µm."""
    with atomic_path(path) as tmp:
        # No compression: CTC tools read plain TIFF, and imagecodecs may be missing.
        if spacing is None:
            tifffile.imwrite(tmp, frame, photometric="minisblack")
            return
        metadata = {"axes": "ZYX", "spacing": float(spacing[0]), "unit": "um"}
        if frame_interval is not None:
            metadata["finterval"] = float(frame_interval)
        resolution = (1.0 / float(spacing[2]), 1.0 / float(spacing[1]))
        tifffile.imwrite(tmp, frame, imagej=True, resolution=resolution, metadata=metadata)


def _remove_stale(directory: Path, prefix: str, n_frames: int) -> None:
    """Remove frame files of an earlier, longer run: they would add frames to the sequence."""
    digits = frame_digits(n_frames)
    written = {f"{prefix}{t:0{digits}d}.tif" for t in range(n_frames)}
    pattern = re.compile(rf"^{prefix}\d+\.tif$")
    for stale in directory.iterdir():
        if pattern.match(stale.name) and stale.name not in written:
            stale.unlink()


class CtcWriter:
    """Write one CTC sequence frame by frame (image, SEG and TRA labels), then its track file.

    Memory holds one frame: the labels present in each frame are kept to check the track table at the end.

    Parameters
    ----------
    folder : str or Path
        The data set root; ``NN`` and ``NN_GT`` are created inside it.
    number : int
        Sequence number, from 1.
    n_frames : int
        Frames the sequence will have (sets the zero-padding of the file names).
    spacing : sequence of float, optional
        Voxel size (z, y, x) in µm of 3D frames, written into every TIFF with ``frame_interval`` (seconds).
    overwrite : bool
        Replace an existing sequence; its frame files beyond ``n_frames`` are removed at :meth:`finish`.

    Examples
    --------
    >>> import tempfile
    >>> root = tempfile.mkdtemp()
    >>> writer = CtcWriter(root, 1, 2, spacing=(1.0, 0.2, 0.2), frame_interval=60.0)
    >>> for t in range(2):
    ...     labels = np.zeros((3, 8, 8), np.uint16); labels[1, 2:5, 2:5] = 1
    ...     writer.write(t, (labels * 100).astype(np.uint16), labels)
    >>> writer.finish(np.array([[1, 0, 1, 0]])).name
    '01_GT'
    """

    def __init__(
        self,
        folder: str | Path,
        number: int,
        n_frames: int,
        *,
        spacing: Sequence[float] | None = None,
        frame_interval: float | None = None,
        overwrite: bool = False,
    ):
        root = Path(folder)
        name = sequence_name(number)
        self.gt = root / f"{name}_GT"
        self.parts = [(root / name, "t"), (self.gt / "SEG", "man_seg"), (self.gt / "TRA", "man_track")]
        _refuse_existing([directory for directory, _ in self.parts], overwrite)
        self.n_frames, self.digits = n_frames, frame_digits(n_frames)
        self.spacing, self.frame_interval = spacing, frame_interval
        self.present: list[np.ndarray] = []
        self.shape: tuple[int, ...] | None = None

    def write(self, t: int, image: np.ndarray, labels: np.ndarray) -> None:
        """Write frame ``t`` (frames come in order): a uint16 image and its uint16 instance labels."""
        if t != len(self.present) or t >= self.n_frames:
            raise ValueError(f"frame {t} out of order: expected frame {len(self.present)} of {self.n_frames}")
        if image.dtype != np.uint16 or labels.dtype != np.uint16 or image.shape != labels.shape:
            raise ValueError(
                f"image and labels must be uint16 of one shape, got {image.shape}, {labels.shape}"
            )
        if self.shape is not None and image.shape != self.shape:
            raise ValueError(f"frame {t} has shape {image.shape}, the sequence {self.shape}")
        self.shape = image.shape
        for (directory, prefix), frame in zip(self.parts, (image, labels, labels), strict=True):
            _write_frame(
                directory / f"{prefix}{t:0{self.digits}d}.tif", frame, self.spacing, self.frame_interval
            )
        self.present.append(np.unique(labels))

    def finish(self, tracks: np.ndarray) -> Path:
        """Check ``tracks`` against the frames written and write ``man_track.txt``; return ``NN_GT``."""
        if len(self.present) != self.n_frames:
            raise ValueError(f"{len(self.present)} of {self.n_frames} frames were written")
        tracks = np.asarray(tracks, dtype=np.int64).reshape(-1, 4)
        tracks = tracks[np.argsort(tracks[:, 0], kind="stable")]
        divisions = _divisions_of(tracks)
        expected = table_of_present(self.present, divisions)
        if tracks.shape != expected.shape or not np.array_equal(tracks, expected):
            raise ValueError(
                "tracks do not match the labels written: each row's L B E P must be where that label is"
            )
        for directory, prefix in self.parts:
            _remove_stale(directory, prefix, self.n_frames)
        write_track_file(self.gt / "TRA" / "man_track.txt", tracks)
        return self.gt


def _divisions_of(tracks: np.ndarray) -> list[tuple[int, int, list[int]]]:
    """Return the divisions ``(frame, parent, daughters)`` that a track table states."""
    found: dict[tuple[int, int], list[int]] = {}
    for label, begin, _, parent in tracks.tolist():
        if parent > 0:
            found.setdefault((begin, parent), []).append(label)
    return [(frame, parent, daughters) for (frame, parent), daughters in sorted(found.items())]
