"""Platynereis-like cells: one growing blob whose surface deforms smoothly over time.

The surface is star-shaped around a centre ``c``. In cell coordinates ``q = M (p - c)``, with
``M = diag(1 / s) R^T`` a volume-preserving anisotropy ``s`` in orientation ``R``, a point is inside when

    |q| <= r0(t) * (1 + Y2_t(q / |q|) + Y3_t(q / |q|)),

where ``Y2_t`` and ``Y3_t`` are degree-2 and degree-3 spherical harmonics (harmonic polynomials
restricted to the sphere) blended between random keyframes. ``r0(t)`` is chosen so that the
volume grows geometrically by the drawn factor from the first to the last frame.
"""

from __future__ import annotations

import numpy as np

from cellsdf.simulate._primitives import (
    bbox_slices,
    box_axes,
    eval_monomials,
    fibonacci_sphere,
    frame_time,
    keyframe_weights,
    random_rotation,
    tensor_monomials,
)

_KEYFRAMES = 4
# Largest normalised distance from the grid centre any part of the cell may reach (8 % margin + slack).
_REACH_LIMIT = 0.80
_QUADRATURE = 2000
_PERMUTATIONS = ((0, 1, 2), (0, 2, 1), (1, 0, 2), (1, 2, 0), (2, 0, 1), (2, 1, 0))


def _harmonic_quadratic(rng: np.random.Generator) -> np.ndarray:
    """Random traceless symmetric matrix: the coefficients of a degree-2 harmonic polynomial."""
    b = rng.normal(size=(3, 3))
    sym = (b + b.T) / 2
    return sym - np.trace(sym) / 3 * np.eye(3)


def _harmonic_cubic(rng: np.random.Generator) -> np.ndarray:
    """Random traceless symmetric rank-3 tensor: the coefficients of a degree-3 harmonic polynomial."""
    t = rng.normal(size=(3, 3, 3))
    sym = sum(np.transpose(t, axes) for axes in _PERMUTATIONS) / 6
    trace = np.einsum("iik->k", sym)
    eye = np.eye(3)
    correction = (
        np.einsum("ij,k->ijk", eye, trace)
        + np.einsum("ik,j->ijk", eye, trace)
        + np.einsum("jk,i->ijk", eye, trace)
    )
    return sym - correction / 5


def _on_sphere(quadratic: np.ndarray, cubic: np.ndarray, directions: np.ndarray) -> np.ndarray:
    """Relative radius perturbation ``Y2(u) + Y3(u)`` at unit directions ``u``, shape (n, 3)."""
    return np.einsum("ni,ij,nj->n", directions, quadratic, directions) + np.einsum(
        "ni,nj,nk,ijk->n", directions, directions, directions, cubic
    )


def _unit_peak(tensor: np.ndarray, directions: np.ndarray) -> np.ndarray:
    """Scale a harmonic tensor so that its polynomial peaks at magnitude 1 on the unit sphere."""
    if tensor.ndim == 2:
        values = _on_sphere(tensor, np.zeros((3, 3, 3)), directions)
    else:
        values = _on_sphere(np.zeros((3, 3)), tensor, directions)
    return tensor / np.abs(values).max()


