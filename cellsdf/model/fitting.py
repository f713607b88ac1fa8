"""Latent inference: codes, rotations and placements of new sequences, the decoder frozen (DeepSDF)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from cellsdf.geometry.rotation import axis_angle_matrix
from cellsdf.model.autodecoder import clamped_l1
from cellsdf.model.placement import model_points, placed_sdf
from cellsdf.model.siren import SirenDecoder
from cellsdf.progress import track


@contextlib.contextmanager
def frozen(module: torch.nn.Module) -> Iterator[None]:
    """Turn off gradients of a module's parameters for the block, then restore each one's previous state."""
    states = [(p, p.requires_grad) for p in module.parameters()]
    for p, _ in states:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p, state in states:
            p.requires_grad_(state)


@dataclass(frozen=True)
class FittedCodes:
    """What :func:`fit_codes` found for S sequences, on the CPU.

    Attributes
    ----------
    latents : torch.Tensor
        (S, L) codes.
    rotations : torch.Tensor
        (S, 3) axis-angle vectors (radians, (z, y, x) frame) of the rotations R the model applies to the
        points; zero where no rotation was fitted.
    scales : torch.Tensor
        (S,) placement scales s (data units per model unit).
    translations : torch.Tensor
        (S, 3) placement translations c (data units, (z, y, x)).
    losses : np.ndarray
        (S, iterations) each sequence's objective at each step.
    """

    latents: torch.Tensor
    rotations: torch.Tensor
    scales: torch.Tensor
    translations: torch.Tensor
    losses: np.ndarray


def fit_codes(
    decoder: SirenDecoder,
    points: torch.Tensor,
    sdf: torch.Tensor,
    sequence: torch.Tensor,
    *,
    seeds: Sequence[int],
    iterations: int = 500,
    lr: float = 5e-3,
    code_reg: float = 1e-4,
    clamp: float = 0.1,
    rotation: bool = True,
    placement: bool = False,
    scales: torch.Tensor | None = None,
    translations: torch.Tensor | None = None,
    expected_scales: torch.Tensor | None = None,
    scale_prior: float = 0.0,
    points_per_step: int = 4096,
    latent_std: float = 0.01,
    progress: bool = False,
) -> FittedCodes:
    """Infer a code (and rotation, scale, translation) per sequence from SDF samples, decoder fixed.

    The data at point p (the data's units) are modelled as the placed cell s·f(z, R·(p − c) / s, t)
    (:mod:`cellsdf.model.placement`). All S sequences are fitted in one optimisation: every step draws
    ``points_per_step`` samples from each sequence and runs the decoder once on the (S, P) batch. Adam
    minimises, per sequence, the training loss in the model's units (clamped L1 between f and the samples
    divided by s, so that the clamp and ``code_reg`` keep their training meaning) plus ``code_reg``·‖z‖²
    plus the scale prior ``scale_prior``·clamp·(log s − log s₀)², s₀ the expected scale: a cell e times
    off the expected size costs ``scale_prior`` clamps of mean error on every sample. The code can change a
    cell's size as well, so a weak prior settles what the data leave open, while a strong one (about 1 on
    the shipped models) makes the code stretch to fit cells twice the expected size. The objective is the
    sum over sequences, so each sequence's parameters get the gradient they would get alone; the learning
    rate follows a cosine decay to zero. Rotations
    start at the identity, so they find orientations within a few tens of degrees of the training cells'.
    The decoder's parameters get no gradient, and their ``requires_grad`` flags are restored afterwards.

    Parameters
    ----------
    decoder : SirenDecoder
        Trained decoder; its device (CPU or GPU) is where the fit runs.
    points : torch.Tensor
        (N, 4) samples (z, y, x, t) of all sequences, (z, y, x) in the data's normalised units.
    sdf : torch.Tensor
        (N,) signed distances at the points (the data's units, negative inside).
    sequence : torch.Tensor
        (N,) index in [0, S) of each sample's sequence.
    seeds : sequence of int
        One seed per sequence (S = its length): sequence i's starting code and point draws come from seed i
        alone, so its fit does not depend on which other sequences share the batch.
    iterations : int
        Optimisation steps.
    lr : float
        Initial learning rate of every parameter.
    code_reg : float
        Weight of the latent prior ‖z‖².
    clamp : float
        Distance at which predictions and samples are clamped (model units), as in training.
    rotation : bool
        Fit a rotation per sequence; otherwise the identity is kept.
    placement : bool
        Fit a scale and a translation per sequence; otherwise ``scales`` and ``translations`` are kept.
    scales : torch.Tensor, optional
        (S,) starting (or, without ``placement``, fixed) scales; default 1.
    translations : torch.Tensor, optional
        (S, 3) starting (or fixed) translations; default 0.
    expected_scales : torch.Tensor, optional
        (S,) centres s₀ of the log-normal scale prior; needed when ``scale_prior`` > 0 and ``placement``.
    scale_prior : float
        Weight of the scale prior; 0 lets the data decide the scale alone.
    points_per_step : int
        Samples per sequence per step, drawn uniformly from all of its samples.
    latent_std : float
        Spread of the random starting codes (the model's initialisation spread is a good choice).
    progress : bool
        Show a progress bar over the steps.

    Returns
    -------
    FittedCodes
    """
    count = len(seeds)
    if iterations < 1 or points_per_step < 1 or count < 1:
        raise ValueError("iterations, points_per_step and the number of sequences must be >= 1")
    if points.dim() != 2 or points.shape[1] != 4 or not sdf.shape == sequence.shape == points.shape[:1]:
        shapes = f"{tuple(points.shape)}, {tuple(sdf.shape)}, {tuple(sequence.shape)}"
        raise ValueError(f"expected points (N, 4), sdf (N,) and sequence (N,), got {shapes}")
    if scale_prior < 0 or (placement and scale_prior > 0 and expected_scales is None):
        raise ValueError("scale_prior must be >= 0, and a positive one needs expected_scales")
    parameter = next(decoder.parameters())
    device, dtype = parameter.device, parameter.dtype
    rows = [torch.from_numpy(np.flatnonzero(sequence.cpu().numpy() == i)) for i in range(count)]
    if any(len(r) == 0 for r in rows):
        raise ValueError(f"every sequence index in [0, {count}) needs samples")
    points, sdf = points.to(device, dtype), sdf.to(device, dtype)
    generators = [torch.Generator().manual_seed(int(seed)) for seed in seeds]
    starts = [torch.randn(decoder.latent_size, generator=g) * latent_std for g in generators]
    latents = torch.stack(starts).to(device, dtype).requires_grad_(True)
    vectors = torch.zeros(count, 3, device=device, dtype=dtype, requires_grad=rotation)
    scales = torch.ones(count) if scales is None else scales
    translations = torch.zeros(count, 3) if translations is None else translations
    log_scale = scales.log().to(device, dtype).requires_grad_(placement)
    shift = translations.to(device, dtype).requires_grad_(placement)
    trained = [latents]
    if rotation:
        trained.append(vectors)
    if placement:
        trained += [log_scale, shift]
    optimiser = torch.optim.Adam(trained, lr=lr)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, iterations)
    prior_centre = None
    if placement and scale_prior > 0:
        prior_centre = expected_scales.log().to(device, dtype)
    losses = np.empty((count, iterations))
    with frozen(decoder):
        for step in track(range(iterations), "fitting", show=progress):
            draws = zip(rows, generators, strict=True)
            pick = torch.stack([r[torch.randint(len(r), (points_per_step,), generator=g)] for r, g in draws])
            pick = pick.to(device)
            batch = points[pick]
            xyz = model_points(batch[..., :3], axis_angle_matrix(vectors), log_scale, shift)
            # placed_sdf gives s·f; dividing it and the samples by s (no gradient) compares in model units.
            unit = log_scale.detach().exp()[:, None]
            predicted = placed_sdf(decoder, latents, batch[..., 3], xyz, log_scale, clamp) / unit
            loss = clamped_l1(predicted, sdf[pick] / unit, clamp, dim=1) + code_reg * latents.pow(2).sum(1)
            if prior_centre is not None:
                loss = loss + scale_prior * clamp * (log_scale - prior_centre).pow(2)
            optimiser.zero_grad(set_to_none=True)
            loss.sum().backward()
            optimiser.step()
            schedule.step()
            losses[:, step] = loss.detach().cpu().numpy()
    return FittedCodes(
        latents.detach().cpu(),
        vectors.detach().cpu(),
        log_scale.detach().exp().cpu(),
        shift.detach().cpu(),
        losses,
    )
