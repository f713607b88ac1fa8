"""``cellsdf benchmark``: 2D segmentation benchmarks in the Cell Tracking Challenge layout from 3D masks.

Each input sequence (simulated, generated or the user's) becomes one numbered CTC sequence: the maximum
projection of every 3D frame is the ground-truth mask, a texture model turns it into a 16-bit image, and a
cell that divides ends its track with two daughter tracks. An Otsu-threshold baseline segmentation scored
with the CTC SEG measure goes into ``benchmark.json``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from omegaconf import DictConfig, OmegaConf
from scipy import ndimage

from cellsdf.benchmark.ctc import sequence_name, write_ctc_sequence
from cellsdf.benchmark.seg import otsu_baseline, seg_measure
from cellsdf.benchmark.tracks import track_single_cell
from cellsdf.dataset.sources import recorded_divisions
from cellsdf.errors import InputError
from cellsdf.evaluate.inputs import SequenceSpec, iter_masks, list_sequences
from cellsdf.io.atomic import atomic_path
from cellsdf.io.manifest import write_manifest
from cellsdf.progress import track
from cellsdf.tasks.reconstruct import check_out_folder
from cellsdf.texture.procedural import procedural_texture

TEXTURES = ("procedural",)


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


def project_sequence(spec: SequenceSpec, axis: int) -> np.ndarray:
    """Projected object ids (:func:`project_components`) of a sequence's 3D masks, one frame read at a time.

    Parameters
    ----------
    spec : SequenceSpec
        From :func:`cellsdf.evaluate.inputs.list_sequences`.
    axis : int
        Array axis of the (z, y, x) frames to project along.

    Returns
    -------
    np.ndarray
        int32 (T, A, B) object ids; ``> 0`` is the maximum projection.
    """
    projections = []
    for t, mask in enumerate(iter_masks(spec)):
        if mask.ndim != 3:
            raise InputError(spec.source, f"frame {t} has shape {mask.shape}; expected 3D (Z, Y, X) masks")
        projected = project_components(mask, axis)
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


def build_benchmark(
    source: str | Path,
    out: str | Path,
    texture: dict,
    axis: int = 0,
    seed: int = 0,
    overwrite: bool = False,
    progress: bool = False,
    config: dict | None = None,
) -> dict:
    """Turn every sequence of ``source`` into a numbered CTC sequence in ``out``, with ``benchmark.json``.

    Parameters
    ----------
    source : str or Path
        3D mask time-lapses in any form :func:`cellsdf.evaluate.inputs.list_sequences` reads.
    out : str or Path
        Output folder; one that holds files is refused unless ``overwrite``.
    texture : dict
        ``name`` (``procedural``) and the texture model's parameters (``conf/texture/procedural.yaml``).
    axis : int
        Projection axis of the (z, y, x) frames.
    seed : int
        Sequence ``k`` is textured with a generator seeded with (seed, k).
    overwrite : bool
        Write into a folder that holds files.
    progress : bool
        Progress bar over sequences.
    config : dict, optional
        Configuration recorded in the manifest.

    Returns
    -------
    dict
        The content of ``benchmark.json``.
    """
    if texture.get("name") not in TEXTURES:
        raise InputError("texture", f"choose one of {', '.join(TEXTURES)}, got {texture.get('name')!r}")
    if axis not in (0, 1, 2):
        raise InputError("axis", f"must be 0 (z), 1 (y) or 2 (x), got {axis!r}")
    specs = list_sequences(source)
    out = check_out_folder(out, overwrite)
    params = {k: v for k, v in texture.items() if k != "name"}
    sequences, items = {}, []
    for number, spec in enumerate(track(specs, "sequences", show=progress), start=1):
        ids = project_sequence(spec, axis)
        division = division_frame(spec)
        labels, tracks = track_single_cell(ids > 0, division, components=ids)
        rng = np.random.default_rng([seed, number])
        images = np.stack([procedural_texture(frame, rng, **params) for frame in labels])
        write_ctc_sequence(out, number, images, labels, tracks, overwrite=overwrite)
        scores = [seg_measure(truth, otsu_baseline(im)) for truth, im in zip(labels, images, strict=True)]
        name = sequence_name(number)
        sequences[name] = {
            "source": spec.source,
            "frames": len(labels),
            "shape": list(labels.shape[1:]),
            "tracks": len(tracks),
            "division_frame": division,
            "baseline_seg": float(np.mean(scores)),
            "baseline_seg_per_frame": [float(s) for s in scores],
        }
        items.append({"name": name, "source": spec.source, "frames": len(labels), "tracks": len(tracks)})
    result = {
        "texture": texture["name"],
        "projection_axis": "zyx"[axis],
        "baseline": "Otsu threshold + connected components, scored with the CTC SEG measure",
        "baseline_seg": float(np.mean([s["baseline_seg"] for s in sequences.values()])),
        "sequences": sequences,
    }
    with atomic_path(out / "benchmark.json") as tmp:
        tmp.write_text(json.dumps(result, indent=2) + "\n")
    write_manifest(out, "benchmark", config or {}, seed, items)
    return result


def run(cfg: DictConfig) -> dict:
    """Build the benchmark configured in ``conf/benchmark.yaml``; return the output folder and scores."""
    if cfg.source is None or cfg.out is None:
        raise InputError("benchmark", "needs source=<folder of 3D mask time-lapses> and out=<folder>")
    config = OmegaConf.to_container(cfg, resolve=True)
    result = build_benchmark(
        cfg.source, cfg.out, config["texture"], cfg.axis, cfg.seed, cfg.overwrite, cfg.progress, config
    )
    out = Path(cfg.out)
    count = len(result["sequences"])
    print(f"wrote {count} sequence(s) in the Cell Tracking Challenge layout to {out.resolve()}")
    print(f"  baseline (Otsu) SEG {result['baseline_seg']:.3f}; in {(out / 'benchmark.json').resolve()}")
    return {"out": out, "benchmark": result}
