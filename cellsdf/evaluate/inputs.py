"""The mask sequences behind an evaluation input, read one frame at a time, and the input's fingerprint."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from cellsdf.dataset.binarise import looks_like_intensity
from cellsdf.dataset.labels import is_label_image
from cellsdf.dataset.prepared import is_prepared, iter_eval_masks, read_index
from cellsdf.dataset.sources import HDF5_SUFFIXES, TIFF_SUFFIXES, find_sequences
from cellsdf.errors import InputError
from cellsdf.geometry.grid import grid_spacing
from cellsdf.io.ctc import is_ctc_folder
from cellsdf.io.hashing import file_sha256
from cellsdf.io.tiff import iter_frames, read_header

_GENERATED_MASK = "mask.tif"


@dataclass(frozen=True)
class SequenceSpec:
    """Where one sequence's masks are and how to read them; small and picklable unless ``load`` is set.

    Attributes
    ----------
    name : str
        Sequence name.
    source : str
        File or folder it comes from.
    spacing : tuple of float or None
        Voxel size (z, y, x) in µm; None when the files do not state it.
    kind : str
        ``tiff`` (one time-lapse file), ``frames`` (a folder of 3D TIFFs, one per frame), ``prepared`` (rows
        of a prepared dataset's evaluation masks) or ``loaded`` (any other input, through ``load``).
    paths : tuple of str
        The files to read.
    rows : tuple of int
        Prepared-dataset rows of the sequence's frames.
    load : callable, optional
        Returns bool (T, Z, Y, X) masks, for kind ``loaded``.
    """

    name: str
    source: str
    spacing: tuple[float, float, float] | None
    kind: str
    paths: tuple[str, ...] = ()
    rows: tuple[int, ...] = ()
    load: Callable[[], np.ndarray] | None = field(default=None, compare=False)


def list_sequences(path: str | Path) -> list[SequenceSpec]:
    """List the sequences of an evaluation input without reading their pixels.

    Parameters
    ----------
    path : str or Path
        A TIFF time-lapse; a folder of time-lapses (one sequence each) or of single 3D frames (one sequence);
        a folder of subfolders holding ``mask.tif`` (generator output); a prepared dataset (``.h5``, its
        evaluation masks, voxel size from its scale); a Cell Tracking Challenge folder or a reference HDF5
        file (read through :func:`cellsdf.dataset.sources.find_sequences`).

    Returns
    -------
    list of SequenceSpec
        In sorted order.

    Raises
    ------
    InputError
        If the path is missing or holds no masks.
    """
    path = Path(path)
    if not path.exists():
        raise InputError(path, "not found")
    if path.is_file() and path.suffix.lower() in TIFF_SUFFIXES:
        return _loaded_sequences(path) if _holds_labels(path) else [_tiff_sequence(path, path.stem)]
    if path.is_file() and path.suffix.lower() in HDF5_SUFFIXES:
        return _prepared_sequences(path) if is_prepared(path) else _loaded_sequences(path)
    if path.is_file():
        raise InputError(path, "unsupported file type; expected a TIFF, a prepared dataset (.h5) or a folder")
    if is_ctc_folder(path):
        return _loaded_sequences(path)
    files = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in TIFF_SUFFIXES)
    if files:
        first = read_header(files[0])
        if first.has_time:
            return [
                spec
                for f in files
                for spec in (_loaded_sequences(f) if _holds_labels(f) else [_tiff_sequence(f, f.stem)])
            ]
        return [SequenceSpec(path.name, str(path), first.spacing, "frames", tuple(map(str, files)))]
    nested = sorted(p / _GENERATED_MASK for p in path.iterdir() if (p / _GENERATED_MASK).is_file())
    if nested:
        return [_tiff_sequence(f, f.parent.name) for f in nested]
    raise InputError(
        path,
        f"holds no masks (no TIFF files, no <subfolder>/{_GENERATED_MASK}, not a Cell Tracking Challenge "
        "folder)",
    )


def iter_masks(spec: SequenceSpec) -> Iterator[np.ndarray]:
    """Yield a sequence's frames as bool (Z, Y, X) masks, one at a time where the format allows.

    Foreground is every non-zero voxel; an input that looks like an intensity image is refused.

    Parameters
    ----------
    spec : SequenceSpec
        From :func:`list_sequences`.

    Yields
    ------
    np.ndarray
        bool (Z, Y, X).
    """
    if spec.kind == "prepared":
        yield from iter_eval_masks(spec.paths[0], spec.rows)
    elif spec.kind == "loaded":
        yield from spec.load()
    else:
        frames = (frame for file in spec.paths for frame in iter_frames(file))
        for t, frame in enumerate(frames):
            if t == 0 and looks_like_intensity(frame):
                raise InputError(spec.source, "looks like an intensity image, not a mask or label image")
            yield frame != 0


def hash_input(path: str | Path) -> str:
    """SHA-256 of a file, or of a folder's files (sorted relative paths and their hashes), read in chunks.

    Parameters
    ----------
    path : str or Path
        File or folder.

    Returns
    -------
    str
        Hex digest.
    """
    path = Path(path)
    if path.is_file():
        return file_sha256(path)
    lines = [
        f"{p.relative_to(path).as_posix()} {file_sha256(p)}\n"
        for p in sorted(path.rglob("*"))
        if p.is_file() and not p.name.startswith(".")
    ]
    return hashlib.sha256("".join(lines).encode()).hexdigest()


def _tiff_sequence(file: Path, name: str) -> SequenceSpec:
    return SequenceSpec(name, str(file), read_header(file).spacing, "tiff", (str(file),))


def _prepared_sequences(path: Path) -> list[SequenceSpec]:
    # Only the small per-frame tables are read; read_prepared would load every point sample.
    index = read_index(path)
    # The evaluation grid spans [-1, 1]³ in normalised units, which are `scale` per µm.
    return [
        SequenceSpec(
            name,
            str(path),
            grid_spacing(index.eval_size, index.scale),
            "prepared",
            (str(path),),
            tuple(int(r) for r in index.rows(k)),
        )
        for k, name in enumerate(index.names)
    ]


def _holds_labels(path: Path) -> bool:
    """Tell from its first frame whether a TIFF is a label image (one cell per label, as prepare reads it)."""
    return is_label_image(next(iter_frames(path)))


def _loaded_sequences(path: Path) -> list[SequenceSpec]:
    loaders = find_sequences(path)
    if path.suffix.lower() in HDF5_SUFFIXES:  # a reference HDF5 file states no voxel size
        return [
            SequenceSpec(loaders[0].name, str(path), None, "loaded", (str(path),), load=_masks_of(loaders))
        ]
    # Tracks and labelled cells are already in memory once listed; their TIFFs state the voxel size.
    sequences = [loader.load() for loader in loaders]
    return [
        SequenceSpec(s.name, str(path), s.spacing, "loaded", (str(path),), load=lambda s=s: s.masks)
        for s in sequences
    ]


def _masks_of(loaders: list) -> Callable[[], np.ndarray]:
    return lambda: loaders[0].load().masks
