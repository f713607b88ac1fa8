"""A549-like cells: a flattened body with thin filopodia that grow, bend and branch over time.

The body is the smooth union of a large oblate ellipsoid and one or two smaller drifting lobes, all
flattened along a common normal (the substrate normal, tilted a little from z). Each filopodium is
a chain of capsules along a bent polyline that starts inside the main ellipsoid, leaves it
through its rim and grows outwards at a constant speed from its own start time; some carry a
branch that starts growing once the parent has passed the branch point.

Filopodium radii are drawn as 1.5-3 voxels of a 256³ grid. On coarser grids that would be less than
a voxel, so the radius used is ``max(radius, one voxel of the grid being drawn)``: thinner tubes
would break into pieces or vanish in the sampling, and a one-voxel radius keeps them visible and
26-connected. This is the only place where a shape depends on the grid size; everything else is in
normalised coordinates.
"""

from __future__ import annotations

import numpy as np

from cellsdf.geometry.grid import grid_step
from cellsdf.geometry.rotation import rotate_about
from cellsdf.simulate._primitives import (
    bbox_slices,
    box_axes,
    capsule,
    eval_monomials,
    frame_time,
    paint,
    smooth_min,
    tensor_monomials,
    unit,
)

# Polylines stay inside this box, so tube surfaces keep a margin of more than 8 % of the grid.
_TUBE_LIMIT = 0.80
# Body and lobes (including their drift) stay inside this radius, leaving room for filopodia.
_BODY_LIMIT = 0.64
_VOXEL_AT_256 = 2.0 / 255


def _ellipsoid(centre: np.ndarray, axes: np.ndarray, semi: np.ndarray, drift: np.ndarray) -> dict:
    """Record of an ellipsoid with rows of ``axes`` as principal directions and semi-axes ``semi``."""
    return {
        "centre": centre.tolist(),
        "matrix": (axes / semi[:, None]).tolist(),
        "drift": drift.tolist(),
    }


def _draw_body(rng: np.random.Generator) -> tuple[dict, np.ndarray, np.ndarray]:
    """Draw the body; return its record, the main ellipsoid's frame (rows e1, e2, normal) and semi-axes."""
    tilt = rng.normal(size=3)
    tilt[0] = 0.0
    normal = unit(np.array([1.0, 0.0, 0.0]) + rng.uniform(0.0, 0.25) * unit(tilt))
    first = rng.normal(size=3)
    first = unit(first - (first @ normal) * normal)
    frame = np.stack([first, np.cross(normal, first), normal])
    long_axis = rng.uniform(0.34, 0.44)
    semi = np.array([long_axis, long_axis * rng.uniform(0.7, 0.95), rng.uniform(0.14, 0.19)])
    centre = rng.uniform(-0.03, 0.03, size=3)
    ellipsoids = [_ellipsoid(centre, frame, semi, np.zeros(3))]
    for _ in range(int(rng.integers(1, 3))):
        angle, spin = rng.uniform(0.0, 2 * np.pi, size=2)
        direction = np.cos(angle) * frame[0] + np.sin(angle) * frame[1]
        lobe_axes = np.stack(
            [rotate_about(frame[0], normal, spin), rotate_about(frame[1], normal, spin), normal]
        )
        lobe_long = rng.uniform(0.14, 0.22)
        lobe_semi = np.array(
            [lobe_long, lobe_long * rng.uniform(0.7, 1.0), semi[2] * rng.uniform(0.75, 0.95)]
        )
        drift_angle = rng.uniform(0.0, 2 * np.pi)
        drift = rng.uniform(0.0, 0.06) * (np.cos(drift_angle) * frame[0] + np.sin(drift_angle) * frame[1])
        offset = min(
            rng.uniform(0.45, 0.75) * long_axis, _BODY_LIMIT - lobe_long - np.linalg.norm(drift) - 0.06
        )
        ellipsoids.append(_ellipsoid(centre + offset * direction, lobe_axes, lobe_semi, drift))
    body = {"ellipsoids": ellipsoids, "blend": float(rng.uniform(0.06, 0.1))}
    return body, frame, semi


