"""3D+t segmentation benchmarks: cells imaged as a 3D microscope images them, in the CTC 3D layout.

Each input sequence (generated, simulated or the user's 3D masks) is brought onto the microscope's voxel grid
(:meth:`cellsdf.texture.microscope.Microscope.stained`), tracked in 3D (a division splits the parent into two
daughter tracks; specks below a tenth of the largest object's volume are background), and either kept in its
own field or placed with others in a larger field where no two cells overlap or touch in any frame
(:func:`cellsdf.benchmark.fields.place_cells`). Every frame is then imaged and written at once, so memory
holds one frame of the field besides the cells' own crops.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tifffile
from scipy import ndimage

from cellsdf.benchmark.build import FieldOptions, division_frame
from cellsdf.benchmark.ellipsoids import SHAPES, shaped_mask
from cellsdf.benchmark.fields import PlacedCells, field_groups, merged_divisions, place_cells
from cellsdf.benchmark.seg import otsu_baseline, seg_measure
from cellsdf.benchmark.tracks import track_single_cell
from cellsdf.errors import InputError
from cellsdf.evaluate.inputs import SequenceSpec, iter_masks, list_sequences
from cellsdf.io.atomic import atomic_path
from cellsdf.io.ctc import CtcWriter, sequence_name
from cellsdf.io.folders import check_out_folder
from cellsdf.io.manifest import write_manifest
from cellsdf.progress import track
from cellsdf.texture.microscope import Microscope

# Voxels of stain kept around a cell's labels (partial volume); fields keep at least this gap between cells.
MARGIN = 1
_CONNECTIVITY = np.ones((3, 3, 3), dtype=bool)
ONE_CELL_EACH = FieldOptions()


@dataclass(frozen=True)
class VolumeCell:
    """One input sequence on the microscope's grid, tracked.

    Attributes
    ----------
    labels : np.ndarray
        uint16 (T, d, h, w) labels (1 the parent, 2 and 3 the daughters) cut to their box over all frames.
    stain : np.ndarray
        float32 (T, d + 2m, h + 2m, w + 2m) stained fraction of each voxel, the box grown by ``MARGIN``.
    tracks : np.ndarray
        int64 (N, 4) ``L B E P`` rows of ``labels``.
    corner : tuple of int
        (z, y, x) of the box in the cell's own field on the microscope's grid.
    field : tuple of int
        That field's shape (Z, Y, X).
    frame_interval : float or None
        Seconds between frames that the source states.
    """

    labels: np.ndarray
    stain: np.ndarray
    tracks: np.ndarray
    corner: tuple[int, int, int]
    field: tuple[int, int, int]
    frame_interval: float | None


def volume_cell(spec: SequenceSpec, microscope: Microscope, *, shapes: str = "cells") -> VolumeCell:
    """Bring one sequence of 3D masks onto the microscope's grid and track it in 3D.

    Parameters
    ----------
    spec : SequenceSpec
        From :func:`cellsdf.evaluate.inputs.list_sequences`; it must state its voxel size.
    microscope : Microscope
        The grid and the staining.
    shapes : str
        ``"cells"`` images the masks; ``"ellipsoids"`` each frame's components replaced by their ellipsoids
        on the masks' own grid first (:func:`cellsdf.benchmark.ellipsoids.shaped_mask`).

    Returns
    -------
    VolumeCell

    Raises
    ------
    InputError
        Naming the source if it has no voxel size, frames that are not 3D or of different shapes, no frames,
        or a cell smaller than one voxel of the microscope.
    """
    if spec.spacing is None:
        raise InputError(spec.source, "states no voxel size; 3D images need the masks' spacing in µm")
    occupancy, stains, shape = [], [], None
    for t, mask in enumerate(iter_masks(spec)):
        if mask.ndim != 3 or (shape is not None and mask.shape != shape):
            raise InputError(
                spec.source, f"frame {t} has shape {mask.shape}; expected 3D frames of one shape"
            )
        shape = mask.shape
        occ, stain = microscope.stained(shaped_mask(mask, shapes=shapes), spec.spacing)
        occupancy.append(_Sparse.of(occ >= 0.5))
        stains.append(_Sparse.of(stain, where=stain > 0))
    if not occupancy:
        raise InputError(spec.source, "holds no frames")
    field = occupancy[0].shape
    filled = [o for o in occupancy if o.values.size]
    if not filled:
        raise InputError(
            spec.source, f"no cell voxel is left at the microscope's voxel size {microscope.spacing}"
        )
    # Tracking sees the union of the frames' boxes only, so memory follows the cell, not the field.
    window = tuple(
        slice(min(o.corner[a] for o in filled), max(o.corner[a] + o.values.shape[a] for o in filled))
        for a in range(3)
    )
    masks = np.stack([o.dense(window=window) for o in occupancy])
    ids = np.stack([ndimage.label(m, structure=_CONNECTIVITY)[0] for m in masks])
    labels, tracks = track_single_cell(masks, division_frame(spec), components=ids)
    box = ndimage.find_objects((labels > 0).any(axis=0).astype(np.uint8))[0]
    corner = tuple(int(w.start + s.start) for w, s in zip(window, box, strict=True))
    grown = tuple(slice(c - MARGIN, c + s.stop - s.start + MARGIN) for c, s in zip(corner, box, strict=True))
    stain = np.stack([s.dense(window=grown) for s in stains])
    return VolumeCell(labels[(slice(None), *box)], stain, tracks, corner, field, _frame_interval(spec))


@dataclass(frozen=True)
class _Sparse:
    """A frame kept as its bounding box (most of a cell's frame is background)."""

    shape: tuple[int, ...]
    corner: tuple[int, ...]
    values: np.ndarray

    @classmethod
    def of(cls, array: np.ndarray, where: np.ndarray | None = None) -> _Sparse:
        box = ndimage.find_objects((array if where is None else where).astype(np.uint8))
        if not box:
            return cls(array.shape, (0,) * array.ndim, np.zeros((0,) * array.ndim, array.dtype))
        return cls(array.shape, tuple(s.start for s in box[0]), array[box[0]].copy())

    def dense(self, window: tuple[slice, ...] | None = None) -> np.ndarray:
        """Return the full frame, or its part in ``window`` (which may reach past the frame: zeros there)."""
        window = window or tuple(slice(0, n) for n in self.shape)
        out = np.zeros(tuple(s.stop - s.start for s in window), self.values.dtype)
        source, target = [], []
        for c, n, w in zip(self.corner, self.values.shape, window, strict=True):
            low, high = max(c, w.start), min(c + n, w.stop)
            if high <= low:
                return out
            source.append(slice(low - c, high - c))
            target.append(slice(low - w.start, high - w.start))
        out[tuple(target)] = self.values[tuple(source)]
        return out


def _frame_interval(spec: SequenceSpec) -> float | None:
    """Return the frame interval (s) an ImageJ time-lapse states; None for other inputs."""
    if spec.kind != "tiff":
        return None
    with tifffile.TiffFile(spec.paths[0]) as tif:
        value = (tif.imagej_metadata or {}).get("finterval")
    return float(value) if isinstance(value, (int, float)) and np.isfinite(value) and value > 0 else None


def own_field(cell: VolumeCell) -> PlacedCells:
    """Keep a cell where it is, in its own field (one cell per sequence)."""
    n_frames = cell.labels.shape[0]
    positions = np.repeat(np.array([cell.corner], dtype=np.int64), n_frames, axis=0)
    offsets = np.array([0, int(cell.labels.max())], dtype=np.int64)
    divisions = merged_divisions([cell.tracks], offsets, n_frames)
    return PlacedCells(cell.field, n_frames, [cell.labels], [positions], offsets, divisions, [])


def build_volume_benchmark(
    source: str | Path,
    out: str | Path,
    microscope: Microscope,
    *,
    texture: Callable[[np.ndarray, np.random.Generator], np.ndarray] | None = None,
    shapes: str = "cells",
    seed: int = 0,
    fields: FieldOptions = ONE_CELL_EACH,
    overwrite: bool = False,
    progress: bool = False,
    config: dict | None = None,
) -> dict:
    """Turn the sequences of ``source`` into numbered 3D CTC sequences in ``out``, with ``benchmark.json``.

    Parameters
    ----------
    source : str or Path
        3D mask time-lapses in any form :func:`cellsdf.evaluate.inputs.list_sequences` reads, with their
        voxel size.
    out : str or Path
        Output folder; one that holds files is refused unless ``overwrite``.
    microscope : Microscope
        Voxel grid, optics, staining and camera.
    texture : callable, optional
        ``texture(labels, rng) -> uint16 image`` for (Z, Y, X) labels on the microscope's grid, replacing the
        microscope's image formation (a learned texture's ``render_volume``; the grid must be the one it was
        trained on); None images with the microscope.
    shapes : str
        ``"cells"``, or ``"ellipsoids"``: the control, each 3D component replaced by the ellipsoid of its
        centroid, principal axes and volume before imaging (:mod:`cellsdf.benchmark.ellipsoids`).
    seed : int
        Output sequence ``k`` draws its placement, brightness, texture and noise from (seed, k).
    fields : FieldOptions
        Cells per field; with more than one, the field's side (y, x) and depth (z) in voxels, the drift in
        voxels per frame (in y, x) and the gap between cells (at least 1 voxel).
    overwrite, progress : bool
        Write into a folder that holds files; show progress bars.
    config : dict, optional
        Configuration recorded in the manifest.

    Returns
    -------
    dict
        The content of ``benchmark.json``.
    """
    if fields.cells_per_field < 1:
        raise InputError("cells_per_field", f"must be at least 1, got {fields.cells_per_field}")
    if fields.cells_per_field > 1 and fields.gap < MARGIN:
        raise InputError("gap", f"must be at least {MARGIN} voxel in 3D fields (the stain's partial volume)")
    if shapes not in SHAPES:
        raise InputError("shapes", f"must be one of {', '.join(SHAPES)}, got {shapes!r}")
    specs = list_sequences(source)
    out = check_out_folder(out, overwrite)
    on_grid = track(specs, "onto the microscope's grid", show=progress)
    cells = [volume_cell(spec, microscope, shapes=shapes) for spec in on_grid]
    fields_planned = []
    for number, group in enumerate(field_groups(len(cells), fields.cells_per_field), start=1):
        rng = np.random.default_rng([seed, number])
        if fields.cells_per_field == 1:
            placed = own_field(cells[group[0]])
        else:
            depth = fields.depth or max(c.labels.shape[1] for c in cells) + 2 * fields.gap
            shape = (depth, fields.size, fields.size)
            picked = [(cells[i].labels, cells[i].tracks) for i in group]
            placed = place_cells(picked, shape, rng, drift=fields.drift, gap=fields.gap)
        fields_planned.append((number, group, placed, rng))
    sequences, items = {}, []
    for number, group, placed, rng in track(fields_planned, f"imaging ({microscope.name})", show=progress):
        intervals = {cells[i].frame_interval for i in group} - {None}
        interval = microscope.frame_interval or (intervals.pop() if len(intervals) == 1 else None)
        writer = CtcWriter(
            out,
            number,
            placed.n_frames,
            spacing=microscope.spacing,
            frame_interval=interval,
            overwrite=overwrite,
        )
        factors = microscope.brightness(rng, int(placed.offsets[-1]))
        stains = [cells[i].stain[: placed.n_frames] for i in group]
        scores = []
        for t in range(placed.n_frames):
            labels = placed.frame(t)
            stain = placed.frame(t, stains, margin=MARGIN)
            if texture is None:
                image = microscope.image(labels, stain, rng, factors=factors, frame=t)
            else:
                image = texture(labels, rng)
            writer.write(t, image, labels)
            scores.append(seg_measure(labels, otsu_baseline(image)))
        tracks = placed.tracks()
        writer.finish(tracks)
        name = sequence_name(number)
        sources = [specs[i].source for i in group]
        sequences[name] = {
            "sources": sources,
            "frames": placed.n_frames,
            "shape": list(placed.shape),
            "tracks": len(tracks),
            "divisions": int((tracks[:, 3] > 0).sum()) // 2,
            "baseline_seg": float(np.mean(scores)),
            "baseline_seg_per_frame": [float(s) for s in scores],
        }
        if placed.placements:
            sequences[name]["placements"] = placed.placements
        items.append({"name": name, "sources": sources, "frames": placed.n_frames, "tracks": len(tracks)})
    result = {
        "dims": 3,
        "microscope": microscope.name,
        "texture": "microscope" if texture is None else "learned",
        "shapes": shapes,
        "voxel_size_um": list(microscope.spacing),
        "cells_per_field": fields.cells_per_field,
        "baseline": "Otsu threshold + 26-connected components, scored with the CTC SEG measure",
        "baseline_seg": float(np.mean([s["baseline_seg"] for s in sequences.values()])),
        "sequences": sequences,
    }
    with atomic_path(out / "benchmark.json") as tmp:
        tmp.write_text(json.dumps(result, indent=2) + "\n")
    write_manifest(out, "benchmark", config or {}, seed, items)
    return result
