"""Rotations of point coordinates, parameterised by axis-angle vectors (zero is the identity)."""

from __future__ import annotations

import torch


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
