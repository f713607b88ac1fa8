"""The prepared-dataset file (HDF5): point samples per frame, per-sequence metadata, evaluation masks.

Layout (F frames in all, S sequences, N points per frame, E³ evaluation grid over [-1, 1]³)::

    attrs: format, version, scale (normalised units per µm), margin, centre, config (JSON)
    points        float32 (F, N, 3)  normalised (z, y, x)
    sdf           float32 (F, N)     normalised distance, negative inside
    eval_masks    uint8   (F, E, E, E)
    frame_sequence int32  (F,)       sequence index
    frame_t       float32 (F,)       time in [-1, 1]
    frame_number  int32   (F,)
    frame_centre  float64 (F, 3)     µm, in the source's voxel frame
    sequences/name, source (S,) str; spacing (S, 3); frames, division_frame (S,) int (-1: none);
    sequences/frame_interval (S,)
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

from cellsdf import __version__
from cellsdf.errors import InputError, printable
from cellsdf.io.hdf5 import open_hdf5
from cellsdf.io.limits import check_allocation
from cellsdf.io.units import check_size

FORMAT = "cellsdf-prepared/1"


@dataclass(frozen=True)
class SequenceInfo:
    """Per-sequence metadata stored in a prepared dataset."""

    name: str
    source: str
    spacing: tuple[float, float, float]
    frames: int
    frame_interval: float
    division_frame: int | None


def create_prepared(
    path: Path, n_frames: int, n_points: int, eval_size: int, attrs: dict, sequences: list[SequenceInfo]
) -> h5py.File:
    """Create an empty prepared-dataset file to be filled frame by frame with :func:`write_frame`.

    Parameters
    ----------
    path : Path
        File to create (a temporary name; the caller renames it when complete).
    n_frames, n_points, eval_size : int
        Total frames, points per frame and evaluation grid size.
    attrs : dict
        ``scale``, ``margin``, ``centre`` and ``config`` (a JSON string).
    sequences : list of SequenceInfo
        Metadata in sequence-index order.

    Returns
    -------
    h5py.File
        The open file; close it when done.
    """
    f = h5py.File(path, "w")
    f.attrs.update({"format": FORMAT, "version": __version__, **attrs})
    f.create_dataset("points", (n_frames, n_points, 3), np.float32, chunks=(1, n_points, 3))
    f.create_dataset("sdf", (n_frames, n_points), np.float32, chunks=(1, n_points))
    f.create_dataset(
        "eval_masks",
        (n_frames,) + (eval_size,) * 3,
        np.uint8,
        chunks=(1,) + (eval_size,) * 3,
        compression="gzip",
    )
    for name, dtype, shape in (
        ("frame_sequence", np.int32, ()),
        ("frame_t", np.float32, ()),
        ("frame_number", np.int32, ()),
        ("frame_centre", np.float64, (3,)),
    ):
        f.create_dataset(name, (n_frames, *shape), dtype)
    group = f.create_group("sequences")
    group.create_dataset("name", data=[printable(s.name) for s in sequences], dtype=h5py.string_dtype())
    group.create_dataset("source", data=[printable(s.source) for s in sequences], dtype=h5py.string_dtype())
    group.create_dataset("spacing", data=np.array([s.spacing for s in sequences], dtype=np.float64))
    group.create_dataset("frames", data=np.array([s.frames for s in sequences], dtype=np.int32))
    group.create_dataset(
        "frame_interval", data=np.array([s.frame_interval for s in sequences], dtype=np.float64)
    )
    divisions = [-1 if s.division_frame is None else s.division_frame for s in sequences]
    group.create_dataset("division_frame", data=np.array(divisions, dtype=np.int32))
    return f


def write_frame(
    f: h5py.File,
    index: int,
    sequence: int,
    t: float,
    number: int,
    centre: np.ndarray,
    points: np.ndarray,
    sdf: np.ndarray,
    eval_mask: np.ndarray,
) -> None:
    """Store one frame's samples and metadata at row ``index`` of a file from :func:`create_prepared`."""
    f["points"][index] = points
    f["sdf"][index] = sdf
    f["eval_masks"][index] = eval_mask
    f["frame_sequence"][index] = sequence
    f["frame_t"][index] = t
    f["frame_number"][index] = number
    f["frame_centre"][index] = centre


