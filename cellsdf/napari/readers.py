"""napari readers for cellsdf outputs: each returns napari layer data ``(data, kwargs, layer_type)``.

What opens (napari's convention: :func:`get_reader` returns None for anything else):

- a generated (or lifted, reconstructed) cell folder, or its ``mask.tif``: the mask as a labels layer (t, z,
  y, x) scaled by the frame interval (s) and voxel size (µm); a folder adds its ``mesh/timelapse_napari.npz``;
- ``mesh/timelapse_napari.npz``: the 4D surface;
- ``sdf.h5``: the signed distance of every frame as an image layer;
- ``mask.ome.zarr`` (or any OME-Zarr label image): a labels layer with the file's sizes;
- a CTC benchmark folder: per sequence the images, the track labels and the tracks of ``man_track.txt``;
- a prepared dataset (``.h5``): its evaluation masks, one slider step per sequence.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
from scipy import ndimage

from cellsdf.dataset.prepared import is_prepared, read_eval_masks, read_index
from cellsdf.decode.volumes import TIMELAPSE_NAPARI
from cellsdf.errors import InputError
from cellsdf.geometry.grid import grid_spacing
from cellsdf.io.ctc import CtcSequence, ctc_sequences, read_ctc_sequence
from cellsdf.io.mesh import read_napari_surface
from cellsdf.io.omezarr import is_omezarr, read_omezarr
from cellsdf.io.reference import read_reference_sdf
from cellsdf.io.tiff import read_header, read_timelapse

LayerData = tuple  # (data, kwargs, layer_type), as napari takes it
MASK = "mask.tif"
SDF = "sdf.h5"
UM = "micrometer"


def get_reader(path: str | list[str]) -> Callable[[str | list[str]], list[LayerData]] | None:
    """Return the reader for a cellsdf output, or None when ``path`` is not one (napari's reader hook).

    Parameters
    ----------
    path : str or list of str
        What the user opened; a list is read when it holds one path.

    Returns
    -------
    callable or None
        A function of the path returning a list of layer data.
    """
    if isinstance(path, list):
        if len(path) != 1:
            return None
        path = path[0]
    reader = _pick(Path(path))
    return None if reader is None else lambda p: reader(Path(p[0] if isinstance(p, list) else p))


def _pick(path: Path) -> Callable[[Path], list[LayerData]] | None:
    """Choose the reader by what the path holds; None when nothing fits (and never raise)."""
    try:
        if path.is_dir():
            if is_omezarr(path):
                return read_omezarr_layers
            if (path / MASK).is_file():
                return read_cell_folder
            if ctc_sequences(path):
                return read_ctc_layers
            return None
        if path.name == MASK:
            return read_mask_layers
        if path.name == Path(TIMELAPSE_NAPARI).name:
            return read_surface_layers
        if path.name == SDF:
            return read_sdf_layers
        if is_prepared(path):
            return read_prepared_layers
    except (InputError, OSError):
        return None
    return None


def _cell_spacing(folder: Path) -> tuple[float, float, float]:
    """Voxel size of a cell folder's grid: its ``cell.json``, else its ``mask.tif``, else 1 µm."""
    try:
        return tuple(json.loads((folder / "cell.json").read_text())["spacing_um"])
    except (OSError, ValueError, KeyError):
        pass
    if (folder / MASK).is_file():
        return read_header(folder / MASK).spacing or (1.0, 1.0, 1.0)
    return (1.0, 1.0, 1.0)


def _frame_interval(folder: Path) -> float:
    """Seconds between a cell folder's frames, from its ``mask.tif`` (1 where it does not say)."""
    return read_header(folder / MASK).frame_interval if (folder / MASK).is_file() else 1.0


def read_mask_layers(path: Path) -> list[LayerData]:
    """Read a ``mask.tif`` time-lapse as a labels layer (t, z, y, x) with its sizes."""
    stack = read_timelapse(path)
    labels = (stack.data > 0).view(np.uint8)
    kwargs = {
        "name": f"{path.parent.name} mask",
        "scale": (stack.frame_interval, *stack.spacing),
        "axis_labels": ("t", "z", "y", "x"),
        "units": ("second", UM, UM, UM),
    }
    return [(labels, kwargs, "labels")]


def read_surface_layers(path: Path) -> list[LayerData]:
    """Read ``mesh/timelapse_napari.npz`` as a 4D surface layer (t, z, y, x), vertices in µm."""
    vertices, faces, values = read_napari_surface(path)
    folder = path.parent.parent
    kwargs = {
        "name": f"{folder.name} surface",
        "scale": (_frame_interval(folder), 1.0, 1.0, 1.0),
        "axis_labels": ("t", "z", "y", "x"),
        "units": ("second", UM, UM, UM),
        "colormap": "viridis",
    }
    return [((vertices, faces, values), kwargs, "surface")]


def read_cell_folder(path: Path) -> list[LayerData]:
    """Read a cell folder: its mask and, when written, its time-lapse surface."""
    layers = read_mask_layers(path / MASK)
    if (path / TIMELAPSE_NAPARI).is_file():
        layers += read_surface_layers(path / TIMELAPSE_NAPARI)
    return layers


def read_sdf_layers(path: Path) -> list[LayerData]:
    """Read ``sdf.h5`` as an image layer of the SDF (t, z, y, x), negative inside, blue to red."""
    sdf = read_reference_sdf(path)
    folder = path.parent
    kwargs = {
        "name": f"{folder.name} sdf",
        "scale": (_frame_interval(folder), *_cell_spacing(folder)),
        "axis_labels": ("t", "z", "y", "x"),
        "units": ("second", UM, UM, UM),
        "colormap": "RdBu",
        "contrast_limits": (-1.0, 1.0),
    }
    return [(sdf, kwargs, "image")]


def read_omezarr_layers(path: Path) -> list[LayerData]:
    """Read an OME-Zarr label image as a labels layer with its sizes (1 where the file states none)."""
    image = read_omezarr(path)
    spacing = image.spacing or (1.0, 1.0, 1.0)
    kwargs = {
        "name": path.name,
        "scale": (image.frame_interval or 1.0, *spacing),
        "axis_labels": ("t", "z", "y", "x"),
        "units": ("second", UM, UM, UM),
    }
    return [(image.data, kwargs, "labels")]


def read_ctc_layers(path: Path) -> list[LayerData]:
    """Read every sequence of a CTC folder: images, track labels and a tracks layer with divisions."""
    layers = []
    for name in ctc_sequences(path):
        sequence = read_ctc_sequence(path, name)
        axes = ("t", "z", "y", "x")[-sequence.images.ndim :]
        shown = {"axis_labels": axes}
        if sequence.spacing is not None:
            # 3D benchmarks state voxel size (z often 5x coarser) and frame interval: shown to scale.
            shown["scale"] = (sequence.frame_interval or 1.0, *sequence.spacing)
            shown["units"] = ("second", UM, UM, UM)
        layers.append((sequence.images, {"name": f"{name} images", **shown}, "image"))
        layers.append((sequence.labels, {"name": f"{name} labels", **shown}, "labels"))
        data, graph = track_points(sequence)
        layers.append((data, {"name": f"{name} tracks", "graph": graph, **shown}, "tracks"))
    return layers


def track_points(sequence: CtcSequence) -> tuple[np.ndarray, dict[int, list[int]]]:
    """Turn a CTC sequence's track labels into napari tracks: label centroids per frame and the lineage.

    Parameters
    ----------
    sequence : CtcSequence
        Track labels (T, ...) and ``L B E P`` rows.

    Returns
    -------
    tuple
        float (N, 2 + D) rows (track id, t, position...) and the graph {daughter: [parent]}.

    Examples
    --------
    >>> labels = np.zeros((2, 8, 8), np.uint16); labels[:, 1:3, 1:3] = 1; labels[1, 5:7, 5:7] = 2
    >>> seq = CtcSequence("01", labels, labels, np.array([[1, 0, 1, 0], [2, 1, 1, 1]]))
    >>> points, graph = track_points(seq)
    >>> points.tolist(), graph
    ([[1.0, 0.0, 1.5, 1.5], [1.0, 1.0, 1.5, 1.5], [2.0, 1.0, 5.5, 5.5]], {2: [1]})
    """
    rows = []
    for t, frame in enumerate(sequence.labels):
        ids = np.unique(frame[frame != 0])
        for label, centre in zip(ids, ndimage.center_of_mass(frame != 0, frame, ids), strict=True):
            rows.append((int(label), t, *centre))
    rows.sort()
    graph = {int(label): [int(parent)] for label, _, _, parent in sequence.tracks if parent}
    width = 2 + sequence.labels.ndim - 1
    return np.asarray(rows, float).reshape(-1, width), graph


def read_prepared_layers(path: Path) -> list[LayerData]:
    """Read a prepared dataset's evaluation masks as one labels layer (sequence, t, z, y, x).

    Sequences shorter than the longest end in empty frames.
    """
    index = read_index(path)
    masks = read_eval_masks(path)
    rows = [index.rows(s) for s in range(len(index.names))]
    size = index.eval_size
    stacked = np.zeros((len(rows), max(len(r) for r in rows), size, size, size), np.uint8)
    for s, r in enumerate(rows):
        stacked[s, : len(r)] = masks[r]
    kwargs = {
        "name": f"{path.stem} evaluation masks",
        "scale": (1.0, 1.0, *grid_spacing(size, index.scale)),
        "axis_labels": ("sequence", "frame", "z", "y", "x"),
        "units": ("pixel", "pixel", UM, UM, UM),
        "metadata": {"sequences": index.names},
    }
    return [(stacked, kwargs, "labels")]
