"""Lifting with the learned shape space: K hypotheses of code, rotation, scale, translation and time.

Each hypothesis starts from a code drawn from the learned code distribution
(:func:`cellsdf.generate.sampling.gaussian_latent`), a uniform random rotation and its own time, with scale
and in-plane position set so that its silhouette has the mask's area and centroid. Adam then minimises the
soft silhouette loss (Dice + BCE, :func:`cellsdf.lift.rays.silhouette_loss`) over sampled rays plus a prior
that keeps the code among the learned ones, with the decoder frozen. Different starts settle in different
shapes, so the hypotheses differ where the views leave the shape open (its depth, above all); they are ranked
by how well their decoded silhouettes match the masks.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from scipy import ndimage
from scipy.spatial.transform import Rotation

from cellsdf.errors import InputError
from cellsdf.generate.sampling import gaussian_latent
from cellsdf.geometry.grid import grid_axis, grid_step
from cellsdf.geometry.overlap import dice
from cellsdf.geometry.rotation import axis_angle_matrix, uniform_rotation
from cellsdf.lift.rays import RayBatch, RaySampler, ray_minimum, silhouette_loss
from cellsdf.lift.render import decode_view, visual_hull
from cellsdf.lift.views import View
from cellsdf.model.fitting import frozen
from cellsdf.model.placement import PlacedDecoder, model_points, placed_sdf
from cellsdf.model.siren import SirenDecoder
from cellsdf.model.trained import TrainedModel
from cellsdf.progress import track

_INIT_RESOLUTION = 32


@dataclass(frozen=True)
class FitOptions:
    """How a latent lift is fitted.

    Attributes
    ----------
    steps : int
        Adam steps.
    rays : int
        Rays per view per step.
    depth : int
        Samples per ray.
    tau : float
        Temperature of the soft silhouette in pixels of the mask.
    lr : float
        Learning rate of the code; the pose parameters use multiples of it.
    prior : float
        Weight of the code prior ‖z − μ‖² / ρ² (μ, ρ²: mean and mean squared spread of the learned codes).
    candidates : int
        Random starts drawn per hypothesis; the K whose silhouettes fit best before any step are fitted.
    scale : float or None
        Expected scale (world units per model unit, :func:`expected_scale`) when the masks' pixel size is
        known: starts take it and a log-normal prior keeps the fit near it. None fits the scale freely.
    scale_spread : float
        Standard deviation of the log-scale prior.
    """

    steps: int = 150
    rays: int = 256
    depth: int = 16
    tau: float = 1.0
    lr: float = 4e-3
    prior: float = 0.05
    candidates: int = 4
    scale: float | None = None
    scale_spread: float = 0.1


def model_scale(model: TrainedModel, pixel_size: float, size: int) -> float:
    """Scale at which a trained model's cells keep their physical size in masks of ``pixel_size`` µm.

    Raises
    ------
    InputError
        If the checkpoint does not record its training data's scale (normalised units per µm).
    """
    if model.data.scale is None:
        raise InputError("pixel_size", "the checkpoint does not record its training data's scale; omit it")
    return expected_scale(model.data.scale, pixel_size, size)


def expected_scale(model_scale: float, pixel_size: float, size: int) -> float:
    """Scale (world units per model unit) at which a model's cells keep their trained physical size.

    Parameters
    ----------
    model_scale : float
        The training data's normalised model units per µm (a checkpoint's ``dataset.scale``).
    pixel_size : float
        µm per mask pixel.
    size : int
        Mask side: its pixel grid spans the world's [-1, 1].

    Returns
    -------
    float
        World units per model unit.
    """
    return grid_step(size) / pixel_size / model_scale


@dataclass
class Hypothesis:
    """One fitted 3D shape behind the views.

    Attributes
    ----------
    latent : np.ndarray
        (L,) code.
    rotation : np.ndarray
        (3,) axis-angle vector (radians, (z, y, x) frame) of the placement rotation R_h.
    scale : float
        World units per model unit.
    translation : np.ndarray
        (3,) world position of the model cube's centre.
    t : float
        Time in [-1, 1].
    loss : float
        Ranking loss: 1 − mean Dice of the decoded silhouettes over the views.
    dice : list of float
        Dice of the decoded silhouette on each view.
    fit_loss : float
        The fit's objective (data + prior) averaged over its last 10 steps.
    silhouettes : list of np.ndarray
        Its decoded silhouette in each view, at the masks' size.
    views : list of View
        The views it was fitted to: its volumes are carved to their visual hull (no voxel of a cell can
        project outside a mask), at any resolution.
    decoder : SirenDecoder or None
        Its own fine-tuned copy of the decoder (:func:`cellsdf.lift.refine.refine_hypothesis`); None: the
        model's.
    """

    latent: np.ndarray
    rotation: np.ndarray
    scale: float
    translation: np.ndarray
    t: float
    loss: float = float("nan")
    dice: list[float] = field(default_factory=list)
    fit_loss: float = float("nan")
    silhouettes: list[np.ndarray] = field(default_factory=list)
    views: list[View] = field(default_factory=list)
    decoder: SirenDecoder | None = None

    def placed(self, decoder: SirenDecoder, view: np.ndarray) -> PlacedDecoder:
        """Return the hypothesis' shape seen through a view rotation, for decoding at any resolution."""
        own = decoder if self.decoder is None else self.decoder
        matrix = axis_angle_matrix(torch.as_tensor(self.rotation, dtype=torch.float64)).numpy()
        return PlacedDecoder(own, view, matrix, self.scale, self.translation)

    def decode(
        self, decoder: SirenDecoder, view: np.ndarray, resolution: int, clamp: float, *, carve: bool = True
    ) -> np.ndarray:
        """Binary volume of the shape on the view's ``resolution``³ grid, carved to the views' hull.

        ``decoder`` is the model's; a refined hypothesis uses its own copy instead. ``carve=False`` gives the
        shape as decoded, which is what its fit to the views is judged on.
        """
        placed = self.placed(decoder, view)
        volume = decode_view(placed.decoder, self.latent, self.t, placed, resolution, clamp)
        return volume & visual_hull(self.views, resolution, rotation=view) if carve and self.views else volume

    def record(self) -> dict:
        """JSON-ready description."""
        return {
            "loss": self.loss,
            "dice": self.dice,
            "fit_loss": self.fit_loss,
            "latent": self.latent.tolist(),
            "rotation": self.rotation.tolist(),
            "scale": self.scale,
            "translation": self.translation.tolist(),
            "t": self.t,
        }


