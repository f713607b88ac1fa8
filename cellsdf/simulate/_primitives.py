"""Shared geometry for the simulated cell lines.

Every shape lives in normalised coordinates: each grid axis spans [-1, 1] and voxel ``i`` of a
grid of ``size`` voxels sits at ``-1 + 2 i / (size - 1)``. Primitives are evaluated only inside
their own bounding box so that a 256³ frame costs little more than the cell's own volume.
"""

from __future__ import annotations

import itertools

import numpy as np

from cellsdf.geometry.grid import grid_step

Slices = tuple[slice, slice, slice]


def frame_time(t: int, frames: int) -> float:
    """Normalised time of frame ``t``: 0 for the first frame, 1 for the last.

    Parameters
    ----------
    t : int
        Frame index.
    frames : int
        Number of frames in the sequence.

    Returns
    -------
    float
        ``t / (frames - 1)``, or 0 for a single-frame sequence.
    """
    return t / (frames - 1) if frames > 1 else 0.0


def bbox_slices(lo: np.ndarray, hi: np.ndarray, size: int) -> Slices | None:
    """Voxel slices covering the normalised box ``[lo, hi]``, clipped to the grid.

    Parameters
    ----------
    lo, hi : np.ndarray
        Corners of the box, shape (3,), order (z, y, x).
    size : int
        Number of voxels per axis.

    Returns
    -------
    tuple of slice or None
        One slice per axis, or None when the box misses the grid.
    """
    scale = (size - 1) / 2.0
    first = np.maximum(np.ceil((np.asarray(lo) + 1.0) * scale - 1e-6), 0).astype(int)
    last = np.minimum(np.floor((np.asarray(hi) + 1.0) * scale + 1e-6), size - 1).astype(int)
    if np.any(last < first):
        return None
    return tuple(slice(int(a), int(b) + 1) for a, b in zip(first, last, strict=True))


