"""Scoring lift against known 3D truth: held-out simulated cells seen through 1 to 8 views, with baselines.

A truth cell is frame ``frame`` of the simulated sequence ``sequence_rng(seed, index)`` (the shipped models
were trained on seed 0, so any other seed gives cells they never saw), moved so that its bounding box is
centred on the grid, as a cell crop is. Its views are :func:`cellsdf.lift.views.spiral_rotations`; the
masks are its projections (:func:`cellsdf.lift.render.project_volume`). Every method's volume lies on the
same grid and is scored with :func:`cellsdf.lift.metrics.lift_metrics`.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import islice

import numpy as np
import torch
from scipy import ndimage

from cellsdf.lift.baselines import ellipsoid_baseline, extrusion_baseline
from cellsdf.lift.field import FieldOptions, fit_field
from cellsdf.lift.latent import FitOptions, depth_observable, fit_hypotheses, model_scale
from cellsdf.lift.metrics import LIFT_METRICS, lift_metrics, mean_gaussian_curvature
from cellsdf.lift.refine import RefineOptions, refine_hypothesis
from cellsdf.lift.render import project_volume, visual_hull
from cellsdf.lift.settings import EvalSettings
from cellsdf.lift.views import View, spiral_rotations
from cellsdf.model.trained import load_trained
from cellsdf.simulate import sequence_rng, simulate_frames


def truth_cell(cell_line: str, seed: int, index: int, settings: EvalSettings) -> np.ndarray:
    """Simulate a held-out cell, centred on the grid by its bounding box (bool (N, N, N))."""
    frames, _, _ = simulate_frames(cell_line, settings.frames, settings.size, sequence_rng(seed, index))
    mask = next(islice(frames, min(settings.frame, settings.frames - 1), None))
    (box,) = ndimage.find_objects(mask.view(np.uint8))
    shift = [round((settings.size - 1) / 2 - (s.start + s.stop - 1) / 2) for s in box]
    return np.roll(mask, shift, axis=(0, 1, 2))


def evaluate_cell(
    cell_line: str,
    seed: int,
    index: int,
    settings: EvalSettings,
    *,
    ckpt: str | None = None,
    pixel_size: float | None = None,
) -> dict:
    """Score every method on one held-out cell for every view count.

    Parameters
    ----------
    cell_line : str
        Simulated line; also the built-in model used unless ``ckpt`` names another.
    seed, index : int
        The cell is sequence ``sequence_rng(seed, index)``.
    settings : EvalSettings
        Grid, views, hypotheses, steps.
    ckpt : str, optional
        Model to lift with; default the built-in model of ``cell_line``.
    pixel_size : float, optional
        µm per voxel of the truth's grid, when latent mode may use it: its fits then keep the model's
        trained cell size (:func:`cellsdf.lift.latent.expected_scale`). None fits the scale freely.

    Returns
    -------
    dict
        ``cell`` (seed, index) and ``scores[views][method]`` = metrics, for methods ``ellipsoid``,
        ``extrusion`` (1 view only), ``latent_best``, ``latent_mean`` (mean over hypotheses),
        ``latent_refined`` (the best one with its decoder fine-tuned; 2 views on), ``hull`` (the views'
        visual hull; 2 views on) and ``field``.
    """
    truth = truth_cell(cell_line, seed, index, settings)
    curvature = mean_gaussian_curvature(truth)
    model = load_trained(ckpt or cell_line)
    clamp = model.clamp
    scale = None if pixel_size is None else model_scale(model, pixel_size, settings.size)
    scores: dict[str, dict[str, dict[str, float]]] = {}
    for count in settings.views:
        rotations = spiral_rotations(count)
        views = [View(project_volume(truth, r), r, f"view {k + 1}") for k, r in enumerate(rotations)]
        row: dict[str, dict[str, float]] = {}
        if count == 1:
            row["ellipsoid"] = lift_metrics(
                ellipsoid_baseline(views[0].mask), truth, truth_curvature=curvature
            )
            row["extrusion"] = lift_metrics(
                extrusion_baseline(views[0].mask), truth, truth_curvature=curvature
            )
        rays = max(32, settings.rays // count)
        if "latent" in settings.modes:
            options = FitOptions(steps=settings.latent_steps, rays=rays, scale=scale)
            fitted = fit_hypotheses(model, views, hypotheses=settings.hypotheses, options=options, seed=seed)
            each = [
                lift_metrics(
                    h.decode(model.decoder, np.eye(3), settings.size, clamp), truth, truth_curvature=curvature
                )
                for h in fitted
            ]
            row["latent_best"] = each[0]
            row["latent_mean"] = {name: float(np.nanmean([e[name] for e in each])) for name in LIFT_METRICS}
            if settings.refine_steps and depth_observable(views):
                refine = RefineOptions(steps=settings.refine_steps, clamp=clamp)
                refined = refine_hypothesis(model.decoder, fitted[0], views, options=refine, seed=seed)
                volume = refined.decode(model.decoder, np.eye(3), settings.size, clamp)
                row["latent_refined"] = lift_metrics(volume, truth, truth_curvature=curvature)
        if count >= 2:  # the largest shape the views allow: what silhouettes alone can reach
            row["hull"] = lift_metrics(visual_hull(views, settings.size), truth, truth_curvature=curvature)
        if "field" in settings.modes and count >= 2:
            field = fit_field(
                views, options=FieldOptions(steps=settings.field_steps, rays=max(32, rays // 4)), seed=seed
            )
            row["field"] = lift_metrics(
                field.decode(np.eye(3), settings.size), truth, truth_curvature=curvature
            )
        scores[str(count)] = row
    return {"cell": [seed, index], "scores": scores}


def summarise(cells: Sequence[dict]) -> dict:
    """Mean of each metric over cells, per view count and method: ``{views: {method: {metric: mean}}}``."""
    out: dict[str, dict[str, dict[str, float]]] = {}
    for views in cells[0]["scores"]:
        out[views] = {}
        for method in cells[0]["scores"][views]:
            values = [c["scores"][views][method] for c in cells]
            out[views][method] = {m: float(np.nanmean([v[m] for v in values])) for m in LIFT_METRICS}
    return out


def evaluate_job(job: tuple) -> dict:
    """Run :func:`evaluate_cell` on ``(cell_line, seed, index, settings, ckpt, pixel_size)``, one thread.

    Jobs run side by side in worker processes, one per core; more threads would only wait for each other.
    """
    torch.set_num_threads(1)
    cell_line, seed, index, settings, ckpt, pixel_size = job
    return evaluate_cell(cell_line, seed, index, settings, ckpt=ckpt, pixel_size=pixel_size)
