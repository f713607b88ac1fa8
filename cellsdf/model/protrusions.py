"""Protrusions learned as tracks, and the field of a cell composed of a body and tubes.

A composed model keeps the measured tracks of its training cells (:mod:`cellsdf.dataset.protrusions`). To
draw a new cell it draws each protrusion from a kernel density over the tracks: a training track chosen
at random, then its place on the body, its time course, its length and its bends perturbed by noise, so
that tracks are not replayed and their arrangement on the body is new. Each protrusion is a tube (a chain
of capsules) that starts inside the body and leaves it through its surface where its direction from the
body's centre crosses it; the body's signed distance and the tubes' are joined by a smooth union, so the
cell is one piece whenever its body is.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from cellsdf.dataset.decompose import arc_lengths
from cellsdf.dataset.protrusions import principal_axes
from cellsdf.decode.dense import decode_points
from cellsdf.errors import InputError
from cellsdf.geometry.grid import cube_grid
from cellsdf.options import NONNEG

# Times at which a drawn cell's body is measured to place its tubes; tubes move linearly in between.
_KNOTS = 9
# Grid on which a drawn body is decoded to find its centre and axes.
_BODY_GRID = 32
# Samples along a ray from the body's centre when looking for its surface.
_RAY_SAMPLES = 96
# Normalised step of the finite differences of the body's normal.
_NORMAL_STEP = 0.01


@dataclass(frozen=True)
class Noise:
    """How far a drawn protrusion strays from the training track it is drawn from (kernel bandwidths).

    Attributes
    ----------
    direction : float
        Standard deviation added to the unit direction of its base from the body's centre.
    length : float
        Standard deviation of the log of the factor its length is scaled by.
    time : float
        Standard deviation of the shift of its time course, in units of t (a sequence spans 2).
    bend : float
        Standard deviation of the turn added at each point of its centreline, radians.
    """

    direction: float = 0.25
    length: float = 0.15
    time: float = 0.15
    bend: float = 0.2


def _unit(v: np.ndarray) -> np.ndarray:
    return v / max(float(np.linalg.norm(v)), 1e-12)


def truncate(points: np.ndarray, length: float) -> np.ndarray:
    """Return the first ``length`` of a polyline (empty (0, 3) when ``length`` <= 0).

    Examples
    --------
    >>> truncate(np.array([[0.0, 0, 0], [0, 0, 2], [0, 2, 2]]), 3.0).tolist()
    [[0.0, 0.0, 0.0], [0.0, 0.0, 2.0], [0.0, 1.0, 2.0]]
    """
    if length <= 0.0:
        return np.zeros((0, 3))
    arc = arc_lengths(points)
    kept = points[arc < length]
    if length < arc[-1]:
        i = int(np.searchsorted(arc, length))
        fraction = (length - arc[i - 1]) / (arc[i] - arc[i - 1])
        kept = np.concatenate([kept, [points[i - 1] + fraction * (points[i] - points[i - 1])]])
    else:
        kept = points
    return kept


def local_frame(normal: np.ndarray, up: np.ndarray) -> np.ndarray:
    """Rows (normal, e1, e2): the normal, ``up`` made perpendicular to it, and their cross product."""
    n = _unit(normal)
    e1 = up - (up @ n) * n
    if np.linalg.norm(e1) < 1e-6:
        e1 = np.eye(3)[int(np.argmin(np.abs(n)))]
        e1 = e1 - (e1 @ n) * n
    e1 = _unit(e1)
    return np.stack([n, e1, np.cross(n, e1)])


def tube_sdf(points: torch.Tensor, segments: torch.Tensor, radii: torch.Tensor) -> torch.Tensor:
    """Signed distance of (N, 3) points to a union of capsules (S, 2, 3) with radii (S,).

    Examples
    --------
    >>> seg = torch.tensor([[[0.0, 0, 0], [0, 0, 1]]])
    >>> round(float(tube_sdf(torch.tensor([[0.0, 0.5, 0.5]]), seg, torch.tensor([0.1]))[0]), 3)
    0.4
    """
    a, b = segments[:, 0], segments[:, 1]
    ab = b - a
    length2 = (ab * ab).sum(-1).clamp_min(1e-12)
    ap = points[:, None, :] - a[None]
    h = ((ap * ab[None]).sum(-1) / length2).clamp(0.0, 1.0)
    distance = (ap - h[..., None] * ab[None]).norm(dim=-1) - radii[None]
    return distance.min(dim=1).values


def smooth_union(a: torch.Tensor, b: torch.Tensor, k: float) -> torch.Tensor:
    """Polynomial smooth minimum of two signed distances (blend width ``k``; at most ``k / 4`` below min)."""
    h = (k - (a - b).abs()).clamp_min(0.0) / k
    return torch.minimum(a, b) - h * h * k / 4


@dataclass
class TrackShape:
    """One training track as the density draws from it (normalised units, t in [-1, 1]).

    Attributes
    ----------
    direction : np.ndarray
        (3,) unit direction of its base from the body's centre, in the body's axes (longest first).
    times, lengths, branch_lengths : np.ndarray
        Its frames' times and its and its branch's lengths then (0 where not seen).
    shape : np.ndarray
        (K - 1, 3) its centreline at its longest, from its base, in its local frame (normal, e1, e2).
    branch : np.ndarray or None
        (K - 1, 3) its branch from where it leaves, in the same frame; ``joint`` the arc length there.
    joint : float
    radius : float
    """

    direction: np.ndarray
    times: np.ndarray
    lengths: np.ndarray
    branch_lengths: np.ndarray
    shape: np.ndarray
    branch: np.ndarray | None
    joint: float
    radius: float


def _length(points: object) -> float:
    return float(arc_lengths(np.asarray(points, float))[-1])


def track_shapes(sequence: dict) -> list[TrackShape]:
    """Describe a sequence's measured tracks (:func:`cellsdf.dataset.protrusions.sequence_tracks`)."""
    times = np.asarray(sequence["times"], float)
    centres = np.asarray(sequence["body_centre"], float)
    axes = np.asarray(sequence["body_axes"], float)
    shapes = []
    for track in sequence["tracks"]:
        frames = np.asarray(track["frames"], int)
        paths = [np.asarray(f["path"], float) for f in track["frame"]]
        lengths = np.array([_length(p) for p in paths])
        k = int(np.argmax(lengths))
        frame = int(frames[k])
        path = paths[k]
        basis = local_frame(np.asarray(track["frame"][k]["normal"], float), axes[frame][2])
        branch, joint, branch_lengths = None, 0.0, np.zeros(len(frames))
        raw = [f["branch"] for f in track["frame"]]
        seen = [i for i, b in enumerate(raw) if b is not None]
        if seen:
            best = max(seen, key=lambda i: _length(raw[i]))
            b = np.asarray(raw[best], float)
            joint = float(arc_lengths(path)[int(np.argmin(np.linalg.norm(path - b[0], axis=1)))])
            branch = (b[1:] - b[0]) @ basis.T
            branch_lengths = np.array([0.0 if r is None else _length(r) for r in raw])
        shapes.append(
            TrackShape(
                direction=_unit(axes[frame] @ (path[0] - centres[frame])),
                times=times[frames],
                lengths=lengths,
                branch_lengths=branch_lengths,
                shape=(path[1:] - path[0]) @ basis.T,
                branch=branch,
                joint=joint,
                radius=float(np.median([f["radius"] for f in track["frame"]])),
            )
        )
    return shapes


