"""Fitting codes (and rotations) of a trained model to sequences it has not seen."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

from cellsdf.dataset.prepare import prepare_source
from cellsdf.dataset.prepared import PreparedDataset, is_prepared, read_prepared
from cellsdf.errors import InputError
from cellsdf.io.atomic import atomic_path
from cellsdf.model.fitting import fit_latent
from cellsdf.model.trained import TrainedModel
from cellsdf.progress import track
from cellsdf.reconstruct.outputs import SequenceCode


def fitting_data(
    model: TrainedModel, source: str | Path, out: Path, *, prepare: dict, seed: int, progress: bool = False
) -> tuple[Path, PreparedDataset]:
    """Return the prepared dataset to fit, preparing masks into ``out/dataset.h5`` at the model's scale.

    Parameters
    ----------
    model : TrainedModel
        The trained model; its data's scale (normalised units per µm) fixes the units of the new data.
    source : str or Path
        Masks as ``cellsdf prepare`` reads them, or a dataset prepared at the model's scale.
    out : Path
        Output folder (already checked by the caller: the prepared file is overwritten).
    prepare : dict
        Preparation settings (``conf/prepare/default.yaml``; ``margin`` is unused, the scale is the model's).
    seed : int
        Sampling seed.
    progress : bool
        Progress bars.

    Returns
    -------
    tuple
        The prepared file and its contents.
    """
    scale = model.data.scale
    if scale is None:
        raise InputError(
            model.file, "records no scale of its training data, so new data cannot share its units"
        )
    source = Path(source)
    if is_prepared(source):
        data = read_prepared(source)
        if not math.isclose(data.scale, scale, rel_tol=1e-6):
            raise InputError(
                source,
                f"was prepared at {data.scale:.6g} normalised units per µm, the model's data at {scale:.6g}; "
                "pass the masks themselves (TIFF or folder) so that they are prepared at the model's scale",
            )
        return source, data
    steps = {k: v for k, v in prepare.items() if k != "margin"}
    prepared = prepare_source(
        source,
        out / "dataset.h5",
        **steps,
        seed=seed,
        overwrite=True,
        progress=progress,
        report=True,
        scale=scale,
    )
    return prepared, read_prepared(prepared)


def fit_sequences(
    model: TrainedModel,
    data: PreparedDataset,
    *,
    iterations: int,
    lr: float,
    code_reg: float | None,
    rotation: bool,
    points_per_step: int,
    seed: int,
    progress: bool = False,
) -> tuple[list[SequenceCode], list[np.ndarray]]:
    """Fit one code (and rotation) per sequence of ``data`` with the model's decoder frozen.

    Parameters
    ----------
    model : TrainedModel
        The trained model.
    data : PreparedDataset
        Sequences prepared at the model's scale.
    iterations, lr, points_per_step
        Adam steps, learning rate and samples per step.
    code_reg : float or None
        Weight of the latent prior; None: the model's training value.
    rotation : bool
        Fit a rotation per sequence too.
    seed : int
        Sequence ``i`` draws from ``SeedSequence([seed, i])``.
    progress : bool
        Show a progress bar over sequences.

    Returns
    -------
    tuple
        The fitted codes and each sequence's loss history.
    """
    if iterations < 1 or points_per_step < 1:
        raise InputError("fit", "iterations and points_per_step must be >= 1")
    codes, losses = [], []
    for index, info in enumerate(track(data.sequences, "fitting", show=progress)):
        rows = np.flatnonzero(data.frame_sequence == index)
        latent, turn, history = fit_latent(
            model.decoder,
            torch.from_numpy(data.points[rows]),
            torch.from_numpy(data.frame_t[rows]),
            torch.from_numpy(data.sdf[rows]),
            iterations=iterations,
            lr=lr,
            code_reg=model.code_reg if code_reg is None else code_reg,
            clamp=model.clamp,
            rotation=rotation,
            points_per_step=points_per_step,
            seed=int(np.random.SeedSequence([seed, index]).generate_state(1)[0]),
            latent_std=model.latent_std,
        )
        codes.append(SequenceCode(info.name, index, latent, turn if rotation else None))
        losses.append(history)
    return codes, losses


def write_latents(path: Path, codes: list[SequenceCode], losses: list[np.ndarray]) -> Path:
    """Save names, codes (S, L), rotation vectors (S, 3) and loss histories (S, iterations) atomically."""
    rotations = [torch.zeros(3) if c.rotation is None else c.rotation for c in codes]
    with atomic_path(path) as tmp:
        np.savez(
            tmp,
            names=np.array([c.name for c in codes]),
            latents=torch.stack([c.latent for c in codes]).numpy(),
            rotations=torch.stack(rotations).numpy(),
            losses=np.stack(losses),
        )
    return path
