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
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

from cellsdf import __version__
from cellsdf.errors import InputError

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
    group.create_dataset("name", data=[s.name for s in sequences], dtype=h5py.string_dtype())
    group.create_dataset("source", data=[s.source for s in sequences], dtype=h5py.string_dtype())
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
        If the file is missing, unreadable, not a prepared dataset, or empty.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "prepared dataset not found")
    try:
        with h5py.File(path, "r") as f:
            if f.attrs.get("format") != FORMAT:
                raise InputError(path, f"not a cellsdf prepared dataset (expected format {FORMAT})")
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
    except (OSError, KeyError) as err:
        raise InputError(path, f"unreadable or incomplete prepared dataset ({err})") from None
    if len(data.points) == 0:
        raise InputError(path, "prepared dataset holds no frames")
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
        with h5py.File(path, "r") as f:
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
    """

    frame_sequence: np.ndarray
    frame_t: np.ndarray
    frame_number: np.ndarray
    names: list[str]
    scale: float
    eval_size: int

    def rows(self, sequence: int) -> np.ndarray:
        """Rows (frames) of sequence ``sequence``, in time order."""
        return np.flatnonzero(self.frame_sequence == sequence)


def read_index(path: str | Path) -> PreparedIndex:
    """Read a prepared dataset's per-frame tables (fast: the point samples stay on disk).

    Raises
    ------
    InputError
        If the file is unreadable or incomplete.
    """
    try:
        with h5py.File(path, "r") as f:
            return PreparedIndex(
                frame_sequence=f["frame_sequence"][()],
                frame_t=f["frame_t"][()],
                frame_number=f["frame_number"][()],
                names=list(f["sequences/name"].asstr()[()]),
                scale=float(f.attrs["scale"]),
                eval_size=int(f["eval_masks"].shape[1]),
            )
    except (OSError, KeyError) as err:
        raise InputError(path, f"unreadable or incomplete prepared dataset ({err})") from None


def iter_eval_masks(path: str | Path, rows: Iterable[int]) -> Iterator[np.ndarray]:
    """Yield the evaluation masks (bool (E, E, E)) of the given frame rows, one at a time."""
    with h5py.File(path, "r") as f:
        for row in rows:
            yield f["eval_masks"][int(row)].astype(bool)


def read_eval_masks(path: str | Path, frames: np.ndarray | None = None) -> np.ndarray:
    """Read evaluation masks (bool, (F, E, E, E)) of all frames or of the given frame rows."""
    with h5py.File(path, "r") as f:
        masks = f["eval_masks"][()] if frames is None else f["eval_masks"][np.sort(frames)]
    return masks.astype(bool)


def config_json(config: dict) -> str:
    """Serialise the preparation settings for the file's ``config`` attribute."""
    return json.dumps(config, sort_keys=True, default=str)
