"""Latent inference: one code and one rotation for a new sequence, the trained decoder frozen (DeepSDF)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import numpy as np
import torch

from cellsdf.geometry.rotation import axis_angle_matrix, rotate
from cellsdf.model.autodecoder import clamped_l1
from cellsdf.model.siren import SirenDecoder


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


def fit_latent(
    decoder: SirenDecoder,
    xyz: torch.Tensor,
    t: torch.Tensor,
    sdf: torch.Tensor,
    iterations: int = 500,
    lr: float = 5e-3,
    code_reg: float = 1e-4,
    clamp: float = 0.1,
    rotation: bool = True,
    points_per_step: int = 4096,
    seed: int = 0,
    init: torch.Tensor | None = None,
    latent_std: float = 0.01,
) -> tuple[torch.Tensor, torch.Tensor, np.ndarray]:
    """Infer the latent code (and rotation) of a whole sequence from its SDF samples, decoder fixed.

    Adam minimises the training loss, clamped L1 between f(z, R·x, t) and the samples plus
    ``code_reg``·‖z‖², over z and R only; the prior keeps z where the training codes are, so the decoded shape
    stays plausible between samples. Each step uses ``points_per_step`` samples drawn from all frames, and the
    learning rate follows a cosine decay to zero. The rotation starts at the identity, so it finds
    orientations within a few tens of degrees of the training cells'. The decoder's parameters get no
    gradient, and their ``requires_grad`` flags are restored afterwards.

    Parameters
    ----------
    decoder : SirenDecoder
        Trained decoder; its device (CPU or GPU) is where the fit runs.
    xyz : torch.Tensor
        (F, N, 3) normalised (z, y, x) sample points of the sequence's F frames.
    t : torch.Tensor
        (F,) time of each frame in [-1, 1].
    sdf : torch.Tensor
        (F, N) signed distances at the points (normalised units, negative inside).
    iterations : int
        Optimisation steps.
    lr : float
        Initial learning rate of the code and the rotation vector.
    code_reg : float
        Weight of the latent prior ‖z‖².
    clamp : float
        Distance at which predictions and samples are clamped (normalised units), as in training.
    rotation : bool
        Fit a rotation too; otherwise the identity is kept.
    points_per_step : int
        Samples per step, drawn uniformly from all F·N.
    seed : int
        Seed of the starting code and the point draws.
    init : torch.Tensor, optional
        (L,) starting code; default N(0, ``latent_std``²) per entry.
    latent_std : float
        Spread of the random starting code (the model's initialisation spread is a good choice).

    Returns
    -------
    latent : torch.Tensor
        (L,) code, on the CPU.
    rotation : torch.Tensor
        (3,) axis-angle vector (radians, in the (z, y, x) frame) of the rotation R that the model applies to
        the points, f(z, R·x, t); zero when ``rotation`` is False. On the CPU.
    losses : np.ndarray
        (iterations,) objective at each step.
    """
    if iterations < 1 or points_per_step < 1:
        raise ValueError("iterations and points_per_step must be >= 1")
    if xyz.shape[:2] != sdf.shape or xyz.shape[2] != 3 or t.shape != sdf.shape[:1]:
        shapes = f"{tuple(xyz.shape)}, {tuple(t.shape)}, {tuple(sdf.shape)}"
        raise ValueError(f"expected xyz (F, N, 3), t (F,) and sdf (F, N), got {shapes}")
    parameter = next(decoder.parameters())
    device, dtype = parameter.device, parameter.dtype
    frames, n = sdf.shape
    # One flat pool of (z, y, x, t) samples: a step mixes frames, and the code is the same for all of them.
    times = t.to(device, dtype)[:, None, None].expand(frames, n, 1)
    points = torch.cat([xyz.to(device, dtype), times], dim=-1).reshape(-1, 4)
    values = sdf.to(device, dtype).reshape(-1)
    generator = torch.Generator().manual_seed(seed)
    if init is None:
        latent = torch.randn(decoder.latent_size, generator=generator) * latent_std
    else:
        latent = init.detach().clone()
    latent = latent.to(device, dtype).requires_grad_(True)
    vector = torch.zeros(3, device=device, dtype=dtype, requires_grad=rotation)
    optimiser = torch.optim.Adam([latent, vector] if rotation else [latent], lr=lr)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, iterations)
    losses = np.empty(iterations)
    with frozen(decoder):
        for step in range(iterations):
            pick = torch.randint(len(values), (points_per_step,), generator=generator).to(device)
            xyz_step = rotate(points[None, pick, :3], axis_angle_matrix(vector)[None])
            predicted = decoder(latent[None], torch.cat([xyz_step, points[None, pick, 3:]], dim=-1))[0]
            loss = clamped_l1(predicted, values[pick], clamp) + code_reg * latent.pow(2).sum()
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            schedule.step()
            losses[step] = loss.item()
    return latent.detach().cpu(), vector.detach().cpu(), losses
