"""C. elegans-like cells: a cell that grows, elongates, forms a cleavage furrow and divides.

The cell is the smooth union (polynomial smooth minimum, blend width ``k``) of two balls of radius
``R`` centred at ``c ± d n`` on a slowly turning division axis ``n``. In units of ``R`` the shape
depends only on ``delta = d / R`` and ``kappa = k / R``: a single ball for ``delta = 0``, an
elongated cell with a deepening furrow as ``delta`` grows, and two daughters once
``delta > 1 + kappa / 4``. On the plane between the balls and on the axis the surface has closed forms

    neck radius  = R sqrt((1 + kappa / 4)² - delta²)                  (before division)
    daughter gap = 2 R sqrt(kappa eps),  eps = delta - 1 - kappa / 4   (after, while the gap < k)

``R`` follows from the target volume, which grows linearly in time. After division the blend
shrinks, so the daughters round up while their gap widens.

Everything is in normalised coordinates except two sizes given in voxels of the grid being drawn:
before the division frame the neck radius is at least 1.5 voxels and from it on the gap is at
least 2.5 voxels (the closed forms above make both exact). Without them a coarse grid could break
the neck early or bridge the gap late, and the voxel components would not match the recorded
division frame. They only change frames next to the division, and mostly on coarse grids.
"""

from __future__ import annotations

import math

import numpy as np

from cellsdf.geometry.grid import grid_step
from cellsdf.simulate._primitives import bbox_slices, box_axes, frame_time, smooth_min, unit

_REACH_LIMIT = 0.78
# A voxel neck narrower than ~1 voxel may break apart, and a gap narrower than sqrt(3) voxels may be
# bridged by diagonal neighbours; these floors, in voxels of the grid being drawn, keep the voxel
# components in step with the recorded division frame.
_NECK_VOXELS = 1.5
_GAP_VOXELS = 2.5


def _division_frame(rng: np.random.Generator, frames: int) -> int | None:
    """First frame with two daughters: 35-70 % into the sequence, always with a frame on either side."""
    if frames < 2:
        return None
    first = min(max(1, math.ceil(0.35 * frames)), frames - 1)
    last = max(first, min(frames - 1, math.floor(0.7 * frames)))
    return int(rng.integers(first, last + 1))


def draw_params(rng: np.random.Generator, frames: int) -> dict:
    """Draw the parameters of one cele sequence.

    Parameters
    ----------
    rng : np.random.Generator
        Source of all randomness.
    frames : int
        Number of frames; the division frame is drawn from it.

    Returns
    -------
    dict
        JSON-serialisable parameters consumed by :func:`render_frame`; ``division_frame`` is None
        when ``frames == 1``.
    """
    division = _division_frame(rng, frames)
    axis = unit(rng.normal(size=3))
    turn = rng.normal(size=3)
    turn -= (turn @ axis) * axis
    turn *= rng.uniform(0.0, 0.3) / np.linalg.norm(turn)
    blend = rng.uniform(0.45, 0.7)
    blend_end = blend * rng.uniform(0.6, 0.9)
    params = {
        "frames": frames,
        "division_frame": division,
        # Continuous time of the division, half-way between the last mother and the first daughter frame.
        "tau_division": None if division is None else (division - 0.5) / (frames - 1),
        "equivalent_radius": float(rng.uniform(0.28, 0.34)),
        "volume_growth": float(rng.uniform(1.15, 1.4)),
        "centre": rng.uniform(-0.03, 0.03, size=3).tolist(),
        "centre_drift": rng.uniform(-0.03, 0.03, size=3).tolist(),
        "axis": axis.tolist(),
        "axis_turn": turn.tolist(),
        "delta_start": float(rng.uniform(0.0, 0.3)),
        "elongation_exponent": float(rng.uniform(1.2, 2.0)),
        "blend_start": float(blend),
        "blend_end": float(blend_end),
        # Final separation chosen through the daughters' on-axis gap, in units of the ball radius.
        "separation_end": _min_separation(rng.uniform(0.12, 0.3), blend_end),
    }
    # The reach is checked before the voxel floors; on grids of 32 and up they add at most ~0.04.
    reach = max(_reach(params, tau) for tau in np.linspace(0.0, 1.0, 41))
    centre, drift = np.asarray(params["centre"]), np.asarray(params["centre_drift"])
    room = _REACH_LIMIT - float(np.max(np.maximum(np.abs(centre), np.abs(centre + drift))))
    params["equivalent_radius"] *= min(1.0, room / reach)
    return params