def _clip_polyline(points: list[np.ndarray], limit: float) -> list[np.ndarray]:
    """Cut a polyline where it first leaves the box ``|p_i| <= limit``."""
    kept = [points[0]]
    for end in points[1:]:
        start = kept[-1]
        if np.all(np.abs(end) <= limit):
            kept.append(end)
            continue
        step = end - start
        outside = np.abs(end) > limit
        fraction = np.min((np.sign(end[outside]) * limit - start[outside]) / step[outside])
        if fraction > 1e-9:
            kept.append(start + fraction * step)
        break
    return kept


def _walk(
    rng: np.random.Generator, start: np.ndarray, direction: np.ndarray, length: float, normal: np.ndarray
) -> list[np.ndarray]:
    """Bent polyline from ``start``: a random walk of directions, pulled towards the substrate plane."""
    segments = int(rng.integers(2, 6)) if length < 0.12 else int(rng.integers(3, 7))
    wiggle = rng.uniform(0.15, 0.35)
    points = [start]
    for _ in range(segments):
        points.append(points[-1] + (length / segments) * direction)
        direction = unit(direction + wiggle * rng.normal(size=3))
        direction = unit(direction - 0.5 * (direction @ normal) * normal)
    return points


def _arc_lengths(points: list[np.ndarray]) -> np.ndarray:
    """Cumulative length along a polyline, starting at 0."""
    steps = np.linalg.norm(np.diff(np.asarray(points), axis=0), axis=1)
    return np.concatenate([[0.0], np.cumsum(steps)])


def _tube(points: list[np.ndarray], radius_voxels: float, grow_from: int, start: float, speed: float) -> dict:
    """Record of one tube: the first ``grow_from`` segments are always present once it has started."""
    return {
        "points": [p.tolist() for p in points],
        "radius": float(radius_voxels * _VOXEL_AT_256),
        "grow_from": grow_from,
        "t_start": float(start),
        "speed": float(speed),
    }


def _draw_filopodium(
    rng: np.random.Generator, centre: np.ndarray, frame: np.ndarray, semi: np.ndarray
) -> list[dict]:
    """Draw one filopodium leaving the main ellipsoid, and possibly a branch of it."""
    azimuth = rng.uniform(0.0, 2 * np.pi)
    elevation = rng.uniform(-0.35, 0.35)
    on_sphere = np.array(
        [np.cos(elevation) * np.cos(azimuth), np.cos(elevation) * np.sin(azimuth), np.sin(elevation)]
    )
    surface = centre + (semi * on_sphere) @ frame
    outward = unit((on_sphere / semi) @ frame)
    normal = frame[2]
    outward = unit(outward - 0.6 * (outward @ normal) * normal)
    # Anchored deep inside the convex main ellipsoid, so the tube always touches the body.
    anchor = centre + 0.4 * (surface - centre)
    length = rng.uniform(0.18, 0.4)
    points = _clip_polyline([anchor, *_walk(rng, surface, outward, length, normal)], _TUBE_LIMIT)
    radius = rng.uniform(1.5, 3.0)
    start = rng.uniform(0.0, 0.6)
    speed = length / rng.uniform(0.25, 0.6)
    tubes = [_tube(points, radius, 1, start, speed)]

    if rng.uniform() < 0.4 and len(points) >= 4:
        joint = int(rng.integers(2, len(points) - 1))
        spread = rng.choice([-1.0, 1.0]) * rng.uniform(0.4, 0.9)
        direction = rotate_about(unit(points[joint] - points[joint - 1]), normal, spread)
        branch_length = rng.uniform(0.35, 0.6) * length
        branch = _clip_polyline(_walk(rng, points[joint], direction, branch_length, normal), _TUBE_LIMIT)
        # The branch may only start once the parent tip has passed the joint, so it is always attached.
        arc = _arc_lengths(points)
        reached = start + (arc[joint] - arc[1]) / speed
        if len(branch) >= 2:
            tubes.append(
                _tube(
                    branch,
                    rng.uniform(1.5, radius),
                    0,
                    reached + rng.uniform(0.0, 0.1),
                    branch_length / rng.uniform(0.15, 0.4),
                )
            )
    return tubes