def draw_params(rng: np.random.Generator, frames: int) -> dict:
    """Draw the parameters of one plat sequence.

    Parameters
    ----------
    rng : np.random.Generator
        Source of all randomness.
    frames : int
        Number of frames (the shape is defined in continuous time, so this only goes into the record).

    Returns
    -------
    dict
        JSON-serialisable parameters consumed by :func:`render_frame`.
    """
    directions = fibonacci_sphere(_QUADRATURE)
    radius = rng.uniform(0.32, 0.40)
    growth = rng.uniform(1.5, 2.0)
    amp2 = rng.uniform(0.08, 0.2, size=_KEYFRAMES)
    amp3 = rng.uniform(0.04, 0.12, size=_KEYFRAMES)
    mode2 = [a * _unit_peak(_harmonic_quadratic(rng), directions) for a in amp2]
    mode3 = [a * _unit_peak(_harmonic_cubic(rng), directions) for a in amp3]
    log_scales = rng.uniform(-0.15, 0.15, size=3)
    scales = np.exp(log_scales - log_scales.mean())
    rotation = random_rotation(rng)
    centre = rng.uniform(-0.03, 0.03, size=3)
    drift = rng.uniform(-0.03, 0.03, size=3)
    # The harmonics average to zero on the sphere, so by Jensen r0(t) <= radius * growth**(t/3):
    # this bounds the reach without evaluating every frame.
    reach = (
        radius * growth ** (1 / 3) * (1 + amp2.max() + amp3.max()) * np.linalg.norm(rotation * scales, axis=1)
    )
    room = _REACH_LIMIT - np.maximum(np.abs(centre), np.abs(centre + drift))
    radius *= min(1.0, float(np.min(room / reach)))
    return {
        "frames": frames,
        "equivalent_radius": float(radius),
        "volume_growth": float(growth),
        "centre": centre.tolist(),
        "centre_drift": drift.tolist(),
        "rotation": rotation.tolist(),
        "axis_scales": scales.tolist(),
        "mode_amplitudes_2": amp2.tolist(),
        "mode_amplitudes_3": amp3.tolist(),
        "modes_2": [m.tolist() for m in mode2],
        "modes_3": [m.tolist() for m in mode3],
    }


def _base_radius(radius: float, growth: float, tau: float, quadratic: np.ndarray, cubic: np.ndarray) -> float:
    """``r0(t)`` that makes the volume ``4/3 pi radius³ growth**tau`` (anisotropy preserves volume)."""
    perturbation = _on_sphere(quadratic, cubic, fibonacci_sphere(_QUADRATURE))
    mean_cube = float(np.mean((1 + perturbation) ** 3))
    return radius * growth ** (tau / 3) / mean_cube ** (1 / 3)


def render_frame(params: dict, t: int, frames: int, size: int) -> np.ndarray:
    """Rasterise frame ``t`` of a plat sequence.

    Parameters
    ----------
    params : dict
        Output of :func:`draw_params`.
    t : int
        Frame index, ``0 <= t < frames``.
    frames : int
        Number of frames in the sequence.
    size : int
        Grid size S.

    Returns
    -------
    np.ndarray
        Boolean mask, shape (S, S, S), axes (z, y, x).
    """
    tau = frame_time(t, frames)
    weights = keyframe_weights(_KEYFRAMES, tau)
    quadratic = np.einsum("k,kij->ij", weights, np.asarray(params["modes_2"]))
    cubic = np.einsum("k,kijl->ijl", weights, np.asarray(params["modes_3"]))
    r0 = _base_radius(params["equivalent_radius"], params["volume_growth"], tau, quadratic, cubic)
    amplitude = weights @ (np.asarray(params["mode_amplitudes_2"]) + np.asarray(params["mode_amplitudes_3"]))
    rotation = np.asarray(params["rotation"])
    scales = np.asarray(params["axis_scales"])
    centre = np.asarray(params["centre"]) + tau * np.asarray(params["centre_drift"])

    frame = np.zeros((size, size, size), dtype=bool)
    half = 1.01 * r0 * (1 + amplitude) * np.linalg.norm(rotation * scales, axis=1)
    slices = bbox_slices(centre - half, centre + half, size)
    if slices is None:
        return frame
    z, y, x = box_axes(slices, size, centre)
    to_cell = np.diag(1 / scales) @ rotation.T
    metric = to_cell.T @ to_cell
    # Star-shaped test multiplied through by |q|³ so that no division (and no singular centre) remains:
    # |q|⁴ <= r0 (|q| (|q|² + P2(q)) + P3(q)), with P2, P3 the homogeneous polynomials of the modes.
    norm2 = eval_monomials(tensor_monomials(metric), z, y, x)
    quad = eval_monomials(tensor_monomials(r0 * (metric + to_cell.T @ quadratic @ to_cell)), z, y, x)
    cubic_cell = np.einsum("ijk,ia,jb,kc->abc", cubic, to_cell, to_cell, to_cell)
    rhs = np.sqrt(norm2)
    rhs *= quad
    rhs += eval_monomials(tensor_monomials(r0 * cubic_cell), z, y, x)
    norm2 *= norm2
    frame[slices] = norm2 <= rhs
    return frame