def _state(params: dict, tau: float) -> tuple[float, float]:
    """Unit-free shape ``(delta, kappa)`` at time ``tau``, before any grid-dependent adjustment."""
    tau_div = params["tau_division"]
    if tau_div is None or tau < tau_div:
        delta_div = 1 + params["blend_start"] / 4
        progress = 0.0 if tau_div is None else (tau / tau_div) ** params["elongation_exponent"]
        return params["delta_start"] + (delta_div - params["delta_start"]) * progress, params["blend_start"]
    # Square-root easing: the daughters part and round up quickly at first, then settle.
    ease = math.sqrt((tau - tau_div) / (1 - tau_div))
    kappa = params["blend_start"] + (params["blend_end"] - params["blend_start"]) * ease
    return 1 + kappa / 4 + params["separation_end"] * ease, kappa


def _axial_reach(delta: float, kappa: float) -> float:
    """Farthest extent from the centre along the axis, in units of ``R``."""
    return delta + 1 + kappa / 4


def _reach(params: dict, tau: float) -> float:
    """Farthest normalised extent from the centre at time ``tau``."""
    delta, kappa = _state(params, tau)
    return _scale(params, tau, delta, kappa) * _axial_reach(delta, kappa)


def _unit_volume(delta: float, kappa: float) -> float:
    """Volume of the shape with ``R = 1``, integrated over its (axial, radial) half-profile."""
    n_axial, n_radial = 400, 200
    axial_max, radial_max = _axial_reach(delta, kappa), 1 + kappa / 4
    s = (np.arange(n_axial) + 0.5) * (axial_max / n_axial)
    w = (np.arange(n_radial) + 0.5) * (radial_max / n_radial)
    field = smooth_min(
        np.hypot(s[:, None] - delta, w[None, :]) - 1, np.hypot(s[:, None] + delta, w[None, :]) - 1, kappa
    )
    ring_areas = 2 * np.pi * w[None, :] * (axial_max / n_axial) * (radial_max / n_radial)
    return 2 * float(np.sum(ring_areas * (field <= 0)))


def _scale(params: dict, tau: float, delta: float, kappa: float) -> float:
    """Ball radius ``R`` that gives the target volume, which grows linearly in time."""
    volume = 4 / 3 * np.pi * params["equivalent_radius"] ** 3 * (1 + (params["volume_growth"] - 1) * tau)
    return (volume / _unit_volume(delta, kappa)) ** (1 / 3)


def _min_separation(gap: float, kappa: float) -> float:
    """Smallest ``eps = delta - 1 - kappa / 4`` whose on-axis gap is at least ``gap`` (units of ``R``)."""
    if gap < kappa:
        return gap * gap / (4 * kappa)
    return gap / 2 - kappa / 4


def _grid_delta(delta: float, kappa: float, radius: float, divided: bool, size: int) -> float:
    """Adjust ``delta`` so that the neck or gap is resolvable at this grid size."""
    step = grid_step(size)
    if divided:
        return max(delta, 1 + kappa / 4 + _min_separation(_GAP_VOXELS * step / radius, kappa))
    neck = _NECK_VOXELS * step / radius
    return min(delta, math.sqrt(max((1 + kappa / 4) ** 2 - neck * neck, 0.0)))


def _distance_to(z: np.ndarray, y: np.ndarray, x: np.ndarray, point: np.ndarray) -> np.ndarray:
    """Euclidean distance from ``point`` on the grid spanned by three 1-D axes."""
    plane = (z[:, None] - point[0]) ** 2 + (y[None, :] - point[1]) ** 2
    dist = plane[:, :, None] + (x - point[2]) ** 2
    return np.sqrt(dist, out=dist)


def render_frame(params: dict, t: int, frames: int, size: int) -> np.ndarray:
    """Rasterise frame ``t`` of a cele sequence.

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
        Boolean mask, shape (S, S, S), axes (z, y, x): one component before the division frame,
        two from it on.
    """
    tau = frame_time(t, frames)
    delta, kappa = _state(params, tau)
    radius = _scale(params, tau, delta, kappa)
    divided = params["division_frame"] is not None and t >= params["division_frame"]
    delta = _grid_delta(delta, kappa, radius, divided, size)
    axis = unit(np.asarray(params["axis"]) + tau * np.asarray(params["axis_turn"]))
    centre = np.asarray(params["centre"]) + tau * np.asarray(params["centre_drift"])

    frame = np.zeros((size, size, size), dtype=bool)
    axial, radial = radius * _axial_reach(delta, kappa), radius * (1 + kappa / 4)
    half = 1.01 * (axial * np.abs(axis) + radial * np.sqrt(1 - axis**2))
    slices = bbox_slices(centre - half, centre + half, size)
    if slices is None:
        return frame
    z, y, x = box_axes(slices, size, centre)
    offset = (radius * delta * axis).astype(np.float32)
    first = _distance_to(z, y, x, offset)
    first -= np.float32(radius)
    second = _distance_to(z, y, x, -offset)
    second -= np.float32(radius)
    frame[slices] = smooth_min(first, second, np.float32(radius * kappa)) <= 0
    return frame
