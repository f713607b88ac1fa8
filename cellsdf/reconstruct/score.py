"""Writing decoded sequences (TIFF time-lapses, meshes) and scoring them against their prepared data."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from cellsdf.dataset.prepared import PreparedDataset, iter_eval_masks, read_index, read_prepared
from cellsdf.dataset.training import make_from_recipe
from cellsdf.decode.volumes import write_volumes
from cellsdf.errors import InputError
from cellsdf.evaluate.reconstruction import reconstruction_metrics
from cellsdf.geometry.grid import grid_spacing
from cellsdf.io.atomic import atomic_path
from cellsdf.io.hashing import file_sha256
from cellsdf.io.manifest import write_manifest
from cellsdf.model.trained import TrainedModel
from cellsdf.progress import track
from cellsdf.reconstruct.outputs import OutputOptions, SequenceCode, output_times

METRICS = ("iou", "dice", "chamfer", "hausdorff95")


def write_and_score(
    model: TrainedModel,
    codes: Sequence[SequenceCode],
    dataset: Path,
    out: Path,
    options: OutputOptions,
    *,
    data: PreparedDataset | None = None,
) -> tuple[dict, list[dict]]:
    """Decode sequences into ``out/<name>/`` and score them against the evaluation masks of ``dataset``.

    Every sequence is decoded at ``options.resolution`` at its output times, placed in the dataset's frame by
    its code's rotation, scale and translation, and written one frame at a time
    (:func:`cellsdf.decode.volumes.write_volumes`). Scores are always taken on the dataset's own evaluation
    grid (E³ over [-1, 1]³) at the dataset's frame times, so they compare like with like whatever the output
    resolution and frame count; when the two grids and times agree, the written masks are scored directly.

    Parameters
    ----------
    model : TrainedModel
        The trained model (its decoder decodes with its own clamp).
    codes : sequence of SequenceCode
        One entry per sequence to write.
    dataset : Path
        Prepared dataset holding the sequences' frames and evaluation masks.
    out : Path
        Output folder.
    options : OutputOptions
        Resolution, frames, formats, progress.
    data : PreparedDataset, optional
        ``dataset`` already read.

    Returns
    -------
    metrics : dict
        The content written to ``out/metrics.json``.
    items : list of dict
        Manifest entries, one per sequence.
    """
    data = read_prepared(dataset) if data is None else data
    index = read_index(dataset)
    numbers = index.frame_number
    eval_size = index.eval_size
    eval_spacing = grid_spacing(eval_size, data.scale)
    spacing = grid_spacing(options.resolution, data.scale)
    per_sequence, items = {}, []
    for code in codes:
        rows = np.flatnonzero(data.frame_sequence == code.index)
        times = output_times(options.frames, data.frame_t[rows])
        info = data.sequences[code.index]
        span = float(numbers[rows[-1]] - numbers[rows[0]]) * info.frame_interval
        interval = span / (len(times) - 1) if len(times) > 1 and span > 0 else info.frame_interval
        labels = [
            {"frame": k, "frame_number": int(numbers[row]), "t": float(data.frame_t[row])}
            for k, row in enumerate(rows)
        ]
        scores: list[dict] = []
        same_grid = options.frames is None and options.resolution == eval_size
        place = {"rotation": code.rotation, "scale": code.scale, "translation": code.translation}
        place["sequence"] = code.protrusions
        masks, _ = model.decode_masks(code.latent, times, resolution=options.resolution, **place)
        if same_grid:
            masks = _scored(masks, dataset, rows, labels, eval_spacing, scores)
        masks = track(masks, code.name, total=len(times), show=options.progress)
        frames = write_volumes(
            masks,
            out / code.name,
            len(times),
            options.resolution,
            spacing,
            interval,
            formats=options.formats,
            mesh=options.mesh,
        )
        if not same_grid:
            eval_masks, _ = model.decode_masks(code.latent, data.frame_t[rows], resolution=eval_size, **place)
            for _ in _scored(eval_masks, dataset, rows, labels, eval_spacing, scores):
                pass
        per_sequence[code.name] = {"frames": scores, "mean": _means(scores)}
        items.append(
            {
                "name": code.name,
                "folder": code.name,
                "mask": f"{code.name}/mask.tif" if "tiff" in options.formats else None,
                "meshes": [f"{code.name}/{f['mesh']}" for f in frames if f["mesh"] is not None],
                "frames": len(times),
                "times": times.tolist(),
                "empty_frames": [i for i, f in enumerate(frames) if f["voxels"] == 0],
                "spacing_um": list(spacing),
                "frame_interval_s": interval,
            }
        )
    everything = [s for seq in per_sequence.values() for s in seq["frames"]]
    metrics = {
        "dataset": str(dataset),
        "scored_on": {
            "grid": eval_size,
            "voxel_um": list(eval_spacing),
            "note": f"scores compare masks decoded on the dataset's {eval_size}³ evaluation grid at its "
            "frame times with the dataset's evaluation masks, whatever the output resolution and frames; "
            "chamfer and hausdorff95 are in µm",
        },
        "output_resolution": options.resolution,
        "mean": _means(everything),
        "sequences": per_sequence,
    }
    with atomic_path(out / "metrics.json") as tmp:
        tmp.write_text(json.dumps(metrics, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return metrics, items


def _scored(
    masks: Iterator[np.ndarray],
    dataset: Path,
    rows: np.ndarray,
    labels: list[dict],
    spacing: tuple[float, float, float],
    scores: list[dict],
) -> Iterator[np.ndarray]:
    """Pass masks through, appending to ``scores`` how each one agrees with its row's evaluation mask."""
    for mask, target, label in zip(masks, iter_eval_masks(dataset, rows), labels, strict=True):
        scores.append({**label, **reconstruction_metrics(mask, target, spacing)})
        yield mask


