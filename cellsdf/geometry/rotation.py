"""Rotations in NumPy: uniform (Haar) draws on SO(3) and turning a vector about an axis.

A rotation is stored as a rotation vector (axis times angle in radians), components (z, y, x) like the arrays;
its matrix is exp(skew(vector)), as scipy's ``Rotation.from_rotvec`` and the torch
:func:`cellsdf.model.rotation.axis_angle_matrix` of training compute it.
"""

from __future__ import annotations

import numpy as np
from scipy.spatial.transform import Rotation


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