@dataclass(frozen=True)
class PreparedDataset:
    """A prepared dataset read into memory.

    Attributes
    ----------
    points : np.ndarray
        float32 (F, N, 3) normalised (z, y, x).
    sdf : np.ndarray
        float32 (F, N).
    frame_sequence : np.ndarray
        int (F,) sequence index of each frame.
    frame_t : np.ndarray
        float32 (F,) time in [-1, 1].
    sequences : list of SequenceInfo
        Per-sequence metadata.
    scale : float
        Normalised units per µm.
    attrs : dict
        All file attributes.
    """

    points: np.ndarray
    sdf: np.ndarray
    frame_sequence: np.ndarray
    frame_t: np.ndarray
    sequences: list[SequenceInfo]
    scale: float
    attrs: dict

    @property
    def n_sequences(self) -> int:
        """Number of sequences (one latent code each)."""
        return len(self.sequences)


def read_prepared(path: str | Path) -> PreparedDataset:
    """Read the samples and metadata of a prepared dataset (the evaluation masks stay on disk).

    Parameters
    ----------
    path : str or Path
        File written by ``cellsdf prepare``.

    Returns
    -------
    PreparedDataset

    Raises
    ------
    InputError
        If the file is missing, unreadable, not a prepared dataset, empty, larger than the memory available,
        or holds datasets of the wrong type or shape, lengths that disagree, or NaN or implausible values.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "prepared dataset not found")
    try:
        with open_hdf5(path) as f:
            sizes = _check_layout(f, path)
            # Points, distances and the per-frame and per-sequence tables are read whole; the evaluation
            # masks stay on disk.
            n_frames, n_points, n_sequences = sizes["F"], sizes["N"], sizes["S"]
            what = f"{n_frames} frames of {n_points} points and {n_sequences} sequences"
            check_allocation(path, n_frames * (n_points * 16 + 64) + n_sequences * 256, what=what)
            group = f["sequences"]
            divisions = group["division_frame"][()]
            sequences = [
                SequenceInfo(
                    name, source, tuple(spacing), int(frames), float(interval), None if d < 0 else int(d)
                )
                for name, source, spacing, frames, interval, d in zip(
                    group["name"].asstr()[()],
                    group["source"].asstr()[()],
                    group["spacing"][()],
                    group["frames"][()],
                    group["frame_interval"][()],
                    divisions,
                    strict=True,
                )
            ]
            data = PreparedDataset(
                points=f["points"][()],
                sdf=f["sdf"][()],
                frame_sequence=f["frame_sequence"][()],
                frame_t=f["frame_t"][()],
                sequences=sequences,
                scale=float(f.attrs["scale"]),
                attrs={k: (v.item() if isinstance(v, np.generic) else v) for k, v in f.attrs.items()},
            )
    except InputError:
        raise
    except _HDF5_ERRORS as err:
        raise InputError(path, f"unreadable or incomplete prepared dataset ({err})") from None
    _check_sequences(path, data.frame_sequence, data.frame_t, data.sequences)
    for name in ("points", "sdf"):
        if not np.isfinite(getattr(data, name)).all():
            raise InputError(path, f"'{name}' holds NaN or infinite values; prepare the dataset again")
    return data


def is_prepared(path: str | Path) -> bool:
    """Tell whether a path is a prepared-dataset file (an HDF5 file with this module's format tag).

    Raises
    ------
    InputError
        If the path is an HDF5 file that cannot be read.
    """
    path = Path(path)
    if not path.is_file() or path.suffix.lower() not in (".h5", ".hdf5"):
        return False
    try:
        with open_hdf5(path) as f:
            return f.attrs.get("format") == FORMAT
    except OSError as err:
        raise InputError(path, f"unreadable HDF5 file ({err})") from None


@dataclass(frozen=True)
class PreparedIndex:
    """The small per-frame tables of a prepared dataset, without its point samples.

    Attributes
    ----------
    frame_sequence : np.ndarray
        int (F,) sequence index of each frame.
    frame_t : np.ndarray
        float32 (F,) time in [-1, 1].
    frame_number : np.ndarray
        int (F,) frame number in its source sequence (times alone do not give the frames' spacing).
    names : list of str
        Sequence names.
    scale : float
        Normalised units per µm.
    eval_size : int
        Side of the evaluation masks' grid over [-1, 1]³.
    frame_centre : np.ndarray
        float64 (F, 3) centre of each frame in µm of its source's voxel frame (the normalised origin).
    """

    frame_sequence: np.ndarray
    frame_t: np.ndarray
    frame_number: np.ndarray
    names: list[str]
    scale: float
    eval_size: int
    frame_centre: np.ndarray

    def rows(self, sequence: int) -> np.ndarray:
        """Rows (frames) of sequence ``sequence``, in time order."""
        return np.flatnonzero(self.frame_sequence == sequence)


def read_index(path: str | Path) -> PreparedIndex:
    """Read a prepared dataset's per-frame tables (fast: the point samples stay on disk).

    Raises
    ------
    InputError
        If the file is unreadable or incomplete, or its tables disagree (as for :func:`read_prepared`).
    """
    try:
        with open_hdf5(path) as f:
            sizes = _check_layout(f, path)
            check_allocation(path, sizes["F"] * 64 + sizes["S"] * 256, what="the per-frame tables")
            index = PreparedIndex(
                frame_sequence=f["frame_sequence"][()],
                frame_t=f["frame_t"][()],
                frame_number=f["frame_number"][()],
                names=list(f["sequences/name"].asstr()[()]),
                scale=float(f.attrs["scale"]),
                eval_size=sizes["E"],
                frame_centre=f["frame_centre"][()],
            )
            frames = f["sequences/frames"][()]
    except InputError:
        raise
    except _HDF5_ERRORS as err:
        raise InputError(path, f"unreadable or incomplete prepared dataset ({err})") from None
    _check_sequences(path, index.frame_sequence, index.frame_t, frames)
    return index


# What h5py raises for a damaged file or an object of an unexpected kind (a group where a dataset should be).
_HDF5_ERRORS = (OSError, KeyError, TypeError, ValueError, RuntimeError)
_FLOAT, _WHOLE, _TEXT = "f", "iu", "OSU"
_KIND_WORDS = {_FLOAT: "floats", _WHOLE: "integers", _TEXT: "text", "biu": "integers"}
# name: (kinds of dtype, shape with F frames, N points, E evaluation side, S sequences)
_LAYOUT = {
    "points": (_FLOAT, ("F", "N", 3)),
    "sdf": (_FLOAT, ("F", "N")),
    "eval_masks": ("biu", ("F", "E", "E", "E")),
    "frame_sequence": (_WHOLE, ("F",)),
    "frame_t": (_FLOAT, ("F",)),
    "frame_number": (_WHOLE, ("F",)),
    "frame_centre": (_FLOAT, ("F", 3)),
    "sequences/name": (_TEXT, ("S",)),
    "sequences/source": (_TEXT, ("S",)),
    "sequences/spacing": (_FLOAT, ("S", 3)),
    "sequences/frames": (_WHOLE, ("S",)),
    "sequences/frame_interval": (_FLOAT, ("S",)),
    "sequences/division_frame": (_WHOLE, ("S",)),
}


def _check_layout(f: h5py.File, path: Path) -> dict[str, int]:
    """Check the format tag, every dataset's kind and shape, and the scale; return the sizes F, N, E, S.

    Only the file's metadata is read, so a file that declares more than memory holds is refused here.
    """
    if f.attrs.get("format") != FORMAT:
        raise InputError(path, f"not a cellsdf prepared dataset (expected format {FORMAT})")
    sizes: dict[str, int] = {}
    for name, (kinds, axes) in _LAYOUT.items():
        data = f.get(name)
        if not isinstance(data, h5py.Dataset):
            raise InputError(path, f"incomplete prepared dataset: no dataset '{name}'")
        if data.dtype.kind not in kinds:
            expected = _KIND_WORDS[kinds]
            raise InputError(path, f"'{name}' holds {data.dtype}; a prepared dataset has {expected} there")
        shown = ", ".join(str(a) for a in axes)
        if len(data.shape or ()) != len(axes):
            raise InputError(path, f"'{name}' has shape {data.shape}; a prepared dataset has ({shown})")
        for axis, length in zip(axes, data.shape, strict=True):
            expected = sizes.setdefault(axis, length) if isinstance(axis, str) else axis
            if length != expected:
                known = ", ".join(f"{k} = {v}" for k, v in sizes.items())
                raise InputError(path, f"'{name}' has shape {data.shape}, not ({shown}) with {known}")
    scale = f.attrs.get("scale")
    if not (isinstance(scale, (int, float, np.number)) and np.isfinite(scale) and scale > 0):
        raise InputError(path, f"attribute 'scale' must be a positive number, got {scale!r}")
    return sizes


def _check_sequences(
    path: Path, frame_sequence: np.ndarray, frame_t: np.ndarray, sequences: list[SequenceInfo] | np.ndarray
) -> None:
    """Check the per-frame tables against the sequences: every frame in a sequence, counts and times."""
    frames = np.array([s.frames for s in sequences] if isinstance(sequences, list) else sequences, np.int64)
    if len(frame_sequence) == 0:
        raise InputError(path, "prepared dataset holds no frames")
    if frame_sequence.min() < 0 or frame_sequence.max() >= len(frames):
        raise InputError(path, f"'frame_sequence' names sequences outside 0 .. {len(frames) - 1}")
    counted = np.bincount(frame_sequence, minlength=len(frames))
    if not np.array_equal(counted, frames):
        raise InputError(path, "'sequences/frames' differs from the frames per sequence in 'frame_sequence'")
    if not (np.isfinite(frame_t).all() and np.abs(frame_t).max() <= 1.0):
        raise InputError(path, "'frame_t' must hold times in [-1, 1]")
    if isinstance(sequences, list):
        for info in sequences:
            for value in info.spacing:
                check_size(path, f"spacing of sequence {info.name!r}", value, kind="length")
            check_size(path, f"frame_interval of sequence {info.name!r}", info.frame_interval, kind="time")


def iter_eval_masks(path: str | Path, rows: Iterable[int]) -> Iterator[np.ndarray]:
    """Yield the evaluation masks (bool (E, E, E)) of the given frame rows, one at a time."""
    with open_hdf5(path) as f:
        masks = f["eval_masks"]
        _check_masks(path, masks, 1)
        for row in rows:
            yield masks[int(row)].astype(bool)


def read_eval_masks(path: str | Path, *, frames: np.ndarray | None = None) -> np.ndarray:
    """Read evaluation masks (bool, (F, E, E, E)) of all frames or of the given frame rows."""
    with open_hdf5(path) as f:
        masks = f["eval_masks"]
        _check_masks(path, masks, len(masks) if frames is None else len(frames))
        masks = masks[()] if frames is None else masks[np.sort(frames)]
    return masks.astype(bool)


def _check_masks(path: str | Path, masks: h5py.Dataset, count: int) -> None:
    # Each mask is read in the file's type and copied to bool.
    voxels = count * math.prod(masks.shape[1:])
    check_allocation(path, voxels * (masks.dtype.itemsize + 1), what=f"{count} evaluation masks")


def config_json(config: dict) -> str:
    """Serialise the preparation settings for the file's ``config`` attribute."""
    return json.dumps(config, sort_keys=True, default=str)
