"""Fine-tuning a fitted hypothesis' decoder on its views: the shape prior as a start, the views as the data.

After a latent fit the shape is the nearest one the learned space holds; details the space cannot express
(a held-out cell's own protrusions) are missing. Fine-tuning a copy of the decoder with the code, pose and
time fixed (test-time optimisation, as neural fields with a learned prior do, e.g. DeCAF) lets the views add
them, while what no view constrains keeps the prior's shape instead of the visual hull's. Two terms: the
silhouette loss of :mod:`cellsdf.lift.rays`, and a penalty on any point outside the views' visual hull that
the field puts inside the cell, so the fine-tuned field itself stays within the hull.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from cellsdf.geometry.grid import cube_grid, grid_step
from cellsdf.geometry.rotation import axis_angle_matrix
from cellsdf.lift.latent import Hypothesis, depth_observable, score_hypothesis
from cellsdf.lift.rays import RaySampler, ray_minimum, silhouette_loss
from cellsdf.lift.render import visual_hull
from cellsdf.lift.views import View
from cellsdf.model.placement import model_points, placed_sdf
from cellsdf.model.siren import SirenDecoder
from cellsdf.progress import track


@dataclass(frozen=True)
class RefineOptions:
    """How a hypothesis' decoder is fine-tuned.

    Attributes
    ----------
    steps : int
        Adam steps.
    lr : float
        Learning rate of the decoder's weights (cosine decay to zero).
    rays : int
        Rays per view per step.
    depth : int
        Samples per ray.
    tau : float
        Temperature of the soft silhouette, pixels.
    outside : int
        Points outside the visual hull per step.
    hull_weight : float
        Weight of the outside-the-hull penalty (mean depth inside the cell, in pixels).
    clamp : float
        The model's training loss clamp (model units).
    """

    steps: int = 300
    lr: float = 1e-5
    rays: int = 64
    depth: int = 16
    tau: float = 1.0
    outside: int = 2048
    hull_weight: float = 10.0
    clamp: float = 0.1


def refine_hypothesis(
    decoder: SirenDecoder,
    hypothesis: Hypothesis,
    views: Sequence[View],
    *,
    options: RefineOptions = RefineOptions(),
    seed: int = 0,
    progress: bool = False,
) -> Hypothesis:
    """Return a copy of a hypothesis with its own decoder fine-tuned to the views.

    Parameters
    ----------
    decoder : SirenDecoder
        The model's decoder; it is copied, never changed.
    hypothesis : Hypothesis
        A fitted hypothesis (:func:`cellsdf.lift.latent.fit_hypotheses`); its code, pose and time are kept.
    views : sequence of View
        The masks and rotations it was fitted to, looking along two or more directions.
    options : RefineOptions
        Steps, learning rate, rays, hull penalty.
    seed : int
        Seed of the ray and point draws.
    progress : bool
        Progress over the optimiser steps (:func:`cellsdf.progress.track`).

    Returns
    -------
    Hypothesis
        The refined hypothesis, scored on the views (``dice``, ``loss``, ``silhouettes``) like a fitted one.

    Raises
    ------
    ValueError
        If every view looks along one axis: nothing would then say where in depth the added parts lie, and
        the silhouette loss fills the mask's whole extrusion.

    Examples
    --------
    >>> import numpy as np
    >>> from cellsdf.model.trained import load_trained
    >>> from cellsdf.lift.latent import FitOptions, fit_hypotheses
    >>> from cellsdf.lift.views import View
    >>> from cellsdf.lift.views import rotation_from_degrees
    >>> yy, xx = np.mgrid[:32, :32]
    >>> mask = (yy - 16) ** 2 / 64 + (xx - 15) ** 2 / 36 < 1
    >>> model = load_trained("plat")
    >>> views = [View(mask, np.eye(3), "top"), View(mask, rotation_from_degrees([0, 90, 0]), "side")]
    >>> fitted = fit_hypotheses(model, views, hypotheses=1, options=FitOptions(steps=10))[0]
    >>> refined = refine_hypothesis(model.decoder, fitted, views, options=RefineOptions(steps=5))
    >>> refined.decoder is not model.decoder
    True
    """
    if options.steps < 1:
        raise ValueError("steps must be >= 1")
    if not depth_observable(views):
        raise ValueError("refining needs views along two or more directions")
    own = copy.deepcopy(decoder)
    own.requires_grad_(True)
    parameter = next(own.parameters())
    as_tensor = lambda value: torch.as_tensor(np.asarray(value)[None], dtype=parameter.dtype)  # noqa: E731
    latent, t = as_tensor(hypothesis.latent), as_tensor(hypothesis.t)
    matrix = axis_angle_matrix(as_tensor(hypothesis.rotation))
    log_scale, translation = as_tensor(np.log(hypothesis.scale)), as_tensor(hypothesis.translation)
    size = views[0].mask.shape[0]
    pixel = grid_step(size)
    grid = torch.as_tensor(cube_grid(size), dtype=parameter.dtype)
    outside = torch.as_tensor(np.flatnonzero(~visual_hull(views, size)))
    generator = torch.Generator().manual_seed(seed)
    sampler = RaySampler(views, options.rays, options.depth, generator)
    optimiser = torch.optim.Adam(own.parameters(), lr=options.lr)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, options.steps)

    def sdf(world: torch.Tensor) -> torch.Tensor:
        xyz = model_points(world, matrix, log_scale, translation)
        return placed_sdf(own, latent, t, xyz, log_scale, options.clamp)

    for _ in track(range(options.steps), "refining the decoder", show=progress):
        batch = sampler.sample()
        loss = silhouette_loss(ray_minimum(sdf, batch, 1), batch, options.tau * pixel, len(views))[0]
        if len(outside):
            pick = outside[torch.randint(len(outside), (options.outside,), generator=generator)]
            jitter = (torch.rand(len(pick), 3, generator=generator, dtype=parameter.dtype) - 0.5) * pixel
            inside_depth = torch.relu(-sdf((grid[pick] + jitter)[None])).mean() / pixel
            loss = loss + options.hull_weight * inside_depth
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
        schedule.step()
    own.requires_grad_(False)
    refined = copy.copy(hypothesis)
    refined.decoder = own.eval()
    score_hypothesis(decoder, refined, views, options.clamp)
    return refined
