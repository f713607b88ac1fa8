"""Find the mask sequences behind an input path: TIFF time-lapses, folders, CTC folders, reference HDF5."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cellsdf.dataset.binarise import binarise, check_finite, looks_like_intensity
from cellsdf.dataset.labels import BORDERS, LINKS, is_label_image, label_cells, touches_border
from cellsdf.errors import InputError
from cellsdf.io.ctc import Track, is_ctc_folder, read_ctc_tracks
from cellsdf.io.omezarr import is_omezarr, read_omezarr
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


@dataclass(frozen=True)
class Scan:
    """What an input path holds: the sequences to use and the cells left out.

    Attributes
    ----------
    loaders : list of SequenceLoader
        The sequences, in a stable order.
    found : int
        Cells found, before the border rule.
    at_border : list of str
        Names of the cells that touch the image border (dropped with ``border='drop'``).
    read_as : str or None
        How TIFF input was read (its axes and voxel size), for the console; None for other inputs.
    """

    loaders: list[SequenceLoader]
    found: int
    at_border: list[str]
    read_as: str | None = None

    def summary(self, path: str | Path, border: str) -> str:
        """One line for the console: cells found, and what the border rule did."""
        line = f"found {self.found} cell{'s' * (self.found != 1)} in {path}"
        if self.read_as is not None:
            line += f" ({self.read_as})"
        if not self.at_border:
            return line
        cut = len(self.at_border)
        if border == "drop":
            return f"{line}; dropped {cut} cut by the image border (border=keep keeps them)"
        return f"{line}; kept {cut} cut by the image border (border=drop drops them)"


def find_sequences(path: str | Path, **options: object) -> list[SequenceLoader]:
    """List the sequences that an input path holds (see :func:`scan_sequences` for the options).

    Parameters
    ----------
    path : str or Path
        The input.
    **options
        ``label``, ``threshold``, ``components``, ``spacing``, ``link`` and ``border``.

    Returns
    -------
    list of SequenceLoader
        In a stable order (sorted file names, then labels).
    """
    return scan_sequences(path, **options).loaders


def scan_sequences(
    path: str | Path,
    *,
    label: int | None = None,
    threshold: float | None = None,
    components: str = "all",
    spacing: tuple[float, float, float] | None = None,
    link: str = "labels",
    border: str = "drop",
    axes: str | None = None,
) -> Scan:
    """Find the cells that an input path holds.

    A TIFF or OME-Zarr label image (more than one non-zero value) gives one sequence per label, or per
    track with ``link='overlap'``; a binary mask, or any image read with ``threshold`` or ``label``, is one
    cell. Folders of time-lapses give the cells of each file; a folder of single-frame 3D TIFFs is one
    time-lapse; a Cell Tracking Challenge folder gives one sequence per track label.

    Parameters
    ----------
    path : str or Path
        A TIFF or OME-TIFF time-lapse (TZYX) or 3D image; an OME-Zarr label image; a folder of time-lapses;
        a folder of single-frame ZYX TIFFs; a Cell Tracking Challenge folder; or a reference HDF5 file with
        ``sdf_vid`` (foreground where sdf <= 0).
    label, threshold, components
        How label or intensity images become masks (see :func:`cellsdf.dataset.binarise.binarise`);
        ``label`` keeps that one label as the only cell.
    spacing : tuple of float, optional
        Voxel size (z, y, x) in µm that replaces what the files say.
    link : {'labels', 'overlap'}
        'labels': a label value is one cell over time; 'overlap': labels are per frame (segmentation output)
        and objects are linked by overlap, with divisions (:func:`cellsdf.dataset.linking.link_overlap`).
    border : {'drop', 'keep'}
        What to do with cells that touch the image border in any frame (their shapes are cut).
    axes : str, optional
        The order TIFF pixels are stored in (``TZYX``, ``ZTYX``, ...), instead of what the files say.

    Returns
    -------
    Scan
        The sequences, the number of cells found and the names of those at the border.

    Raises
    ------
    InputError
        If the path is missing or holds nothing usable, or every cell touches the border.
    """
    path = Path(path)
    if not path.exists():
        raise InputError(path, "not found")
    spacing = check_spacing("spacing", spacing)
    if link not in LINKS:
        raise InputError("link", f"must be one of {', '.join(LINKS)}, got {link!r}")
    if border not in BORDERS:
        raise InputError("border", f"must be one of {', '.join(BORDERS)}, got {border!r}")
    if label is not None and link == "overlap":
        raise InputError(
            "label", "picks one label value, but with link=overlap the labels are per frame; drop one of them"
        )

    def stack_cells(
        file: Path, stack: Stack, name: str, division: int | None, reread: Callable[[], Stack] | None
    ) -> list[_Found]:
        spacing_ = spacing or stack.spacing
        check_finite(stack.data, file)
        if threshold is None and label is None and is_label_image(stack.data):
            if looks_like_intensity(stack.data[0]):
                binarise(stack.data[:1], file)  # raises the intensity-image error
            lowest = stack.data.min()
            if lowest < 0:
                problem = f"holds negative labels (down to {lowest}); 0 is background, cells > 0"
                raise InputError(file, problem)
            cells = label_cells(stack.data, name=name, link=link)
            return [
                _Found(
                    cell.name,
                    cell.touches_border,
                    lambda cell=cell: MaskSequence(
                        cell.name,
                        str(file),
                        binarise(cell.masks, f"{file} ({cell.name})", components=components),
                        spacing_,
                        cell.frame_numbers,
                        stack.frame_interval,
                        cell.division_frame,
                    ),
                )
                for cell in cells
            ]
        seq = one_cell(file, stack, name, division)
        if reread is None:
            return [_Found(name, touches_border(seq.masks), lambda: seq)]
        # A file of a folder is read again when needed, so that a folder of large time-lapses never sits
        # in memory.
        return [_Found(name, touches_border(seq.masks), lambda: one_cell(file, reread(), name, division))]

    def one_cell(file: Path, stack: Stack, name: str, division: int | None) -> MaskSequence:
        masks = binarise(stack.data, file, label=label, threshold=threshold, components=components)
        return MaskSequence(
            name,
            str(file),
            masks,
            spacing or stack.spacing,
            np.arange(len(masks)),
            stack.frame_interval,
            division,
        )

    tiff = path.is_file() and path.suffix.lower() in TIFF_SUFFIXES
    if axes is not None and not (tiff or path.is_dir() and not is_omezarr(path) and not is_ctc_folder(path)):
        raise InputError("axes", f"applies to TIFF files and folders of them; {path} states its own axes")
    read_as = None
    if path.is_file() and path.suffix.lower() in HDF5_SUFFIXES:
        loaders = [SequenceLoader(path.stem, lambda: _reference_sequence(path, spacing or (1.0, 1.0, 1.0)))]
        return Scan(loaders, 1, [])
    if is_omezarr(path):
        found = stack_cells(path, _zarr_stack(path, spacing), _stem(path), None, None)
    elif tiff:
        read_as = read_header(path, axes=axes).describe()
        found = stack_cells(path, read_timelapse(path, axes=axes), _stem(path), None, None)
    elif path.is_file():
        raise InputError(
            path, "unsupported file type; expected a TIFF (.tif), OME-Zarr or reference HDF5 (.h5)"
        )
    elif is_ctc_folder(path):
        found = [
            _Found(
                track.name,
                track.touches_border,
                lambda track=track: _track_sequence(track, path, spacing, components),
            )
            for track in read_ctc_tracks(path)
        ]
    else:
        files = sorted(p for p in path.iterdir() if p.suffix.lower() in TIFF_SUFFIXES)
        if not files:
            raise InputError(path, "folder holds no TIFF files and is not a Cell Tracking Challenge folder")
        first = read_header(files[0], axes=axes)
        read_as = first.describe()
        if first.has_time:
            divisions = recorded_divisions(path)
            found = [
                cell
                for f in files
                for cell in stack_cells(
                    f,
                    read_timelapse(f, axes=axes),
                    _stem(f),
                    divisions.get(f.name),
                    lambda f=f: read_timelapse(f, axes=axes),
                )
            ]
        else:
            found = stack_cells(path, _stack_frames(files, axes), path.name, None, None)
    at_border = [cell.name for cell in found if cell.touches_border]
    kept = [cell for cell in found if border == "keep" or not cell.touches_border]
    if not kept:
        raise InputError(
            path, f"all {len(found)} cells touch the image border (cut shapes); pass border=keep to use them"
        )
    loaders = [SequenceLoader(cell.name, cell.load) for cell in kept]
    return Scan(loaders, len(found), at_border, read_as)


@dataclass(frozen=True)
class _Found:
    name: str
    touches_border: bool
    load: Callable[[], MaskSequence]


def _stem(path: Path) -> str:
    """Return a file's name without its suffix, which may be double (``.ome.tif``)."""
    name = path.name
    for suffix in (".ome.tiff", ".ome.tif", ".ome.zarr", ".zarr", ".tiff", ".tif"):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return path.stem


def _zarr_stack(path: Path, spacing: tuple[float, float, float] | None) -> Stack:
    image = read_omezarr(path)
    if image.spacing is None and spacing is None:
        raise InputError(path, "states no physical voxel size; pass spacing=[z,y,x] in µm")
    return Stack(image.data, image.spacing or spacing, image.frame_interval or 1.0, image.has_time)


def _stack_frames(files: list[Path], axes: str | None) -> Stack:
    stacks = [read_timelapse(f, axes=axes) for f in files]
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