def _means(scores: list[dict]) -> dict[str, float | None]:
    """Mean of each metric over frames; distances skip frames where a mask is empty (recorded as None)."""
    means: dict[str, float | None] = {}
    for name in METRICS:
        values = [s[name] for s in scores if s[name] is not None]
        means[name] = float(np.mean(values)) if values else None
    return means


def training_dataset(
    model: TrainedModel,
    *,
    override: str | None = None,
    remake_in: str | Path | None = None,
    progress: bool = False,
) -> tuple[Path, PreparedDataset]:
    """Find and read the prepared dataset a model was trained on, checking that its sequences are the model's.

    A model trained on a simulated line records the recipe of its data; when the file it names is not on
    this machine (a shipped model, a run moved elsewhere), the data are made again from that recipe into
    ``remake_in`` (reused when already there), so reconstruction works anywhere.

    Parameters
    ----------
    model : TrainedModel
        Trained model; its training record names the file and the recipe.
    override : str, optional
        Another path to the dataset (``data.path=``).
    remake_in : str or Path, optional
        Folder for data made again from the recipe; None: ``cellsdf`` in the user's cache folder.
    progress : bool
        Progress bars while the data are made.

    Returns
    -------
    tuple
        The file and its contents.
    """
    ckpt = model.file
    stored = model.data.path
    recipe = model.data.recipe
    if override is not None:
        path = Path(override)
    elif model.parts is not None:
        # A composed model learned bodies but makes whole cells: it is scored against the whole cells, which
        # its recipe prepares in the same frame when the bodies are not cut out.
        if recipe is None:
            raise InputError(
                ckpt,
                "a body-and-protrusions model is scored against whole cells: pass data.path=<its masks "
                "prepared without body_radius>",
            )
        path = _remade({**recipe, "prepare": {**recipe["prepare"], "body_radius": None}}, remake_in, progress)
    elif stored is not None and Path(stored).is_file():
        path = Path(stored)
    elif recipe is not None:
        path = _remade(recipe, remake_in, progress)
    elif stored is None:
        raise InputError(ckpt, "the checkpoint names no training dataset; pass data.path=<prepared .h5>")
    else:
        path = Path(stored)
    if not path.is_file():
        raise InputError(
            path, "training dataset not found; pass data.path=<prepared .h5> to point to the model's data"
        )
    data = read_prepared(path)
    names = [s.name for s in data.sequences]
    expected = list(model.data.sequences or names)
    if names != expected or len(names) != len(model.latents):
        raise InputError(
            path, f"holds sequences {names[:4]}..., but the model {ckpt} was trained on {expected[:4]}..."
        )
    return path, data


def _remade(recipe: dict, folder: str | Path | None, progress: bool) -> Path:
    """Return the recipe's prepared file in ``folder`` (default: the user cache), made there when missing."""
    key = hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()[:16]
    if folder is None:
        folder = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "cellsdf" / "training_data"
    folder = Path(folder) / key
    prepared = folder / "dataset.h5"
    if not prepared.is_file():
        make_from_recipe(recipe, folder, overwrite=True, progress=progress)
    return prepared


def write_run_manifest(
    out: Path,
    command: str,
    config: dict,
    seed: int,
    items: list[dict],
    ckpt: Path,
    dataset: Path,
    **extra: object,
) -> Path:
    """Write the manifest of a ``reconstruct`` or ``fit`` run, naming the checkpoint and dataset with hashes.

    ``extra`` adds top-level manifest entries.
    """
    return write_manifest(
        out,
        command,
        config,
        seed,
        items,
        checkpoint=str(ckpt),
        checkpoint_sha256=file_sha256(ckpt),
        dataset=str(dataset),
        dataset_sha256=file_sha256(dataset),
        **extra,
    )


def summary(metrics: dict, out: Path) -> str:
    """Two lines for the console: the mean scores and where the files are."""
    shown = "   ".join(f"{k} {v:.3f}" for k, v in metrics["mean"].items() if v is not None)
    return (
        f"  mean over all frames ({metrics['scored_on']['grid']}³ evaluation grid): {shown}\n"
        f"wrote {len(metrics['sequences'])} sequence folder(s), metrics.json and manifest.json to {out}"
    )