def start_rotation(rng: np.random.Generator, learned: np.ndarray | None) -> np.ndarray:
    """Draw a starting placement rotation: uniform on SO(3), or upright (a learned one turned about z).

    Cells lying on a coverslip keep their up-down axis along the optical axis and take any angle in the
    image plane; the training sequences' learned rotations carry that axis into the model's frame.

    Parameters
    ----------
    rng : numpy.random.Generator
        Source of randomness.
    learned : np.ndarray or None
        (S, 3) the model's learned rotation vectors for upright starts; None for uniform ones.

    Returns
    -------
    np.ndarray
        (3,) rotation vector of R_h.
    """
    if learned is None:
        return uniform_rotation(rng)
    # scipy's matrix of a vector is exp(skew(vector)) like axis_angle_matrix's, so (z, y, x) vectors compose
    # unchanged; the turn about z comes first: x = R_learned · R_turn · p.
    base = Rotation.from_rotvec(learned[rng.integers(len(learned))])
    turn = Rotation.from_rotvec([rng.uniform(-np.pi, np.pi), 0.0, 0.0])
    return (base * turn).as_rotvec()


def _starts(
    decoder: SirenDecoder,
    codes: np.ndarray,
    learned: np.ndarray | None,
    view: View,
    count: int,
    rng: np.random.Generator,
    clamp: float,
    scale: float | None,
) -> list[Hypothesis]:
    """Random starts, each moved so that its silhouette has the view's centroid.

    Their scale is ``scale`` when known, else the one that gives their silhouette the view's area.
    """
    mask, turn = view.mask, np.asarray(view.rotation)
    axis = grid_axis(mask.shape[0])
    pixel_area = (axis[1] - axis[0]) ** 2
    yy, xx = np.meshgrid(axis, axis, indexing="ij")
    area, centroid = mask.sum() * pixel_area, np.array([yy[mask].mean(), xx[mask].mean()])
    coarse = grid_axis(_INIT_RESOLUTION)
    cy, cx = np.meshgrid(coarse, coarse, indexing="ij")
    starts = []
    for k in range(count):
        latent = gaussian_latent(codes, rng).astype(np.float32)
        rotation = start_rotation(rng, learned)
        t = -1.0 + (2 * k + 1) / count
        hypothesis = Hypothesis(latent, rotation, 1.0, np.zeros(3), t)
        shadow = hypothesis.decode(decoder, turn, _INIT_RESOLUTION, clamp).any(axis=0)
        if shadow.any():
            own_area = shadow.sum() * (coarse[1] - coarse[0]) ** 2
            hypothesis.scale = scale or float(np.sqrt(area / own_area))
            own_centroid = np.array([cy[shadow].mean(), cx[shadow].mean()])
            # An in-plane shift in the view is the world shift R_vᵀ (0, y, x).
            hypothesis.translation = turn.T @ np.array([0.0, *(centroid - hypothesis.scale * own_centroid)])
        else:  # a code whose cell is empty at this time: start at the mask's size, the fit grows it
            hypothesis.scale = scale or float(np.sqrt(area / 4.0))
            hypothesis.translation = turn.T @ np.array([0.0, *centroid])
        starts.append(hypothesis)
    return starts