def draw_params(rng: np.random.Generator, frames: int) -> dict:
    """Draw the parameters of one filo sequence.

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
    body, frame, semi = _draw_body(rng)
    centre = np.asarray(body["ellipsoids"][0]["centre"])
    tubes = [
        tube for _ in range(int(rng.integers(6, 12))) for tube in _draw_filopodium(rng, centre, frame, semi)
    ]
    return {"frames": frames, "body": body, "tubes": tubes}


def _ellipsoid_field(record: dict, tau: float, slices: tuple, size: int) -> np.ndarray:
    """Approximate signed distance to an ellipsoid: (radial scale factor - 1) * smallest semi-axis."""
    matrix = np.asarray(record["matrix"])
    centre = np.asarray(record["centre"]) + tau * np.asarray(record["drift"])
    z, y, x = box_axes(slices, size, centre)
    field = eval_monomials(tensor_monomials(matrix.T @ matrix), z, y, x)
    np.sqrt(field, out=field)
    field -= 1
    field *= np.float32(1 / np.linalg.norm(matrix, 2))
    return field


def _body_box(body: dict, tau: float) -> tuple[np.ndarray, np.ndarray]:
    """Normalised bounding box of the blended body (smooth union grows each part by at most blend / 4)."""
    lows, highs = [], []
    for record in body["ellipsoids"]:
        matrix = np.asarray(record["matrix"])
        centre = np.asarray(record["centre"]) + tau * np.asarray(record["drift"])
        growth = 1 + body["blend"] / 4 * np.linalg.norm(matrix, 2)
        half = 1.01 * growth * np.linalg.norm(np.linalg.inv(matrix), axis=1)
        lows.append(centre - half)
        highs.append(centre + half)
    return np.min(lows, axis=0), np.max(highs, axis=0)


def _visible_polyline(tube: dict, tau: float) -> list[np.ndarray]:
    """Part of a tube grown by time ``tau`` (empty before it starts)."""
    if tau < tube["t_start"]:
        return []
    points = [np.asarray(p) for p in tube["points"]]
    grow_from = tube["grow_from"]
    arc = _arc_lengths(points) - _arc_lengths(points)[grow_from]
    grown = tube["speed"] * (tau - tube["t_start"])
    visible = points[: grow_from + 1]
    for i in range(grow_from + 1, len(points)):
        if arc[i] <= grown:
            visible.append(points[i])
            continue
        fraction = (grown - arc[i - 1]) / (arc[i] - arc[i - 1])
        if fraction > 0:
            visible.append(points[i - 1] + fraction * (points[i] - points[i - 1]))
        break
    return visible


def render_frame(params: dict, t: int, frames: int, size: int) -> np.ndarray:
    """Rasterise frame ``t`` of a filo sequence.

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
    body = params["body"]
    frame = np.zeros((size, size, size), dtype=bool)
    slices = bbox_slices(*_body_box(body, tau), size)
    if slices is not None:
        fields = [_ellipsoid_field(record, tau, slices, size) for record in body["ellipsoids"]]
        blended = fields[0]
        for field in fields[1:]:
            blended = smooth_min(blended, field, np.float32(body["blend"]))
        paint(frame, slices, blended <= 0)
    floor = grid_step(size)
    for tube in params["tubes"]:
        polyline = _visible_polyline(tube, tau)
        radius = max(tube["radius"], floor)
        for start, end in zip(polyline[:-1], polyline[1:], strict=True):
            piece = capsule(start, end, radius, size)
            if piece is not None:
                paint(frame, *piece)
    return frame
