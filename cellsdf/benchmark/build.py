"""Building 2D segmentation benchmarks in the Cell Tracking Challenge layout from 3D mask time-lapses.

Each input sequence (simulated, generated or the user's) becomes one numbered CTC sequence: the maximum
projection of every 3D frame is the ground-truth mask, a texture model turns it into a 16-bit image, and a
cell that divides ends its track with two daughter tracks. An Otsu-threshold baseline segmentation scored
with the CTC SEG measure goes into ``benchmark.json``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import ndimage

from cellsdf.benchmark.ellipsoids import SHAPES, shaped_mask
from cellsdf.benchmark.fields import compose_field, field_groups
from cellsdf.benchmark.realism import holdout_quarter, texture_realism
from cellsdf.benchmark.seg import otsu_baseline, seg_measure
from cellsdf.benchmark.tracks import track_single_cell
from cellsdf.dataset.sources import recorded_divisions
from cellsdf.errors import InputError
from cellsdf.evaluate.inputs import SequenceSpec, iter_masks, list_sequences
from cellsdf.io.atomic import atomic_path
from cellsdf.io.ctc import sequence_name, write_ctc_sequence
from cellsdf.io.folders import check_out_folder
from cellsdf.io.manifest import write_manifest
from cellsdf.progress import track
from cellsdf.texture.models import Texture, shipped_textures
from cellsdf.texture.pairs import read_pairs, shipped_pairs


def project_components(mask: np.ndarray, axis: int) -> np.ndarray:
    """Project a 3D mask's connected components: each pixel takes the id of the first object along ``axis``.

    Two daughter cells that lie one behind the other stay two objects in the projection, which a 2D
    connected-component labelling of the projected mask would merge.

    Parameters
    ----------
    mask : np.ndarray
        bool (Z, Y, X).
    axis : int
        Array axis to project along (0: z).

    Returns
    -------
    np.ndarray
        int32 2D ids, 0 where no object lies along the ray; ``ids > 0`` is the maximum projection.
    """
    projected = np.zeros(np.delete(mask.shape, axis), dtype=np.int32)
    # A cell fills a few per cent of its frame: labelling and projecting its bounding box only is ~10x faster.
    box = ndimage.find_objects(mask.astype(np.uint8))
    if not box:
        return projected
    ids, _ = ndimage.label(mask[box[0]])
    first = np.expand_dims((ids > 0).argmax(axis=axis), axis)
    plane = tuple(s for k, s in enumerate(box[0]) if k != axis)
    projected[plane] = np.take_along_axis(ids, first, axis=axis).squeeze(axis)
    return projected


def project_sequence(spec: SequenceSpec, axis: int, *, shapes: str = "cells") -> np.ndarray:
    """Projected object ids (:func:`project_components`) of a sequence's 3D masks, one frame read at a time.

    Parameters
    ----------
    spec : SequenceSpec
        From :func:`cellsdf.evaluate.inputs.list_sequences`.
    axis : int
        Array axis of the (z, y, x) frames to project along.
    shapes : str
        ``"cells"`` projects the masks; ``"ellipsoids"`` each 3D frame's components replaced by their
        ellipsoids first (:func:`cellsdf.benchmark.ellipsoids.shaped_mask`).

    Returns
    -------
    np.ndarray
        int32 (T, A, B) object ids; ``> 0`` is the maximum projection.
    """
    projections = []
    for t, mask in enumerate(iter_masks(spec)):
        if mask.ndim != 3:
            raise InputError(spec.source, f"frame {t} has shape {mask.shape}; expected 3D (Z, Y, X) masks")
        projected = project_components(shaped_mask(mask, shapes=shapes), axis)
        if projections and projected.shape != projections[0].shape:
            raise InputError(
                spec.source,
                f"frame {t} has shape {mask.shape}, unlike the frames before it; masks of one "
                "sequence must share their shape",
            )
        projections.append(projected)
    if not projections:
        raise InputError(spec.source, "holds no frames")
    return np.stack(projections)


def division_frame(spec: SequenceSpec) -> int | None:
    """Return the division frame that ``cellsdf simulate`` recorded for a sequence's file, if any."""
    if spec.kind != "tiff":
        return None
    file = Path(spec.paths[0])
    return recorded_divisions(file.parent).get(file.name)


@dataclass(frozen=True)
class FieldOptions:
    """How single cells are placed in multi-cell fields (:func:`cellsdf.benchmark.fields.compose_field`).

    Attributes
    ----------
    cells_per_field : int
        Cells per field; 1 keeps one cell per sequence in its projected frame.
    size : int
        Side of the square field in pixels.
    drift : float
        Speed of each cell's straight drift in pixels per frame.
    gap : int
        Background pixels kept between cells and from the border.
    depth : int or None
        3D fields: slices in z; None: the deepest cell's and the gap above and below.
    """

    cells_per_field: int = 1
    size: int = 512
    drift: float = 0.5
    gap: int = 2
    depth: int | None = None