def _bent(shape: np.ndarray, rng: np.random.Generator, bend: float) -> np.ndarray:
    """Turn each step of a polyline (from the origin) by a random small rotation, keeping its lengths."""
    steps = np.diff(np.concatenate([np.zeros((1, 3)), shape]), axis=0)
    turned, direction_noise = [], np.zeros(3)
    for step in steps:
        direction_noise = direction_noise + bend * rng.normal(size=3)
        size = float(np.linalg.norm(step))
        turned.append(size * _unit(_unit(step) + direction_noise))
    return np.cumsum(turned, axis=0)


def _profile(t: float, times: np.ndarray, lengths: np.ndarray, first: float) -> float:
    """Length at ``t`` of a track seen at ``times``: 0 up to one frame before it is first seen."""
    if len(times) > 1:
        before = times[0] - (times[1] - times[0])
        return float(np.interp(t, np.concatenate([[before], times]), np.concatenate([[0.0], lengths])))
    return first if t >= times[0] else 0.0


@dataclass
class DrawnTrack:
    """A new protrusion: a training track's description moved and perturbed."""

    source: TrackShape
    direction: np.ndarray
    shift: float
    factor: float
    shape: np.ndarray
    branch: np.ndarray | None

    def lengths(self, t: float) -> tuple[float, float]:
        """Its length and its branch's length at ``t``."""
        s = self.source
        here = t - self.shift
        main = self.factor * _profile(here, s.times, s.lengths, float(s.lengths[0]))
        side = self.factor * _profile(here, s.times, s.branch_lengths, float(s.branch_lengths[0]))
        return main, side