def fit_hypotheses(
    model: TrainedModel,
    views: Sequence[View],
    *,
    upright: bool = True,
    hypotheses: int = 4,
    options: FitOptions = FitOptions(),
    seed: int = 0,
    progress: bool = False,
) -> list[Hypothesis]:
    """Fit K 3D hypotheses of a trained model's shapes to one or more 2D views, best first.

    Parameters
    ----------
    model : TrainedModel
        The trained model: its decoder (kept frozen; its parameters' ``requires_grad`` are restored
        afterwards), its learned codes (the start distribution and the prior), its clamp (narrow-band
        decoding of the results) and its learned rotations.
    views : sequence of View
        Masks of one size and their view rotations. With one view the depth position is not observable and
        stays at the world centre.
    upright : bool
        Start upright, from the model's learned rotations (:func:`start_rotation`); false (or a model
        without rotations) starts from uniform rotations.
    hypotheses : int
        K, fitted together as one batch.
    options : FitOptions
        Steps, rays, temperature, learning rate, prior weight.
    seed : int
        Seed of the starts and the ray draws.
    progress : bool
        Progress over the optimiser steps (:func:`cellsdf.progress.track`).

    Returns
    -------
    list of Hypothesis
        Sorted by ``loss`` (1 − mean Dice of the decoded silhouettes), best first.

    Examples
    --------
    >>> import numpy as np
    >>> from cellsdf.model.trained import load_trained
    >>> from cellsdf.lift.views import View
    >>> yy, xx = np.mgrid[:32, :32]
    >>> mask = (yy - 16) ** 2 / 64 + (xx - 15) ** 2 / 36 < 1
    >>> views = [View(mask, np.eye(3), "ellipse")]
    >>> best = fit_hypotheses(load_trained("plat"), views, hypotheses=2, options=FitOptions(steps=20))[0]
    >>> 0.0 <= best.loss <= 1.0
    True
    """
    if hypotheses < 1 or options.steps < 1:
        raise ValueError("hypotheses and steps must be >= 1")
    model.require_whole_cells("lift")
    decoder, codes, clamp = model.decoder, model.latents, model.clamp
    learned_rotations = model.rotations if upright else None
    rng = np.random.default_rng(seed)
    generator = torch.Generator().manual_seed(seed)
    size = views[0].mask.shape[0]
    pixel = grid_step(size)
    sampler = RaySampler(views, options.rays, options.depth, generator)
    count = hypotheses * max(1, options.candidates)
    starts = _starts(decoder, codes, learned_rotations, views[0], count, rng, clamp, options.scale)
    parameter = next(decoder.parameters())
    if count > hypotheses:
        # Random starts differ most in how they are turned; a pose far from the views' is rarely fitted
        # back, so the K starts whose silhouettes already fit best are the ones worth fitting.
        tensors = [torch.as_tensor(np.asarray(v), dtype=parameter.dtype) for v in _columns(starts)]
        with torch.no_grad():
            first = _data_loss(decoder, *tensors, sampler.sample(), options.tau * pixel, len(views), clamp)
        starts = [starts[i] for i in torch.argsort(first)[:hypotheses].tolist()]
    as_tensor = lambda values: torch.as_tensor(np.asarray(values), dtype=parameter.dtype)  # noqa: E731
    latent = as_tensor([h.latent for h in starts]).requires_grad_(True)
    vector = as_tensor([h.rotation for h in starts]).requires_grad_(True)
    log_scale = as_tensor([np.log(h.scale) for h in starts]).requires_grad_(True)
    translation = as_tensor([h.translation for h in starts]).requires_grad_(True)
    t = as_tensor([h.t for h in starts]).requires_grad_(True)
    mean = torch.as_tensor(codes.mean(axis=0), dtype=parameter.dtype)
    spread = float(((codes - codes.mean(axis=0)) ** 2).sum(axis=1).mean()) or 1.0
    lr = options.lr
    optimiser = torch.optim.Adam(
        [
            {"params": [latent], "lr": lr},
            {"params": [vector], "lr": 5 * lr},
            {"params": [log_scale, translation], "lr": lr},
            {"params": [t], "lr": 5 * lr},
        ]
    )
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, options.steps)
    axis = torch.as_tensor(np.asarray(views[0].rotation)[0], dtype=parameter.dtype)
    depth_free = depth_observable(views)
    history = []
    with frozen(decoder):
        steps = track(range(options.steps), f"fitting {hypotheses} hypotheses", show=progress)
        for _ in steps:
            batch = sampler.sample()
            data = _data_loss(
                decoder,
                latent,
                vector,
                log_scale,
                translation,
                t,
                batch,
                options.tau * pixel,
                len(views),
                clamp,
            )
            prior = (latent - mean).pow(2).sum(-1) / spread
            loss = data + options.prior * prior
            if options.scale is not None:
                loss = loss + ((log_scale - np.log(options.scale)) / options.scale_spread).pow(2)
            optimiser.zero_grad(set_to_none=True)
            loss.sum().backward()
            if not depth_free:  # along the single viewing axis, which is the world's z for view 1
                translation.grad -= (translation.grad @ axis)[:, None] * axis
            optimiser.step()
            schedule.step()
            with torch.no_grad():
                t.clamp_(-1.0, 1.0)
            history.append(loss.detach().numpy())
    fitted = []
    tail = np.mean(history[-10:], axis=0)
    for k in range(hypotheses):
        hypothesis = Hypothesis(
            latent[k].detach().numpy().copy(),
            vector[k].detach().double().numpy(),
            float(log_scale[k].detach().exp()),
            translation[k].detach().double().numpy(),
            float(t[k].detach()),
            fit_loss=float(tail[k]),
            views=list(views),
        )
        score_hypothesis(decoder, hypothesis, views, clamp)
        fitted.append(hypothesis)
    return sorted(fitted, key=lambda h: h.loss)


