"""``cellsdf reconstruct``: a model's training sequences decoded to TIFFs and meshes, scored against the data.

The writing and scoring here is shared with ``cellsdf fit``, which decodes codes fitted to new sequences.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
import torch
from omegaconf import DictConfig, ListConfig, OmegaConf

from cellsdf.dataset.prepared import PreparedDataset, read_eval_masks, read_prepared
from cellsdf.decode.volumes import (
    FORMATS,
    MESH_FORMATS,
    MeshOptions,
    decode_masks,
    write_volumes,
)
from cellsdf.errors import InputError, check_whole
from cellsdf.evaluate.reconstruction import reconstruction_metrics
from cellsdf.geometry.grid import grid_spacing
from cellsdf.io.atomic import atomic_path, check_writable
from cellsdf.io.hashing import file_sha256
from cellsdf.io.manifest import write_manifest
from cellsdf.model.autodecoder import AutoDecoder
from cellsdf.model.checkpoint import load_autodecoder, resolve_checkpoint
from cellsdf.model.rotation import axis_angle_matrix
from cellsdf.model.siren import SirenDecoder
from cellsdf.progress import track

METRICS = ("iou", "dice", "chamfer", "hausdorff95")


@dataclass(frozen=True)
class SequenceCode:
    """What decodes one sequence of a prepared dataset.

    Attributes
    ----------
    name : str
        Sequence name (its output folder).
    index : int
        Index of the sequence in the prepared dataset whose frames and evaluation masks it is scored against.
    latent : torch.Tensor
        (L,) code.
    rotation : torch.Tensor or None
        (3,) axis-angle vector of the rotation the model applies to the coordinates; None for the identity.
    """

    name: str
    index: int
    latent: torch.Tensor
    rotation: torch.Tensor | None


@dataclass(frozen=True)
class OutputOptions:
    """How decoded sequences are written: grid side, frames, file types, progress bars."""

    resolution: int = 64
    frames: int | None = None
    formats: tuple[str, ...] = ("tiff", "mesh")
    mesh: MeshOptions = MeshOptions()
    progress: bool = False


def output_options(cfg: DictConfig) -> OutputOptions:
    """Check and collect the output settings shared by ``reconstruct`` and ``fit``."""
    check_whole(cfg.resolution, "resolution", 8)
    if cfg.frames is not None and (not isinstance(cfg.frames, int) or cfg.frames < 1):
        raise InputError(
            "frames", f"must be null (the data's frame times) or an integer >= 1, got {cfg.frames!r}"
        )
    formats = _names(cfg.formats)
    unknown = sorted(set(formats) - set(FORMATS))
    if unknown or not formats:
        raise InputError("formats", f"choose one or more of {', '.join(FORMATS)}, got {formats}")
    if cfg.mesh_format not in MESH_FORMATS:
        raise InputError("mesh_format", f"choose one of {', '.join(MESH_FORMATS)}, got {cfg.mesh_format!r}")
    return OutputOptions(
        cfg.resolution, cfg.frames, tuple(formats), MeshOptions(format=cfg.mesh_format), bool(cfg.progress)
    )


def select_device(name: str) -> torch.device:
    """Return the torch device for ``device=auto|cpu|cuda[:i]``; auto takes CUDA when there is one."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError as err:
        raise InputError("device", f"unknown device {name!r} ({err})") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise InputError("device", "CUDA was asked for but is not available; use device=cpu or device=auto")
    return device


def check_out_folder(out: str | Path, overwrite: bool) -> Path:
    """Refuse an output folder that already holds files, unless ``overwrite``; refuse a file."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise InputError(out, "is a file; out must name a folder")
    if out.is_dir() and any(out.iterdir()):
        check_writable(out, overwrite)
    return out


def load_model(ckpt: str, device: torch.device) -> tuple[AutoDecoder, Path]:
    """Load the auto-decoder of a checkpoint or built-in name onto ``device``; return it and its file."""
    path = resolve_checkpoint(ckpt)
    return load_autodecoder(path).to(device), path


def output_times(frames: int | None, data_times: np.ndarray) -> np.ndarray:
    """Return the times to decode: the data's frame times (``frames`` None) or ``frames`` evenly spaced."""
    if frames is None:
        return np.asarray(data_times, np.float64)
    return np.linspace(-1.0, 1.0, frames) if frames > 1 else np.zeros(1)


