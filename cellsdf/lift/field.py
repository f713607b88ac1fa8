"""Lifting without a learned prior: one free SIREN field per object, fitted to a few views (DeCAF's setting).

The field is a :class:`~cellsdf.model.siren.SirenDecoder` with no latent code, on world points, added to a
ball's distance so that it starts from a closed shape rather than from the SIREN's initial noise. Without a
prior, what the views say about the object is its visual hull: the voxels that project inside every mask.
Each step regresses the field on the hull's signed distance at sampled points (clamped L1, as training does,
with half the points in the band around the hull's surface) and adds the soft silhouette loss of every view
(:func:`cellsdf.lift.rays.silhouette_loss`), so the field is fitted to the measurements themselves and stays
a signed distance near its surface, which the ray minimum and the narrow-band decoder rely on.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from cellsdf.dataset.sdf import signed_distance
from cellsdf.geometry.grid import cube_grid, grid_step
from cellsdf.geometry.overlap import dice
from cellsdf.lift.rays import RaySampler, ray_minimum, silhouette_loss
from cellsdf.lift.render import decode_view, visual_hull
from cellsdf.lift.views import View
from cellsdf.model.autodecoder import clamped_l1
from cellsdf.model.placement import PlacedDecoder
from cellsdf.model.siren import SirenDecoder
from cellsdf.progress import track

FIELD_CLAMP = 0.1  # world units: the field is a distance up to here (the narrow band's block bound)


class FreeField(SirenDecoder):
    """A SIREN with no latent code whose output is added to a ball's signed distance (world units).

    Parameters
    ----------
    centre : sequence of float
        (3,) centre of the starting ball (z, y, x).
    radius : float
        Its radius.
    widths : sequence of int
        Hidden layer widths.
    omega : float
        ω0 of every sine layer.
    """

    def __init__(
        self,
        centre: Sequence[float],
        radius: float,
        widths: Sequence[int] = (64, 64, 64),
        omega: float = 15.0,
    ):
        super().__init__(0, widths, omega, omega)
        self.register_buffer("centre", torch.as_tensor(np.asarray(centre), dtype=torch.float32))
        self.register_buffer("radius", torch.tensor(float(radius)))

    def forward_terms(
        self, terms: list[torch.Tensor], coords: torch.Tensor, *, hidden_dtype: torch.dtype | None = None
    ) -> torch.Tensor:
        """Ball distance plus the SIREN's residual at (B, P, 4) points; ``hidden_dtype`` as the SIREN's."""
        ball = (coords[..., :3] - self.centre).norm(dim=-1) - self.radius
        return ball + super().forward_terms(terms, coords, hidden_dtype=hidden_dtype)


@dataclass(frozen=True)
class FieldOptions:
    """How a free field is fitted.

    Attributes
    ----------
    steps : int
        Adam steps.
    points : int
        Points per step for the regression on the visual hull's signed distance.
    rays : int
        Rays per view per step for the silhouette loss.
    depth : int
        Samples per ray.
    tau : float
        Temperature of the soft silhouette in pixels.
    lr : float
        Learning rate (cosine decay to zero).
    widths : tuple of int
        Hidden layer widths of the SIREN.
    omega : float
        Its ω0.
    clamp : float
        Distance (world units) at which the regression is clamped; beyond it the field only has to be far.
    """

    steps: int = 300
    points: int = 4096
    rays: int = 64
    depth: int = 16
    tau: float = 1.0
    lr: float = 1e-3
    widths: tuple[int, ...] = (64, 64, 64)
    omega: float = 15.0
    clamp: float = FIELD_CLAMP


@dataclass
class FieldFit:
    """A fitted free field.

    Attributes
    ----------
    field : FreeField
        The SDF of the object in world coordinates (time is ignored: pass t = 0).
    dice : list of float
        Dice of the decoded silhouette on each view.
    loss : float
        1 − mean Dice.
    fit_loss : float
        The fit's objective averaged over its last 10 steps.
    silhouettes : list of np.ndarray
        Its decoded silhouette in each view, at the masks' size.
    """

    field: FreeField
    dice: list[float]
    loss: float
    fit_loss: float
    silhouettes: list[np.ndarray]

    def placed(self, view: np.ndarray) -> PlacedDecoder:
        """Return the field seen through a view rotation, for decoding at any resolution."""
        return PlacedDecoder(self.field, view, np.eye(3), 1.0, np.zeros(3))

    def decode(self, view: np.ndarray, resolution: int) -> np.ndarray:
        """Binary volume of the object on the view's ``resolution``³ grid (narrow band)."""
        return decode_view(
            self.field, np.zeros(0, np.float32), 0.0, self.placed(view), resolution, FIELD_CLAMP
        )

    def record(self) -> dict:
        """JSON-ready description."""
        return {"loss": self.loss, "dice": self.dice, "fit_loss": self.fit_loss}

    def checkpoint(self) -> dict:
        """Return what rebuilds the field: ``FreeField(**arguments)``, then its ``state_dict``."""
        arguments = {
            "centre": self.field.centre.tolist(),
            "radius": float(self.field.radius),
            "widths": [layer.out_features for layer in self.field.layers],
            "omega": self.field.omegas[0],
        }
        return {
            "format": "cellsdf-lift-field/1",
            "arguments": arguments,
            "state_dict": self.field.state_dict(),
        }


