"""Fitting codes, rotations, scales and positions of a trained model's cells to sequences it has not seen."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

from cellsdf.dataset.prepare import prepare_source
from cellsdf.dataset.prepared import PreparedDataset, is_prepared, iter_eval_masks, read_index, read_prepared
from cellsdf.errors import InputError
from cellsdf.geometry.grid import grid_step
from cellsdf.io.atomic import atomic_path
from cellsdf.model.fitting import FittedCodes, fit_codes
from cellsdf.model.trained import TrainedModel
from cellsdf.reconstruct.outputs import SequenceCode

# The model's typical cell: its training codes decoded on a coarse grid at the start, middle and end.
_VOLUME_RESOLUTION = 32
_VOLUME_TIMES = (-1.0, 0.0, 1.0)


def fitting_data(
    model: TrainedModel,
    source: str | Path,
    out: Path,
    *,
    prepare: dict,
    seed: int,
    own_units: bool = True,
    progress: bool = False,
) -> tuple[Path, PreparedDataset]:
    """Return the prepared dataset to fit, preparing masks into ``out/dataset.h5`` first.

    Parameters
    ----------
    model : TrainedModel
        The trained model; without ``own_units`` its data's scale (normalised units per µm) fixes the units
        of the new data.
    source : str or Path
        Masks as ``cellsdf prepare`` reads them, or a prepared dataset.
    out : Path
        Output folder (already checked by the caller: the prepared file is overwritten).
    prepare : dict
        Preparation settings (``conf/prepare/default.yaml``; ``margin`` is unused without ``own_units``).
    seed : int
        Sampling seed.
    own_units : bool
        Prepare the masks in their own units, fitted into [-1, 1]³ as ``cellsdf prepare`` does (any cell
        size works; a prepared dataset at any scale is taken as it is); otherwise at the model's scale,
        where a cell too large for the model's cube is refused.
    progress : bool
        Progress bars.

    Returns
    -------
    tuple
        The prepared file and its contents.
    """
    model.require_whole_cells("fit")
    source = Path(source)
    if own_units:
        if is_prepared(source):
            return source, read_prepared(source)
        prepared = prepare_source(
            source, out / "dataset.h5", **prepare, seed=seed, overwrite=True, progress=progress
        )
        return prepared, read_prepared(prepared)
    scale = model.data.scale
    if scale is None:
        raise InputError(
            model.file, "records no scale of its training data, so new data cannot share its units"
        )
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


def expected_scale(model: TrainedModel, data: PreparedDataset) -> float | None:
    """Scale at which the model's cells keep their trained size in µm: data units per µm over the model's.

    None when the checkpoint does not record its training data's scale.
    """
    return None if model.data.scale is None else data.scale / model.data.scale


def model_volume(model: TrainedModel) -> float:
    """Mean volume of the model's training cells in model units³ (codes decoded at 32³, t = −1, 0 and 1).

    Raises
    ------
    InputError
        If every code decodes empty.
    """
    step = grid_step(_VOLUME_RESOLUTION)
    voxels = [
        np.count_nonzero(mask)
        for latent in model.latents
        for mask in model.decode_masks(latent, _VOLUME_TIMES, resolution=_VOLUME_RESOLUTION)[0]
    ]
    if not any(voxels):
        # Nothing to scale masks to: the starting scale would divide by zero.
        raise InputError(
            model.file,
            "its learned codes decode to no cell at all, so scale=fit has no cell size to start from; "
            "the model is unusable (use another checkpoint)",
        )
    return float(np.mean(voxels)) * step**3


def starting_placements(
    model: TrainedModel, dataset: Path, data: PreparedDataset
) -> tuple[np.ndarray, np.ndarray]:
    """Measure every sequence's starting scale and translation on its evaluation masks.

    The scale is the cube root of the sequence's mean volume over the model's typical cell volume
    (:func:`model_volume`), so a cell starts at its own size whatever its units; the translation is the
    centroid of the sequence's voxels over all its frames (data units).

    Parameters
    ----------
    model : TrainedModel
        The trained model.
    dataset : Path
        The prepared file (its evaluation masks are read one at a time).
    data : PreparedDataset
        Its contents.

    Returns
    -------
    tuple of np.ndarray
        (S,) scales and (S, 3) translations (z, y, x).
    """
    step = grid_step(read_index(dataset).eval_size)
    typical = model_volume(model)
    scales, translations = np.ones(len(data.sequences)), np.zeros((len(data.sequences), 3))
    for index in range(len(data.sequences)):
        rows = np.flatnonzero(data.frame_sequence == index)
        voxels = [np.argwhere(mask) for mask in iter_eval_masks(dataset, rows)]
        counts = [len(v) for v in voxels]
        # A cell smaller than one evaluation voxel still gets a finite start.
        scales[index] = (max(float(np.mean(counts)), 1.0) * step**3 / typical) ** (1.0 / 3.0)
        if sum(counts):
            translations[index] = np.concatenate(voxels).mean(axis=0) * step - 1.0
    return scales, translations


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
    placement: tuple[np.ndarray, np.ndarray] | None = None,
    scale_prior: float = 0.0,
    progress: bool = False,
) -> tuple[list[SequenceCode], FittedCodes]:
    """Fit one code (and rotation, scale and translation) per sequence of ``data``, all in one optimisation.

    Parameters
    ----------
    model : TrainedModel
        The trained model (its decoder stays frozen).
    data : PreparedDataset
        The sequences.
    iterations, lr, points_per_step
        Adam steps, learning rate, and samples per sequence per step.
    code_reg : float or None
        Weight of the latent prior; None: the model's training value.
    rotation : bool
        Fit a rotation per sequence too.
    seed : int
        Sequence ``i`` draws from ``SeedSequence([seed, i])``.
    placement : tuple of np.ndarray, optional
        (S,) starting scales and (S, 3) starting translations (:func:`starting_placements`); both are
        fitted. None keeps every cell at the data's scale and origin (data prepared at the model's scale).
    scale_prior : float
        Weight of the log-normal prior on the scale around :func:`expected_scale` (0: none).
    progress : bool
        Show a progress bar over the steps.

    Returns
    -------
    tuple
        The fitted codes (to decode in the data's frame) and everything fitted.
    """
    if iterations < 1 or points_per_step < 1:
        raise InputError("fit", "iterations and points_per_step must be >= 1")
    expected = expected_scale(model, data)
    if placement is not None and scale_prior > 0 and expected is None:
        raise InputError(
            "scale_prior", f"{model.file} records no scale of its training data; set scale_prior=0"
        )
    frames, n = data.sdf.shape
    points = np.concatenate(
        [data.points, np.broadcast_to(data.frame_t[:, None, None], (frames, n, 1))], axis=-1
    )
    count = len(data.sequences)
    fitted = fit_codes(
        model.decoder,
        torch.from_numpy(points.reshape(-1, 4)),
        torch.from_numpy(data.sdf.reshape(-1)),
        torch.from_numpy(np.repeat(data.frame_sequence, n)),
        seeds=[int(np.random.SeedSequence([seed, i]).generate_state(1)[0]) for i in range(count)],
        iterations=iterations,
        lr=lr,
        code_reg=model.code_reg if code_reg is None else code_reg,
        clamp=model.clamp,
        rotation=rotation,
        placement=placement is not None,
        scales=None if placement is None else torch.from_numpy(placement[0]),
        translations=None if placement is None else torch.from_numpy(placement[1]),
        expected_scales=None if expected is None else torch.full((count,), expected, dtype=torch.float64),
        scale_prior=scale_prior,
        points_per_step=points_per_step,
        latent_std=model.latent_std,
        progress=progress,
    )
    codes = [
        SequenceCode(
            info.name,
            i,
            fitted.latents[i],
            fitted.rotations[i] if rotation else None,
            float(fitted.scales[i]),
            None if placement is None else fitted.translations[i],
        )
        for i, info in enumerate(data.sequences)
    ]
    return codes, fitted


def fit_items(model: TrainedModel, data: PreparedDataset, fitted: FittedCodes) -> list[dict]:
    """Per-sequence manifest entries of a fit: final loss, rotation angle, scale and translation.

    ``fitted_scale`` is the cell's size relative to the model's cells in µm (1: the trained size; None when
    the checkpoint does not record its data's scale); ``scale`` and ``translation`` place the model's cube
    in the dataset's normalised units.
    """
    expected = expected_scale(model, data)
    return [
        {
            "final_loss": float(fitted.losses[i, -1]),
            "rotation_deg": math.degrees(float(fitted.rotations[i].norm())),
            "fitted_scale": None if expected is None else float(fitted.scales[i]) / expected,
            "scale": float(fitted.scales[i]),
            "translation": fitted.translations[i].tolist(),
        }
        for i in range(len(data.sequences))
    ]


def fit_summary(items: list[dict], seconds: float) -> str:
    """One console line: how many sequences, how long, and their sizes relative to the model's cells."""
    sizes = [item["fitted_scale"] for item in items if item["fitted_scale"] is not None]
    line = f"fitted {len(items)} sequence(s) in {seconds:.0f} s"
    if sizes:
        line += (
            f"; size relative to the model's cells {min(sizes):.2f}–{max(sizes):.2f} "
            f"(median {float(np.median(sizes)):.2f})"
        )
    return line


def write_latents(path: Path, names: list[str], fitted: FittedCodes) -> Path:
    """Save names, codes (S, L), rotation vectors (S, 3), scales (S,), translations (S, 3) and losses."""
    with atomic_path(path) as tmp:
        np.savez(
            tmp,
            names=np.array(names),
            latents=fitted.latents.numpy(),
            rotations=fitted.rotations.numpy(),
            scales=fitted.scales.numpy(),
            translations=fitted.translations.numpy(),
            losses=fitted.losses,
        )
    return path