@dataclass
class ProtrusionModel:
    """The protrusions of a composed model: its training cells' tracks and how new ones are drawn.

    Parameters
    ----------
    sequences : list of dict
        Measured tracks per training sequence, in latent order
        (:func:`cellsdf.dataset.protrusions.measure_tracks`).
    settings : dict
        ``radius``, ``reach``, ``gate`` (µm: how they were measured), ``blend`` (normalised width of the
        smooth union) and ``noise`` (:class:`Noise` fields).
    """

    sequences: list[dict]
    settings: dict
    shapes: list[TrackShape] = field(init=False)
    counts: np.ndarray = field(init=False)

    def __post_init__(self):
        per_sequence = [track_shapes(s) for s in self.sequences]
        self.shapes = [shape for shapes in per_sequence for shape in shapes]
        self.counts = np.array([len(shapes) for shapes in per_sequence])

    @property
    def noise(self) -> Noise:
        """Return the kernel bandwidths."""
        return Noise(**self.settings.get("noise", {}))

    def draw(self, rng: np.random.Generator, *, count: int | None = None) -> list[DrawnTrack]:
        """Draw a new cell's protrusions: as many as a random training cell has, each from a random track."""
        noise = self.noise
        count = int(rng.choice(self.counts)) if count is None else count
        drawn = []
        for _ in range(count):
            source = self.shapes[int(rng.integers(len(self.shapes)))]
            # The body's axes have no sign: a track's mirror images across them are as likely.
            flips = rng.choice([-1.0, 1.0], size=3)
            direction = _unit(source.direction * flips + noise.direction * rng.normal(size=3))
            factor = float(np.exp(noise.length * rng.normal()))
            drawn.append(
                DrawnTrack(
                    source=source,
                    direction=direction,
                    shift=float(noise.time * rng.normal()),
                    factor=factor,
                    shape=factor * _bent(source.shape, rng, noise.bend),
                    branch=None if source.branch is None else factor * _bent(source.branch, rng, noise.bend),
                )
            )
        return drawn

    def training_tubes(self, index: int, rotation: np.ndarray | None = None) -> FrameTubes:
        """Return training sequence ``index``'s measured tubes, turned by ``rotation`` to the decoder's frame.

        Each centreline starts inside the body, twice its radius deep along the body's normal at its base.
        """
        record = self.sequences[index]
        turn = np.eye(3) if rotation is None else np.asarray(rotation, float)
        frames: list[list[tuple[np.ndarray, float]]] = [[] for _ in record["times"]]
        for track in record["tracks"]:
            for k, measured in zip(track["frames"], track["frame"], strict=True):
                path = np.asarray(measured["path"], float)
                radius = float(measured["radius"])
                inner = path[0] - 2.0 * radius * np.asarray(measured["normal"], float)
                frames[k].append((np.concatenate([[inner], path]) @ turn.T, radius))
                if measured["branch"] is not None:
                    frames[k].append((np.asarray(measured["branch"], float) @ turn.T, radius))
        return FrameTubes(np.asarray(record["times"], float), frames)

    def to_file(self) -> dict:
        """Return the model file's ``protrusions`` entry (plain containers, as safe loading reads)."""
        return {"settings": self.settings, "sequences": self.sequences}

    @classmethod
    def from_file(cls, entry: object, source: str | Path) -> ProtrusionModel:
        """Read a model file's ``protrusions`` entry, checking its shape; InputError naming ``source``."""
        if not isinstance(entry, dict) or not isinstance(entry.get("sequences"), list):
            raise InputError(source, "protrusions: must be a mapping with a list of sequences")
        settings = entry.get("settings")
        if not isinstance(settings, dict):
            raise InputError(source, "protrusions.settings: must be a mapping")
        blend = settings.get("blend")
        if not (isinstance(blend, (int, float)) and 0 < blend < 1):
            raise InputError(source, f"protrusions.settings.blend: must be a number in (0, 1), got {blend!r}")
        try:
            noise = Noise(**settings.get("noise", {}))
            model = cls(entry["sequences"], settings)
        except (KeyError, TypeError, ValueError, IndexError) as err:
            raise InputError(source, f"protrusions: malformed tracks ({type(err).__name__}: {err})") from None
        for name, value in vars(noise).items():
            NONNEG(f"protrusions.settings.noise.{name}", value)
        if not model.shapes:
            raise InputError(source, "protrusions: no tracks to draw from")
        for i, shape in enumerate(model.shapes):
            numbers = [shape.direction, shape.times, shape.lengths, shape.branch_lengths, shape.shape]
            numbers += [] if shape.branch is None else [shape.branch]
            if not (all(np.isfinite(a).all() for a in numbers) and 0 < shape.radius < 1):
                raise InputError(source, f"protrusions: track {i} holds NaN, infinite or out-of-range values")
        return model


