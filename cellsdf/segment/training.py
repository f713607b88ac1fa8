"""Training the segmenter on annotated frames, and its model file."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytorch_lightning as pl
import torch
from pytorch_lightning.loggers import CSVLogger
from torch.utils.data import DataLoader

from cellsdf.errors import InputError
from cellsdf.io.atomic import atomic_path
from cellsdf.model.checkpoint import load_plain
from cellsdf.model.precision import training_precision
from cellsdf.model.progress import progress_bar
from cellsdf.segment.module import Segmenter
from cellsdf.segment.network import plan_unet
from cellsdf.segment.options import TrainingOptions
from cellsdf.segment.patches import PatchDataset
from cellsdf.segment.sets import Annotated

FORMAT = "cellsdf-segmenter"


def patch_shape(frames: Sequence[Annotated], side: int) -> tuple[int, ...]:
    """Choose the training patch of a set of frames.

    It is ``side`` along every axis, or the smallest frame's extent where that is less, rounded up to what the
    U-Net's strides divide (a coarse axis, the z of a confocal stack, is thus taken whole).

    Examples
    --------
    >>> frame = Annotated(np.zeros((5, 300, 200)), np.zeros((5, 300, 200), int), "a", (1.0, 0.2, 0.2))
    >>> patch_shape([frame], 128)
    (5, 128, 128)
    """
    spacing = frames[0].spacing
    smallest = np.min([f.image.shape for f in frames], axis=0)
    patch = tuple(int(min(side, n)) for n in smallest)
    plan = plan_unet(patch, spacing)
    return tuple(-(-p // d) * d for p, d in zip(patch, plan.divisor, strict=True))


def train_segmenter(
    sets: Sequence[Sequence[Annotated]],
    *,
    options: TrainingOptions,
    out: str | Path,
    progress: bool = False,
) -> Segmenter:
    """Train a :class:`~cellsdf.segment.module.Segmenter` on annotated frames; log losses to ``out/logs``.

    Parameters
    ----------
    sets : sequence of sequences of Annotated
        Training sets, each drawn equally often; frames all 2D or all 3D, the first one's voxel size plans
        the U-Net.
    options : TrainingOptions
        Steps, batch, patch, width, learning rate, seed, precision, accelerator.
    out : str or Path
        Run folder (``logs/metrics.csv``).
    progress : bool
        A progress bar.

    Returns
    -------
    Segmenter
        The trained module, on the CPU.

    Raises
    ------
    InputError
        If no frame holds a labelled cell.
    """
    frames = [frame for group in sets for frame in group]
    if not any(f.labels.any() for f in frames):
        raise InputError(frames[0].source if frames else "train", "no training frame holds a labelled cell")
    patch = patch_shape(frames, options.patch)
    plan = plan_unet(patch, frames[0].spacing)
    pl.seed_everything(options.seed, workers=True, verbose=False)
    model = Segmenter(
        kernels=[list(k) for k in plan.kernels],
        strides=[list(s) for s in plan.strides],
        patch=list(patch),
        width=options.width,
        lr=options.lr,
        steps=options.steps,
    )
    dataset = PatchDataset(
        [f.image for f in frames],
        [f.labels for f in frames],
        [f.spacing for f in frames],
        [k for k, group in enumerate(sets) for _ in group],
        patch=patch,
        length=options.steps * options.batch,
        seed=options.seed,
    )
    trainer = pl.Trainer(
        accelerator=options.accelerator,
        devices=1,
        max_steps=options.steps,
        max_epochs=-1,
        precision=_precision(options, dims=len(patch)),
        default_root_dir=str(out),
        logger=CSVLogger(out, name="logs", version=""),
        log_every_n_steps=10,
        callbacks=[progress_bar()] if progress else [],
        enable_progress_bar=progress,
        enable_model_summary=False,
        enable_checkpointing=False,
    )
    loader = DataLoader(dataset, batch_size=options.batch, shuffle=False, num_workers=0)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", ".*does not have many workers.*")
        trainer.fit(model, loader)
    return model.cpu()


def _precision(options: TrainingOptions, *, dims: int) -> str:
    """Lightning precision of a training: ``auto`` is bf16-mixed where it is fast, but 32-true for 3D on CPUs.

    bf16 autocast of 3D convolutions on the CPU corrupts the heap in torch 2.13 (``free(): invalid next
    size``, then abort), whatever the kernel shape; 2D ones run 2x faster with it.
    """
    if options.precision == "auto" and dims == 3 and options.accelerator == "cpu":
        return "32-true"
    return training_precision(options.precision, options.accelerator)


def save_segmenter(model: Segmenter, path: str | Path, **facts: object) -> Path:
    """Write the segmenter's weights and hyper-parameters (plain data, loadable with ``weights_only``).

    Parameters
    ----------
    model : Segmenter
        The trained module.
    path : str or Path
        The ``model.pt`` to write (atomically).
    **facts
        Plain values kept beside them (the training sets, voxel size, seed).

    Returns
    -------
    Path
        ``path``.
    """
    path = Path(path)
    content = {
        "format": FORMAT,
        "hyper_parameters": dict(model.hparams),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "facts": facts,
    }
    with atomic_path(path) as tmp:
        torch.save(content, tmp)
    return path


def load_segmenter(path: str | Path) -> Segmenter:
    """Read a segmenter written by :func:`save_segmenter`.

    Raises
    ------
    InputError
        Naming the file when it is missing, unreadable, or not a segmenter model.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "model file not found")
    content = load_plain(path, what="segmenter model")
    if not isinstance(content, dict) or content.get("format") != FORMAT:
        raise InputError(path, "is not a cellsdf segment model (cellsdf segment writes model.pt)")
    try:
        _check_hyper_parameters(content["hyper_parameters"])
        model = Segmenter(**content["hyper_parameters"])
        model.load_state_dict(content["state_dict"])
    except (KeyError, TypeError, ValueError, RuntimeError) as err:
        raise InputError(path, f"holds a segmenter that cannot be built ({err})") from None
    return model.eval()


def _check_hyper_parameters(hp: dict) -> None:
    """Refuse a network that ``segment`` could not have built (a model file is input, sizes included)."""
    levels = hp["strides"]
    sizes = [*hp["kernels"], *levels, hp["patch"]]
    if not (
        isinstance(hp["width"], int)
        and 1 <= hp["width"] <= 256
        and 1 <= len(levels) <= 8
        and len(hp["kernels"]) == len(levels)
        and all(isinstance(v, int) and 1 <= v <= 1024 for row in sizes for v in row)
        and len({len(row) for row in sizes}) == 1
        and len(hp["patch"]) in (2, 3)
    ):
        raise ValueError("network sizes out of range")