def _columns(starts: Sequence[Hypothesis]) -> list[np.ndarray]:
    """Stack the starts' codes, rotation vectors, log-scales, translations and times."""
    return [
        np.stack([h.latent for h in starts]),
        np.stack([h.rotation for h in starts]),
        np.log([h.scale for h in starts]),
        np.stack([h.translation for h in starts]),
        np.array([h.t for h in starts]),
    ]


def _data_loss(
    decoder: SirenDecoder,
    latent: torch.Tensor,
    vector: torch.Tensor,
    log_scale: torch.Tensor,
    translation: torch.Tensor,
    t: torch.Tensor,
    batch: RayBatch,
    tau: float,
    views: int,
    clamp: float,
) -> torch.Tensor:
    """Silhouette loss (K,) of K placed shapes on a batch of rays."""
    matrices = axis_angle_matrix(vector)

    def sdf(world: torch.Tensor) -> torch.Tensor:
        xyz = model_points(world, matrices, log_scale, translation)
        return placed_sdf(decoder, latent, t, xyz, log_scale, clamp)

    return silhouette_loss(ray_minimum(sdf, batch, len(latent)), batch, tau, views)


def score_hypothesis(
    decoder: SirenDecoder, hypothesis: Hypothesis, views: Sequence[View], clamp: float
) -> None:
    """Set a hypothesis' silhouettes, per-view Dice and ranking loss, decoded at the masks' size.

    With one view (or views that all look along one axis) the depth position is not observable; the shape
    is then moved so that its extent in depth is centred in the world, as the baselines are.
    """
    size = views[0].mask.shape[0]
    if not depth_observable(views):
        volume = hypothesis.decode(decoder, views[0].rotation, size, clamp, carve=False)
        if volume.any():
            (box,) = ndimage.find_objects(volume.any(axis=(1, 2)).view(np.uint8))
            middle = -1.0 + (box[0].start + box[0].stop - 1) / (size - 1)
            hypothesis.translation = hypothesis.translation - middle * np.asarray(views[0].rotation)[0]
    # Carved, every shape that covers the masks would match them exactly: the fit is judged uncarved.
    hypothesis.silhouettes = [
        hypothesis.decode(decoder, v.rotation, size, clamp, carve=False).any(axis=0) for v in views
    ]
    hypothesis.dice = [dice(s, v.mask) for s, v in zip(hypothesis.silhouettes, views, strict=True)]
    hypothesis.loss = 1.0 - float(np.mean(hypothesis.dice))


def depth_observable(views: Sequence[View]) -> bool:
    """Whether some view looks along another axis than the first, so that depth positions are seen.

    Examples
    --------
    >>> from cellsdf.lift.views import rotation_from_degrees
    >>> mask = np.ones((4, 4), bool)
    >>> depth_observable([View(mask, np.eye(3), "top"), View(mask, rotation_from_degrees([0, 180, 0]), "")])
    False
    >>> depth_observable([View(mask, np.eye(3), "top"), View(mask, rotation_from_degrees([0, 90, 0]), "")])
    True
    """
    first = np.asarray(views[0].rotation)[0]
    return any(abs(float(np.asarray(v.rotation)[0] @ first)) < 1.0 - 1e-6 for v in views[1:])