def code_rng(latent: np.ndarray) -> np.random.Generator:
    """Return the generator of a drawn cell's protrusions, seeded by its body code: one code, one cell."""
    digest = hashlib.sha256(np.ascontiguousarray(latent, np.float32).tobytes()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "little"))


def _segments(polylines: list[tuple[np.ndarray, float]]) -> tuple[np.ndarray, np.ndarray]:
    """Capsule segments (S, 2, 3) and radii (S,) of polylines with their radii."""
    kept = [(p, r) for p, r in polylines if len(p) >= 2]
    if not kept:
        return np.zeros((0, 2, 3)), np.zeros(0)
    segments = np.concatenate([np.stack([p[:-1], p[1:]], axis=1) for p, _ in kept])
    radii = np.concatenate([np.full(len(p) - 1, r) for p, r in kept])
    return segments, radii


class FrameTubes:
    """Measured tubes of a training sequence: each frame's polylines, used from the nearest frame's time.

    Parameters
    ----------
    times : np.ndarray
        (T,) the frames' times.
    frames : list of list of (np.ndarray, float)
        Per frame, the polylines (starting inside the body) and their radii, in the decoder's frame.
    """

    def __init__(self, times: np.ndarray, frames: list[list[tuple[np.ndarray, float]]]):
        self.times = np.asarray(times, float)
        self.frames = frames

    def segments(self, t: float) -> tuple[np.ndarray, np.ndarray]:
        """(S, 2, 3) capsule segments and (S,) radii at time ``t``."""
        return _segments(self.frames[int(np.argmin(np.abs(self.times - t)))])


class DrawnTubes:
    """Drawn tracks placed on a body: their whole paths at knot times, grown to their lengths at any time.

    Parameters
    ----------
    knots : np.ndarray
        (N,) times at which the paths were placed.
    tracks : list of DrawnTrack
        The drawn tracks (their lengths over time).
    paths : list of list of (np.ndarray, np.ndarray or None)
        Per knot and track, the whole path ((K + 1, 3): a point inside the body, the base, the centreline)
        and the whole branch from its joint ((K, 3) or None), in the decoder's frame.
    """

    def __init__(self, knots: np.ndarray, tracks: list[DrawnTrack], paths: list[list[tuple]]):
        self.knots = np.asarray(knots, float)
        self.tracks = tracks
        self.paths = paths

    def segments(self, t: float) -> tuple[np.ndarray, np.ndarray]:
        """(S, 2, 3) capsule segments and (S,) radii at time ``t``."""
        k = int(np.clip(np.searchsorted(self.knots, t) - 1, 0, len(self.knots) - 2))
        w = float(np.clip((t - self.knots[k]) / (self.knots[k + 1] - self.knots[k]), 0.0, 1.0))
        polylines = []
        for i, track in enumerate(self.tracks):
            main, side = track.lengths(t)
            if main <= 0:
                continue
            (path_a, branch_a), (path_b, branch_b) = self.paths[k][i], self.paths[k + 1][i]
            path = (1 - w) * path_a + w * path_b
            radius = track.source.radius
            polylines.append((np.concatenate([path[:1], truncate(path[1:], main)]), radius))
            if branch_a is not None and side > 0 and track.source.joint * track.factor < main:
                polylines.append((truncate((1 - w) * branch_a + w * branch_b, side), radius))
        return _segments(polylines)


