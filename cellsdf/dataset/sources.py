"""Find the mask sequences behind an input path: TIFF time-lapses, folders, CTC folders, reference HDF5."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cellsdf.dataset.binarise import binarise
from cellsdf.errors import InputError
from cellsdf.io.ctc import Track, is_ctc_folder, read_ctc_tracks
from cellsdf.io.reference import read_reference_sdf
from cellsdf.io.spacing import check_spacing
from cellsdf.io.tiff import Stack, read_header, read_timelapse

TIFF_SUFFIXES = (".tif", ".tiff")
HDF5_SUFFIXES = (".h5", ".hdf5")


@dataclass(frozen=True)
class MaskSequence:
    """One cell over time as binary masks.

    Attributes
    ----------
    name : str
        Identifier, unique within a data set.
    source : str
        The file or folder it was read from.
    masks : np.ndarray
        bool (T, Z, Y, X).
    spacing : tuple of float
        Voxel size (z, y, x) in µm.
    frame_numbers : np.ndarray
        Frame number of each mask (gaps allowed; time is mapped from these).
    frame_interval : float
        Seconds between consecutive frame numbers.
    division_frame : int or None
        Index of the first frame after a recorded cell division.
    """

    name: str
    source: str
    masks: np.ndarray
    spacing: tuple[float, float, float]
    frame_numbers: np.ndarray
    frame_interval: float = 1.0
    division_frame: int | None = None


@dataclass(frozen=True)
class SequenceLoader:
    """A named sequence that is read only when needed, so a data set never has to fit in memory at once."""

    name: str
    load: Callable[[], MaskSequence]


def find_sequences(
    path: str | Path,
    label: int | None = None,
    threshold: float | None = None,
    components: str = "all",
    spacing: tuple[float, float, float] | None = None,
) -> list[SequenceLoader]:
    """List the sequences that an input path holds.

    Parameters
    ----------
    path : str or Path
        A TIFF time-lapse (TZYX); a folder of time-lapses (one sequence each); a folder of single-frame ZYX
        TIFFs (one sequence); a Cell Tracking Challenge folder (one sequence per track label); or a reference
        HDF5 file with ``sdf_vid`` (foreground where sdf <= 0).
    label, threshold, components
        How label or intensity TIFFs become masks (see :func:`cellsdf.dataset.binarise.binarise`).
    spacing : tuple of float, optional
        Voxel size (z, y, x) in µm that replaces what the files say.

    Returns
    -------
    list of SequenceLoader
        In a stable order (sorted file names, then labels).

    Raises
    ------
    InputError
        If the path is missing or holds nothing usable.
    """
    path = Path(path)
    if not path.exists():
        raise InputError(path, "not found")
    spacing = check_spacing("spacing", spacing)

    def from_stack(file: Path, stack: Stack, name: str, division: int | None = None) -> MaskSequence:
        masks = binarise(stack.data, file, label=label, threshold=threshold, components=components)
        return MaskSequence(
            name=name,
            source=str(file),
            masks=masks,
            spacing=spacing or stack.spacing,
            frame_numbers=np.arange(len(masks)),
            frame_interval=stack.frame_interval,
            division_frame=division,
        )

    if path.is_file() and path.suffix.lower() in HDF5_SUFFIXES:
        return [SequenceLoader(path.stem, lambda: _reference_sequence(path, spacing or (1.0, 1.0, 1.0)))]
    if path.is_file() and path.suffix.lower() in TIFF_SUFFIXES:
        return [SequenceLoader(path.stem, lambda: from_stack(path, read_timelapse(path), path.stem))]
    if path.is_file():
        raise InputError(path, "unsupported file type; expected a TIFF (.tif) or reference HDF5 (.h5)")
    if is_ctc_folder(path):
        return [
            SequenceLoader(track.name, lambda track=track: _track_sequence(track, path, spacing, components))
            for track in read_ctc_tracks(path)
        ]
    files = sorted(p for p in path.iterdir() if p.suffix.lower() in TIFF_SUFFIXES)
    if not files:
        raise InputError(path, "folder holds no TIFF files and is not a Cell Tracking Challenge folder")
    if read_header(files[0]).has_time:
        divisions = recorded_divisions(path)
        return [
            SequenceLoader(
                f.stem, lambda f=f: from_stack(f, read_timelapse(f), f.stem, divisions.get(f.name))
            )
            for f in files
        ]
    return [SequenceLoader(path.name, lambda: from_stack(path, _stack_frames(files), path.name))]


def _stack_frames(files: list[Path]) -> Stack:
    stacks = [read_timelapse(f) for f in files]
    for file, stack in zip(files, stacks, strict=True):
        if stack.has_time:
            raise InputError(file, "is a time-lapse, but the other files in its folder are single 3D frames")
        if stack.data.shape != stacks[0].data.shape:
            raise InputError(
                file,
                f"frame shape {stack.data.shape[1:]} differs from "
                f"{stacks[0].data.shape[1:]} of {files[0].name}",
            )
    return Stack(np.concatenate([s.data for s in stacks]), stacks[0].spacing, stacks[0].frame_interval, True)


def recorded_divisions(folder: Path) -> dict[str, int]:
    """Division frames that ``cellsdf simulate`` recorded in the folder's manifest, by file name."""
    manifest = folder / "manifest.json"
    if not manifest.is_file():
        return {}
    try:
        items = json.loads(manifest.read_text()).get("items", [])
    except (json.JSONDecodeError, AttributeError):
        raise InputError(manifest, "not a valid cellsdf manifest (JSON object with 'items')") from None
    return {
        item["file"]: item["division_frame"]
        for item in items
        if isinstance(item, dict) and item.get("division_frame") is not None and "file" in item
    }


def _reference_sequence(path: Path, spacing: tuple[float, float, float]) -> MaskSequence:
    # The reference SDF is scaled per frame by an unknown max |sdf|, so only its zero level set carries over;
    # distances are recomputed from it in physical units.
    masks = read_reference_sdf(path) <= 0
    masks = binarise(masks, path)
    return MaskSequence(path.stem, str(path), masks, spacing, np.arange(len(masks)))


def _track_sequence(
    track: Track, folder: Path, spacing: tuple[float, float, float] | None, components: str
) -> MaskSequence:
    masks = binarise(track.masks, f"{folder} ({track.name})", components=components)
    return MaskSequence(track.name, str(folder), masks, spacing or track.spacing, track.frame_numbers)