def write_and_score(
    decoder: SirenDecoder,
    codes: Sequence[SequenceCode],
    dataset: Path,
    out: Path,
    options: OutputOptions,
    data: PreparedDataset | None = None,
) -> tuple[dict, list[dict]]:
    """Decode sequences into ``out/<name>/`` and score them against the evaluation masks of ``dataset``.

    Every sequence is decoded at ``options.resolution`` at its output times and written one frame at a time
    (:func:`cellsdf.decode.volumes.write_volumes`). Scores are always taken on the dataset's own evaluation
    grid (E³ over [-1, 1]³) at the dataset's frame times, so they compare like with like whatever the output
    resolution and frame count; when the two grids and times agree, the written masks are scored directly.

    Parameters
    ----------
    decoder : SirenDecoder
        Trained decoder.
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
    numbers = _frame_numbers(dataset)
    eval_size = int(json.loads(data.attrs["config"])["eval_size"])
    eval_spacing = grid_spacing(eval_size, data.scale)
    spacing = grid_spacing(options.resolution, data.scale)
    per_sequence, items = {}, []
    for code in codes:
        rows = np.flatnonzero(data.frame_sequence == code.index)
        times = output_times(options.frames, data.frame_t[rows])
        rotation = None if code.rotation is None else axis_angle_matrix(code.rotation.detach().float())
        info = data.sequences[code.index]
        span = float(numbers[rows[-1]] - numbers[rows[0]]) * info.frame_interval
        interval = span / (len(times) - 1) if len(times) > 1 and span > 0 else info.frame_interval
        labels = [
            {"frame": k, "frame_number": int(numbers[row]), "t": float(data.frame_t[row])}
            for k, row in enumerate(rows)
        ]
        scores: list[dict] = []
        same_grid = options.frames is None and options.resolution == eval_size
        masks = decode_masks(decoder, code.latent, times, options.resolution, rotation)
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
            options.formats,
            options.mesh,
        )
        if not same_grid:
            eval_masks = decode_masks(decoder, code.latent, data.frame_t[rows], eval_size, rotation)
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
    for mask, row, label in zip(masks, rows, labels, strict=True):
        (target,) = read_eval_masks(dataset, np.array([row]))
        scores.append({**label, **reconstruction_metrics(mask, target, spacing)})
        yield mask


def _means(scores: list[dict]) -> dict[str, float | None]:
    """Mean of each metric over frames; distances skip frames where a mask is empty (recorded as None)."""
    means: dict[str, float | None] = {}
    for name in METRICS:
        values = [s[name] for s in scores if s[name] is not None]
        means[name] = float(np.mean(values)) if values else None
    return means


def _frame_numbers(dataset: Path) -> np.ndarray:
    """Frame number of every row of a prepared dataset (times alone do not give the frames' spacing)."""
    with h5py.File(dataset, "r") as f:
        return f["frame_number"][()]


def _names(value: object) -> list[str]:
    if isinstance(value, ListConfig):
        return [str(v) for v in OmegaConf.to_container(value)]
    return [str(value)]


def training_dataset(model: AutoDecoder, ckpt: Path, override: str | None) -> tuple[Path, PreparedDataset]:
    """Find and read the prepared dataset a model was trained on, checking that its sequences are the model's.

    Parameters
    ----------
    model : AutoDecoder
        Trained model; its ``dataset`` hyper-parameter names the file.
    ckpt : Path
        The checkpoint file (named in errors).
    override : str, optional
        Another path to the dataset (``data.path=``).

    Returns
    -------
    tuple
        The file and its contents.
    """
    trained_on = model.hparams.get("dataset") or {}
    stored = trained_on.get("path")
    if override is None and stored is None:
        raise InputError(ckpt, "the checkpoint names no training dataset; pass data.path=<prepared .h5>")
    path = Path(override if override is not None else stored)
    if not path.is_file():
        raise InputError(
            path, "training dataset not found; pass data.path=<prepared .h5> to point to the model's data"
        )
    data = read_prepared(path)
    names = [s.name for s in data.sequences]
    expected = list(trained_on.get("sequences") or names)
    if names != expected or len(names) != model.latents.num_embeddings:
        raise InputError(
            path, f"holds sequences {names[:4]}..., but the model {ckpt} was trained on {expected[:4]}..."
        )
    return path, data


def run(cfg: DictConfig) -> dict:
    """Reconstruct as configured in ``conf/reconstruct.yaml``; return the output folder and metrics."""
    if cfg.ckpt is None or cfg.out is None:
        raise InputError("reconstruct", "needs ckpt=<model file or plat|cele|filo> and out=<folder>")
    options = output_options(cfg)
    model, ckpt = load_model(cfg.ckpt, select_device(cfg.device))
    dataset, data = training_dataset(model, ckpt, cfg.data.path)
    out = check_out_folder(cfg.out, cfg.overwrite)
    names = [s.name for s in data.sequences]
    chosen = names if cfg.sequences is None else _names(cfg.sequences)
    unknown = [n for n in chosen if n not in names]
    if unknown:
        shown = ", ".join(names[:10]) + (" ..." if len(names) > 10 else "")
        raise InputError("sequences", f"unknown sequence(s) {', '.join(unknown)}; the model has {shown}")
    codes = [
        SequenceCode(
            name,
            names.index(name),
            model.latents.weight[names.index(name)].detach(),
            None if model.rotations is None else model.rotations.weight[names.index(name)].detach(),
        )
        for name in chosen
    ]
    metrics, items = write_and_score(model.decoder, codes, dataset, out, options, data)
    finish(out, "reconstruct", cfg, items, metrics, ckpt, dataset)
    return {"out": out, "metrics": metrics}


def finish(
    out: Path,
    command: str,
    cfg: DictConfig,
    items: list[dict],
    metrics: dict,
    ckpt: Path,
    dataset: Path,
    **extra: object,
) -> None:
    """Write the manifest (naming the checkpoint and dataset with their hashes) and print the summary.

    ``reconstruct`` and ``fit`` both end this way; ``extra`` adds top-level manifest entries.
    """
    write_manifest(
        out,
        command,
        OmegaConf.to_container(cfg, resolve=True),
        cfg.seed,
        items,
        checkpoint=str(ckpt),
        checkpoint_sha256=file_sha256(ckpt),
        dataset=str(dataset),
        dataset_sha256=file_sha256(dataset),
        **extra,
    )
    shown = "   ".join(f"{k} {v:.3f}" for k, v in metrics["mean"].items() if v is not None)
    print(f"  mean over all frames ({metrics['scored_on']['grid']}³ evaluation grid): {shown}")
    print(f"wrote {len(metrics['sequences'])} sequence folder(s), metrics.json and manifest.json to {out}")