class ComposedField(torch.nn.Module):
    """A body field joined with tubes by a smooth union: a :class:`~cellsdf.decode.field.Field`.

    Parameters
    ----------
    body : Field
        The auto-decoder's SIREN (or any field) of the body.
    tubes : FrameTubes or DrawnTubes
        The tubes over time, in the body field's frame.
    blend : float
        Width of the smooth union, normalised units.
    """

    def __init__(self, body: torch.nn.Module, tubes: FrameTubes | DrawnTubes, blend: float):
        super().__init__()
        self.body = body
        self.tubes = tubes
        self.blend = blend
        self.latent_size = body.latent_size

    def sequence_terms(self, latent: torch.Tensor) -> list[torch.Tensor]:
        """Return the body's per-sequence terms."""
        return self.body.sequence_terms(latent)

    def forward_terms(
        self, terms: list[torch.Tensor], coords: torch.Tensor, *, hidden_dtype: torch.dtype | None = None
    ) -> torch.Tensor:
        """Signed distances (B, P) of the cell at (B, P, 4) points (z, y, x, t)."""
        body = self.body.forward_terms(terms, coords, hidden_dtype=hidden_dtype)
        flat = coords.reshape(-1, 4)
        out = body.reshape(-1).clone()
        # Points are decoded frame by frame, so a call holds one time or a few.
        for t in torch.unique(flat[:, 3]):
            rows = flat[:, 3] == t
            segments, radii = self.tubes.segments(float(t))
            if len(radii) == 0:
                continue
            tubes = tube_sdf(
                flat[rows, :3].float(),
                torch.as_tensor(segments, dtype=torch.float32, device=flat.device),
                torch.as_tensor(radii, dtype=torch.float32, device=flat.device),
            )
            out[rows] = smooth_union(out[rows].float(), tubes, self.blend).to(out.dtype)
        return out.reshape(body.shape)


def _surface_point(
    body: torch.nn.Module, latent: torch.Tensor, centre: np.ndarray, direction: np.ndarray, t: float
) -> np.ndarray:
    """Return the first point outside the body along a ray from its centre (the ray's end when none is)."""
    steps = np.linspace(0.0, 2.0, _RAY_SAMPLES)[:, None]
    ray = np.clip(centre + steps * direction, -1.0, 1.0)
    values = decode_points(body, latent, t, ray)
    outside = np.flatnonzero(values > 0)
    if len(outside) == 0:
        return ray[-1]
    i = int(outside[0])
    if i == 0:
        return ray[0]
    # The sign changes between samples i - 1 and i: place the surface linearly between them.
    w = values[i - 1] / (values[i - 1] - values[i])
    return ray[i - 1] + w * (ray[i] - ray[i - 1])


def _normal(body: torch.nn.Module, latent: torch.Tensor, point: np.ndarray, t: float) -> np.ndarray:
    offsets = np.concatenate([np.eye(3), -np.eye(3)]) * _NORMAL_STEP
    values = decode_points(body, latent, t, point + offsets)
    return _unit(values[:3] - values[3:])


def drawn_tubes(
    body: torch.nn.Module, latent: torch.Tensor, tracks: list[DrawnTrack], *, knots: int = _KNOTS
) -> DrawnTubes:
    """Place drawn tracks on a body: at each knot time, find the body's centre, its surface and normals.

    The body's axes are measured once over all knots (so that a direction keeps its meaning over time), its
    centre at each knot. A tube starts inside the body, twice its radius and a coarse voxel deep along the
    normal, so that it touches the body.

    Parameters
    ----------
    body : Field
        The body's field (the auto-decoder's SIREN).
    latent : torch.Tensor
        (L,) the body's code.
    tracks : list of DrawnTrack
        From :meth:`ProtrusionModel.draw`.
    knots : int
        Times over [-1, 1] at which the body is measured.

    Returns
    -------
    DrawnTubes
    """
    grid = cube_grid(_BODY_GRID).reshape(-1, 3)
    times = np.linspace(-1.0, 1.0, knots)
    inside = [grid[decode_points(body, latent, float(t), grid) <= 0] for t in times]
    if any(len(points) == 0 for points in inside):
        # No body to grow from: the cell is its (empty) body, and the frame check says so.
        return DrawnTubes(times, [], [[] for _ in times])
    axes = principal_axes(np.concatenate([points - points.mean(axis=0) for points in inside]))
    paths = []
    for t, points in zip(times, inside, strict=True):
        centre = points.mean(axis=0)
        row = []
        for track in tracks:
            base = _surface_point(body, latent, centre, _unit(track.direction @ axes), float(t))
            basis = local_frame(_normal(body, latent, base, float(t)), axes[2])
            depth = 2.0 * track.source.radius + 2.0 / _BODY_GRID
            path = np.concatenate([[np.zeros(3)], track.shape]) @ basis + base
            branch = None
            if track.branch is not None:
                joint = truncate(path, max(track.source.joint * track.factor, 1e-9))[-1]
                branch = np.concatenate([[np.zeros(3)], track.branch]) @ basis + joint
            row.append((np.concatenate([[base - depth * basis[0]], path]), branch))
        paths.append(row)
    return DrawnTubes(times, tracks, paths)
