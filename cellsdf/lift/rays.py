"""Rays through the pixels of the views, drawn a few hundred at a time, and the silhouette loss on them.

A step of a fit decodes the points of a sample of rays, not whole view grids: all pixel classes are drawn
(foreground, the background band around the outline where the fit is decided, and far background), each
weighted by how many pixels it stands for, so the weighted sums estimate the sums over the whole image.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage

from cellsdf.geometry.grid import grid_axis
from cellsdf.lift.views import View

BAND = 3  # pixels of background beside the outline that get their own share of rays


@dataclass(frozen=True)
class RayBatch:
    """Rays of several views, with their depth samples in the world.

    Attributes
    ----------
    points : torch.Tensor
        (R, S, 3) world points (z, y, x), S samples along each of R rays.
    target : torch.Tensor
        (R,) 1 for foreground pixels, 0 for background.
    weight : torch.Tensor
        (R,) pixels each ray stands for, divided by the view's pixel count.
    view : torch.Tensor
        (R,) index of each ray's view.
    direction : torch.Tensor
        (R, 3) unit world direction of each ray (its view's z axis).
    """

    points: torch.Tensor
    target: torch.Tensor
    weight: torch.Tensor
    view: torch.Tensor
    direction: torch.Tensor


class RaySampler:
    """Draws stratified rays from views; each call gives new rays and new depth jitter.

    Parameters
    ----------
    views : sequence of View
        Square masks of one size and their rotations.
    rays : int
        Rays per view per call: half foreground, a quarter from the band around the outline, a quarter
        from the rest of the background.
    depth : int
        Samples per ray, stratified over [-1, 1] with a random offset in each stratum.
    generator : torch.Generator
        Source of randomness.
    """

    def __init__(self, views: Sequence[View], rays: int, depth: int, generator: torch.Generator):
        self.depth, self.generator = depth, generator
        size = views[0].mask.shape[0]
        axis = torch.as_tensor(grid_axis(size), dtype=torch.float32)
        self.yx = torch.stack(torch.meshgrid(axis, axis, indexing="ij"), dim=-1).reshape(-1, 2)
        self.rotations = torch.as_tensor(np.stack([v.rotation for v in views]), dtype=torch.float32)
        self.classes: list[list[tuple[torch.Tensor, int, float]]] = []
        shares = (rays - 2 * (rays // 4), rays // 4, rays // 4)
        for view in views:
            mask = view.mask
            near = ndimage.binary_dilation(mask, iterations=BAND) & ~mask
            pools = (mask, near, ~mask & ~near)
            entries = []
            for pool, share in zip(pools, shares, strict=True):
                index = torch.as_tensor(np.flatnonzero(pool.ravel()))
                if len(index) and share:
                    entries.append((index, share, len(index) / mask.size / share))
            self.classes.append(entries)
        self.targets = [torch.as_tensor(v.mask.ravel(), dtype=torch.float32) for v in views]

    def sample(self) -> RayBatch:
        """Draw one batch of rays from every view."""
        points, targets, weights, views, directions = [], [], [], [], []
        for v, entries in enumerate(self.classes):
            for index, count, weight in entries:
                pick = index[torch.randint(len(index), (count,), generator=self.generator)]
                yx = self.yx[pick]
                strata = torch.arange(self.depth, dtype=torch.float32)
                offset = torch.rand(count, self.depth, generator=self.generator)
                z = -1.0 + (strata + offset) * (2.0 / self.depth)
                q = torch.cat([z[..., None], yx[:, None, :].expand(-1, self.depth, 2)], dim=-1)
                # The view shows the object rotated by R_v: its point q is the world point R_vᵀ q.
                points.append(q @ self.rotations[v])
                targets.append(self.targets[v][pick])
                weights.append(torch.full((count,), weight))
                views.append(torch.full((count,), v))
                directions.append(self.rotations[v][0].expand(count, 3))
        return RayBatch(
            torch.cat(points), torch.cat(targets), torch.cat(weights), torch.cat(views), torch.cat(directions)
        )


def ray_minimum(
    sdf: Callable[[torch.Tensor], torch.Tensor], batch: RayBatch, hypotheses: int
) -> torch.Tensor:
    """Return the smallest SDF along each ray, differentiably: the silhouette is sigmoid(−minimum / τ).

    Max-projecting the occupancy is taking the minimum SDF along the ray. The depth samples are decoded
    without gradients; a parabola through the smallest sample and its neighbours places the minimum between
    them, and only that point and the smallest sample are decoded again with gradients (the derivative of a
    minimum is the derivative at the point where it is reached), so a step's backward pass costs two points
    per ray whatever the number of depth samples.

    Parameters
    ----------
    sdf : callable
        Maps (K, P, 3) world points to (K, P) world-unit SDF values of K hypotheses.
    batch : RayBatch
        The rays.
    hypotheses : int
        K.

    Returns
    -------
    torch.Tensor
        (K, R) minimum SDF along each ray.
    """
    rays, samples, _ = batch.points.shape
    with torch.no_grad():
        values = sdf(batch.points.reshape(1, -1, 3).expand(hypotheses, -1, -1)).reshape(
            hypotheses, rays, samples
        )
    best = values.argmin(dim=-1)
    lower, upper = (best - 1).clamp(min=0), (best + 1).clamp(max=samples - 1)
    f0, f1, f2 = (values.gather(-1, i[..., None])[..., 0] for i in (lower, best, upper))
    # Vertex of the parabola through three equally spaced samples, in sample steps from the middle one.
    curvature = f0 - 2.0 * f1 + f2
    shift = torch.where(curvature > 1e-9, 0.5 * (f0 - f2) / curvature.clamp(min=1e-9), torch.zeros_like(f1))
    shift = torch.where((best == lower) | (best == upper), torch.zeros_like(shift), shift.clamp(-1.0, 1.0))
    spacing = 2.0 / samples
    start = batch.points[torch.arange(rays)[None, :], best]  # (K, R, 3)
    refined = start + (shift * spacing)[..., None] * batch.direction[None]
    both = torch.stack([start, refined], dim=2).reshape(hypotheses, -1, 3)
    return sdf(both).reshape(hypotheses, rays, 2).amin(dim=-1)


def silhouette_loss(minimum: torch.Tensor, batch: RayBatch, tau: float, views: int) -> torch.Tensor:
    """Soft Dice plus binary cross-entropy between soft silhouettes and the masks, mean over views.

    Parameters
    ----------
    minimum : torch.Tensor
        (K, R) smallest world SDF along each ray (:func:`ray_minimum`) for K hypotheses.
    batch : RayBatch
        The rays.
    tau : float
        Temperature of the soft silhouette sigmoid(−minimum / τ) (world units).
    views : int
        Number of views in the batch.

    Returns
    -------
    torch.Tensor
        (K,) loss of each hypothesis.
    """
    logit = -minimum / tau
    predicted = torch.sigmoid(logit)
    target, weight = batch.target, batch.weight
    bce = F.binary_cross_entropy_with_logits(logit, target.expand_as(logit), reduction="none")
    total = predicted.new_zeros(predicted.shape[0])
    for v in range(views):
        own = batch.view == v
        w, p, g = weight[own], predicted[:, own], target[own]
        dice = 2.0 * (w * p * g).sum(-1) / ((w * p).sum(-1) + (w * g).sum(-1) + 1e-6)
        total = total + (1.0 - dice) + (w * bce[:, own]).sum(-1) / w.sum()
    return total / views