def box_axes(slices: Slices, size: int, origin: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Normalised coordinates of the voxels in ``slices``, relative to ``origin``.

    Parameters
    ----------
    slices : tuple of slice
        Voxel slices along (z, y, x).
    size : int
        Number of voxels per axis.
    origin : np.ndarray
        Point subtracted from the coordinates, shape (3,).

    Returns
    -------
    tuple of np.ndarray
        Three float32 1-D arrays (z, y, x).
    """
    step = grid_step(size)
    return tuple(
        (-1.0 + step * np.arange(s.start, s.stop) - o).astype(np.float32)
        for s, o in zip(slices, origin, strict=True)
    )


def paint(frame: np.ndarray, slices: Slices, inside: np.ndarray) -> None:
    """Union ``inside`` into ``frame[slices]`` in place.

    Parameters
    ----------
    frame : np.ndarray
        Boolean frame, shape (S, S, S).
    slices : tuple of slice
        Where ``inside`` goes.
    inside : np.ndarray
        Boolean sub-volume with the shape of ``frame[slices]``.
    """
    view = frame[slices]
    np.logical_or(view, inside, out=view)


def tensor_monomials(tensor: np.ndarray) -> np.ndarray:
    """Monomial coefficients of the homogeneous polynomial ``T_ij..k p_i p_j .. p_k``.

    Parameters
    ----------
    tensor : np.ndarray
        Tensor of order 0 to 3 over the axes (z, y, x).

    Returns
    -------
    np.ndarray
        Shape (4, 4, 4); entry ``[a, b, c]`` multiplies ``z**a * y**b * x**c``.
    """
    coef = np.zeros((4, 4, 4))
    for index in itertools.product(range(3), repeat=tensor.ndim):
        coef[tuple(np.bincount(np.array(index, dtype=int), minlength=3))] += tensor[index]
    return coef


def eval_monomials(coef: np.ndarray, z: np.ndarray, y: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Evaluate a polynomial of degree <= 3 on the grid spanned by three 1-D axes.

    The (z, y) part of every power of x is collapsed into a 2-D array first, so the 3-D work is a
    Horner scheme in x: a handful of passes over the box instead of one per monomial.

    Parameters
    ----------
    coef : np.ndarray
        Shape (4, 4, 4) coefficients as returned by :func:`tensor_monomials`.
    z, y, x : np.ndarray
        1-D float32 coordinates.

    Returns
    -------
    np.ndarray
        float32 array of shape (len(z), len(y), len(x)).
    """
    powers = np.arange(4)
    zp = z.astype(np.float64)[None, :] ** powers[:, None]
    yp = y.astype(np.float64)[None, :] ** powers[:, None]
    planes = [(zp.T @ coef[:, :, c] @ yp).astype(np.float32)[:, :, None] for c in range(4)]
    degree = max((c for c in range(4) if np.any(coef[:, :, c])), default=0)
    out = np.broadcast_to(planes[degree], (len(z), len(y), len(x))).copy()
    for c in range(degree - 1, -1, -1):
        out *= x
        out += planes[c]
    return out


def smooth_min(a: np.ndarray, b: np.ndarray, k: float) -> np.ndarray:
    """Polynomial smooth minimum of two distance-like fields (blend width ``k``).

    Parameters
    ----------
    a, b : np.ndarray
        Fields of equal shape.
    k : float
        Blend width; the result is at most ``k / 4`` below ``min(a, b)``.

    Returns
    -------
    np.ndarray
        Blended field.
    """
    h = np.maximum(k - np.abs(a - b), 0.0) / k
    return np.minimum(a, b) - (h * h) * (k / 4.0)


def capsule(p0: np.ndarray, p1: np.ndarray, radius: float, size: int) -> tuple[Slices, np.ndarray] | None:
    """Voxels within ``radius`` of the segment ``p0``-``p1``.

    Parameters
    ----------
    p0, p1 : np.ndarray
        Segment end points, shape (3,), normalised (z, y, x).
    radius : float
        Tube radius in normalised units.
    size : int
        Number of voxels per axis.

    Returns
    -------
    tuple or None
        ``(slices, inside)`` with ``inside`` a boolean sub-volume, or None when the tube misses the grid.
    """
    slices = bbox_slices(np.minimum(p0, p1) - radius, np.maximum(p0, p1) + radius, size)
    if slices is None:
        return None
    z, y, x = box_axes(slices, size, p0)
    d = (np.asarray(p1) - np.asarray(p0)).astype(np.float32)
    length2 = float(d @ d)
    along = z[:, None, None] * d[0] + y[None, :, None] * d[1] + x[None, None, :] * d[2]
    if length2 > 0:
        along = np.clip(along / length2, 0.0, 1.0)
    else:
        along = np.zeros_like(along)
    dist2 = (z[:, None, None] - along * d[0]) ** 2
    dist2 += (y[None, :, None] - along * d[1]) ** 2
    dist2 += (x[None, None, :] - along * d[2]) ** 2
    return slices, dist2 <= np.float32(radius * radius)


def random_rotation(rng: np.random.Generator) -> np.ndarray:
    """Uniformly distributed rotation matrix.

    Parameters
    ----------
    rng : np.random.Generator
        Source of randomness.

    Returns
    -------
    np.ndarray
        Shape (3, 3) orthonormal matrix with determinant +1.
    """
    # A normalised 4-D Gaussian is a uniformly distributed unit quaternion.
    w, x, y, z = unit(rng.normal(size=4))
    return np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
            [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
            [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
        ]
    )


def unit(v: np.ndarray) -> np.ndarray:
    """Vector scaled to unit length.

    Parameters
    ----------
    v : np.ndarray
        Non-zero vector.

    Returns
    -------
    np.ndarray
        ``v / |v|``.
    """
    return v / np.linalg.norm(v)


def fibonacci_sphere(n: int) -> np.ndarray:
    """Nearly uniform unit directions, usable as an equal-weight quadrature on the sphere.

    Parameters
    ----------
    n : int
        Number of directions.

    Returns
    -------
    np.ndarray
        Shape (n, 3) unit vectors.
    """
    i = np.arange(n) + 0.5
    cos_polar = 1 - 2 * i / n
    sin_polar = np.sqrt(1 - cos_polar**2)
    azimuth = np.pi * (1 + 5**0.5) * i
    return np.stack([cos_polar, sin_polar * np.cos(azimuth), sin_polar * np.sin(azimuth)], axis=1)


def keyframe_weights(n_keys: int, tau: float) -> np.ndarray:
    """Convex weights that blend keyframes placed evenly on [0, 1] with a C¹ cosine ease.

    Because the weights are non-negative and sum to one, any bound that holds for every keyframe
    also holds for the blend.

    Parameters
    ----------
    n_keys : int
        Number of keyframes (at least 1).
    tau : float
        Normalised time in [0, 1].

    Returns
    -------
    np.ndarray
        Shape (n_keys,) weights.
    """
    weights = np.zeros(n_keys)
    if n_keys == 1:
        weights[0] = 1.0
        return weights
    pos = float(np.clip(tau, 0.0, 1.0)) * (n_keys - 1)
    left = min(int(pos), n_keys - 2)
    ease = (1 - np.cos(np.pi * (pos - left))) / 2
    weights[left] = 1 - ease
    weights[left + 1] = ease
    return weights