def single_cells(
    specs: list[SequenceSpec], axis: int, progress: bool, *, shapes: str = "cells"
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Projected labels and track tables of every input sequence, one cell each (parent and daughters)."""
    cells = []
    for spec in track(specs, "projecting", show=progress):
        ids = project_sequence(spec, axis, shapes=shapes)
        cells.append(track_single_cell(ids > 0, division_frame(spec), components=ids))
    return cells


def real_realism(textures: list[Texture], seeds: int) -> dict:
    """Realism figures of texture models on the held-out quarter of the shipped real image (seed means)."""
    (pair,) = read_pairs(shipped_pairs())
    real, labels = holdout_quarter(pair.image, pair.labels)
    result = {
        "image": pair.name,
        "region": "bottom-right quarter, held out from texture training",
        "seeds": seeds,
    }
    figures, _ = texture_realism(real, labels, textures, list(range(seeds)))
    result.update(figures)
    return result


def build_benchmark(
    source: str | Path,
    out: str | Path,
    texture: Texture,
    *,
    others: Sequence[Texture] | None = None,
    axis: int = 0,
    shapes: str = "cells",
    seed: int = 0,
    fields: FieldOptions = FieldOptions(),
    realism_seeds: int = 5,
    overwrite: bool = False,
    progress: bool = False,
    config: dict | None = None,
) -> dict:
    """Turn the sequences of ``source`` into numbered CTC sequences in ``out``, with ``benchmark.json``.

    Every input sequence is projected and tracked first (:func:`single_cells`); with ``fields``, groups of
    cells are then placed in multi-cell fields. All frames are checked against the texture model before
    anything is written.

    Parameters
    ----------
    source : str or Path
        3D mask time-lapses in any form :func:`cellsdf.evaluate.inputs.list_sequences` reads.
    out : str or Path
        Output folder; one that holds files is refused unless ``overwrite``.
    texture : Texture
        The texture model (:mod:`cellsdf.texture.models`).
    others : sequence of Texture, optional
        Further texture models whose realism ``benchmark.json`` reports beside ``texture``'s; None: the
        shipped models other than ``texture`` (:func:`cellsdf.texture.models.shipped_textures`).
    axis : int
        Projection axis of the (z, y, x) frames.
    shapes : str
        ``"cells"``, or ``"ellipsoids"``: the control, each 3D component replaced by the ellipsoid of its
        centroid, principal axes and volume before projection (:mod:`cellsdf.benchmark.ellipsoids`).
    seed : int
        Output sequence ``k`` draws its field and texture from a generator seeded with (seed, k).
    fields : FieldOptions
        Cells per field and their placement; one cell per field keeps the projected frames.
    realism_seeds : int
        ``texture`` and ``others`` texture the held-out quarter of the shipped real image this many times for
        the realism figures in ``benchmark.json``; 0 leaves them out.
    overwrite : bool
        Write into a folder that holds files.
    progress : bool
        Progress bars.
    config : dict, optional
        Configuration recorded in the manifest.

    Returns
    -------
    dict
        The content of ``benchmark.json``.
    """
    model = texture
    if axis not in (0, 1, 2):
        raise InputError("axis", f"must be 0 (z), 1 (y) or 2 (x), got {axis!r}")
    if shapes not in SHAPES:
        raise InputError("shapes", f"must be one of {', '.join(SHAPES)}, got {shapes!r}")
    if fields.cells_per_field < 1:
        raise InputError("cells_per_field", f"must be at least 1, got {fields.cells_per_field}")
    if realism_seeds < 0:
        raise InputError("realism_seeds", f"must be 0 (no realism figures) or more, got {realism_seeds}")
    specs = list_sequences(source)
    out = check_out_folder(out, overwrite)
    cells = single_cells(specs, axis, progress, shapes=shapes)
    groups = field_groups(len(cells), fields.cells_per_field)
    outputs = []
    for number, group in enumerate(groups, start=1):
        rng = np.random.default_rng([seed, number])
        if fields.cells_per_field == 1:
            labels, tracks = cells[group[0]]
            placements = None
        else:
            picked = [cells[i] for i in group]
            labels, tracks, placements = compose_field(picked, fields.size, rng, fields.drift, fields.gap)
        model.check_frames(labels.shape)
        outputs.append((number, group, labels, tracks, placements, rng))
    sequences, items = {}, []
    for number, group, labels, tracks, placements, rng in track(
        outputs, f"texturing ({model.name})", show=progress
    ):
        images = model.apply(labels, rng)
        write_ctc_sequence(out, number, images, labels, tracks, overwrite=overwrite)
        scores = [seg_measure(truth, otsu_baseline(im)) for truth, im in zip(labels, images, strict=True)]
        name = sequence_name(number)
        sources = [specs[i].source for i in group]
        sequences[name] = {
            "sources": sources,
            "frames": len(labels),
            "shape": list(labels.shape[1:]),
            "tracks": len(tracks),
            "divisions": int((tracks[:, 3] > 0).sum()) // 2,
            "baseline_seg": float(np.mean(scores)),
            "baseline_seg_per_frame": [float(s) for s in scores],
        }
        if placements is not None:
            sequences[name]["placements"] = placements
        items.append({"name": name, "sources": sources, "frames": len(labels), "tracks": len(tracks)})
    result = {
        "texture": model.name,
        "shapes": shapes,
        "projection_axis": "zyx"[axis],
        "cells_per_field": fields.cells_per_field,
        "baseline": "Otsu threshold + connected components, scored with the CTC SEG measure",
        "baseline_seg": float(np.mean([s["baseline_seg"] for s in sequences.values()])),
        "sequences": sequences,
    }
    if realism_seeds:
        if others is None:
            others = [t for t in shipped_textures() if t.name != model.name]
        result["realism"] = real_realism([model, *others], realism_seeds)
    with atomic_path(out / "benchmark.json") as tmp:
        tmp.write_text(json.dumps(result, indent=2) + "\n")
    write_manifest(out, "benchmark", config or {}, seed, items)
    return result