def fit_field(
    views: Sequence[View], *, options: FieldOptions = FieldOptions(), seed: int = 0, progress: bool = False
) -> FieldFit:
    """Fit a free SIREN field to the silhouettes of one object seen through several views.

    Parameters
    ----------
    views : sequence of View
        Square masks of one size and their view rotations. With one view the hull is the extruded mask, so
        field mode needs two or more turned views to say anything about depth.
    options : FieldOptions
        Steps, points, rays, network size, learning rate.
    seed : int
        Seed of the network's initialisation and the draws.
    progress : bool
        Progress over the optimiser steps (:func:`cellsdf.progress.track`).

    Returns
    -------
    FieldFit
        The field and how well its decoded silhouettes match the views.

    Raises
    ------
    ValueError
        If no voxel projects inside every mask (the views do not show one object with these rotations).
    """
    if options.steps < 1:
        raise ValueError("steps must be >= 1")
    size = views[0].mask.shape[0]
    pixel = grid_step(size)
    hull = visual_hull(views, size)
    if not hull.any():
        raise ValueError(
            "no voxel projects inside every mask: the views and rotations do not show one object"
        )
    target = torch.as_tensor(signed_distance(hull, spacing=(pixel,) * 3)).reshape(-1)
    grid = torch.as_tensor(cube_grid(size), dtype=torch.float32)
    band = torch.nonzero(target.abs() <= 3 * pixel)[:, 0]
    coords = grid[hull.reshape(-1)]
    centre = coords.mean(dim=0).numpy()
    radius = float((3.0 * hull.sum() * pixel**3 / (4.0 * np.pi)) ** (1 / 3))
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    field = FreeField(centre, radius, options.widths, options.omega)
    optimiser = torch.optim.Adam(field.parameters(), lr=options.lr)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, options.steps)
    sampler = RaySampler(views, options.rays, options.depth, generator)
    empty = torch.zeros(1, 0)

    def sdf(world: torch.Tensor) -> torch.Tensor:
        return field(empty, torch.cat([world, torch.zeros_like(world[..., :1])], dim=-1))

    history = []
    half = options.points // 2
    for _ in track(range(options.steps), "fitting the field", show=progress):
        pick = torch.cat(
            [
                torch.randint(len(grid), (options.points - half,), generator=generator),
                band[torch.randint(len(band), (half,), generator=generator)],
            ]
        )
        jitter = (torch.rand(len(pick), 3, generator=generator) - 0.5) * pixel
        # The hull's distance is known at grid points; a jitter within a voxel keeps the field smooth between.
        values = sdf((grid[pick] + jitter)[None])[0]
        regression = clamped_l1(values, target[pick], options.clamp) / pixel
        batch = sampler.sample()
        data = silhouette_loss(ray_minimum(sdf, batch, 1), batch, options.tau * pixel, len(views))[0]
        loss = regression + data
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
        schedule.step()
        history.append(float(loss.detach()))
    field.eval()
    for p in field.parameters():
        p.requires_grad_(False)
    fit = FieldFit(field, [], float("nan"), float(np.mean(history[-10:])), [])
    fit.silhouettes = [fit.decode(view.rotation, size).any(axis=0) for view in views]
    fit.dice = [dice(s, v.mask) for s, v in zip(fit.silhouettes, views, strict=True)]
    fit.loss = 1.0 - float(np.mean(fit.dice))
    return fit
