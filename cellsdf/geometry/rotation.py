"""Rotations: uniform (Haar) draws on SO(3), turning a vector about an axis, and the torch rotation of points.

A rotation is stored as a rotation vector (axis times angle in radians), components (z, y, x) like the arrays;
its matrix is exp(skew(vector)), as scipy's ``Rotation.from_rotvec`` and the torch
:func:`axis_angle_matrix` of training computes it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from scipy.spatial.transform import Rotation

if TYPE_CHECKING:
    import torch


def uniform_rotation(rng: np.random.Generator) -> np.ndarray:
    """Draw a rotation uniformly (Haar measure) on SO(3), as a rotation vector.

    Uniform Euler angles are not uniform rotations; this normalises a 4D Gaussian draw into a unit quaternion,
    which is uniform on the 3-sphere and so gives uniform rotations (scipy's ``Rotation.random``).

    Parameters
    ----------
    rng : numpy.random.Generator
        Source of randomness.

    Returns
    -------
    np.ndarray
        float64 (3,) rotation vector: axis times angle in radians, the angle in [0, π].

    Examples
    --------
    >>> vector = uniform_rotation(np.random.default_rng(0))
    >>> vector.shape, bool(np.linalg.norm(vector) <= np.pi)
    ((3,), True)
    """
    return Rotation.random(random_state=rng).as_rotvec()


def rotate_about(v: np.ndarray, axis: np.ndarray, angle: float) -> np.ndarray:
    """Rotate ``v`` by ``angle`` radians about the unit vector ``axis`` (Rodrigues).

    Parameters
    ----------
    v, axis : np.ndarray
        Shape (3,) vectors; ``axis`` must have unit length.
    angle : float
        Rotation angle in radians.

    Returns
    -------
    np.ndarray
        The rotated vector.

    Examples
    --------
    >>> turned = rotate_about(np.array([0.0, 1.0, 0.0]), np.array([1.0, 0.0, 0.0]), np.pi / 2)
    >>> np.round(turned, 12).tolist()
    [0.0, 0.0, 1.0]
    """
    cos, sin = np.cos(angle), np.sin(angle)
    return v * cos + np.cross(axis, v) * sin + axis * (axis @ v) * (1 - cos)


def axis_angle_matrix(vectors: torch.Tensor) -> torch.Tensor:
    """Rotation matrices from axis-angle vectors.

    Parameters
    ----------
    vectors : torch.Tensor
        (..., 3) rotation axis times angle (radians), in the (z, y, x) frame of the coordinates.

    Returns
    -------
    torch.Tensor
        (..., 3, 3) rotation matrices; differentiable everywhere, including at zero.
    """
    # torch is imported here, not above: drawing rotations (and so the command line's option checks, which
    # import the samplers) must not load it.
    import torch

    a, b, c = vectors.unbind(-1)
    zero = torch.zeros_like(a)
    skew = torch.stack([zero, -c, b, c, zero, -a, -b, a, zero], dim=-1).reshape(*vectors.shape[:-1], 3, 3)
    # The exponential of the skew matrix is exact and smooth at the identity, unlike Rodrigues' formula.
    return torch.linalg.matrix_exp(skew)


def rotate(points: torch.Tensor, matrices: torch.Tensor) -> torch.Tensor:
    """Rotate each batch item's points by its matrix.

    Parameters
    ----------
    points : torch.Tensor
        (B, P, 3) points.
    matrices : torch.Tensor
        (B, 3, 3) rotations.

    Returns
    -------
    torch.Tensor
        (B, P, 3) points R·p.
    """
    return points @ matrices.transpose(-1, -2)
