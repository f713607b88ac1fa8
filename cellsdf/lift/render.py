"""Placing a shape in the world and looking at it: views, placed decoders, projections, visual hulls.

Conventions, defined here once:

- **World.** A mask of N x N pixels spans [-1, 1]² in (y, x), pixel i at −1 + 2i / (N − 1), as
  :func:`cellsdf.geometry.grid.cube_grid` places grid points; the world cube [-1, 1]³ adds depth z.
- **Views.** A view with rotation matrix R (acting on (z, y, x) points) shows the object rotated by R and
  looks along z: its image is I(y, x) = max over z of O(Rᵀ·(z, y, x)). The first view of ``cellsdf lift`` is
  usually the identity, so the world frame is the frame of its mask, with the stack's z as depth.
- **Placement.** A hypothesis places the model's cell in the world with a rotation R_h, a scale s and a
  translation c, as :mod:`cellsdf.model.placement` defines for every command.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from scipy import ndimage

from cellsdf.decode.narrowband import decode_narrowband
from cellsdf.geometry.grid import cube_grid
from cellsdf.lift.views import View
from cellsdf.model.placement import PlacedDecoder
from cellsdf.model.siren import SirenDecoder

# Bytes per voxel the visual hull holds at once: float64 grid, rotated grid and view points (3 x 24 bytes),
# pixel coordinates (16), the sampled mask (4) and the bool result.
HULL_BYTES_PER_VOXEL = 93


def project_volume(volume: np.ndarray, view: np.ndarray) -> np.ndarray:
    """Silhouette of a binary volume seen through a view: rotate by R_v (nearest voxel), then any along z.

    Parameters
    ----------
    volume : np.ndarray
        bool (N, N, N) on the world grid.
    view : np.ndarray
        (3, 3) view rotation R_v.

    Returns
    -------
    np.ndarray
        bool (N, N) mask.
    """
    if len(set(volume.shape)) != 1:
        raise ValueError(f"expected a cubic volume, got {volume.shape}")
    centre = (np.asarray(volume.shape) - 1) / 2.0
    view = np.asarray(view, float)
    # The view grid's point q samples the volume at p = R_vᵀ q; in index units about the centre as well.
    rotated = ndimage.affine_transform(
        volume.astype(np.uint8), view.T, offset=centre - view.T @ centre, order=0, cval=0
    )
    return rotated.any(axis=0)


def decode_view(
    decoder: SirenDecoder,
    latent: np.ndarray,
    t: float,
    placed: PlacedDecoder,
    resolution: int,
    clamp: float,
) -> np.ndarray:
    """Binary volume of a placed shape on the view's ``resolution``³ grid (narrow band).

    Parameters
    ----------
    decoder : SirenDecoder
        The decoder inside ``placed`` (supplies dtype and device).
    latent : np.ndarray
        (L,) code (empty for a free field).
    t : float
        Time.
    placed : PlacedDecoder
        The shape seen through a view.
    resolution : int
        Grid side.
    clamp : float
        Distance up to which the decoder's output is a distance, in its own units.

    Returns
    -------
    np.ndarray
        bool (R, R, R).
    """
    parameter = next(decoder.parameters())
    code = torch.as_tensor(latent, dtype=parameter.dtype, device=parameter.device)
    return decode_narrowband(placed, code, float(t), resolution, clamp=clamp * placed.scale)


def visual_hull(views: Sequence[View], size: int, *, rotation: np.ndarray | None = None) -> np.ndarray:
    """Carve the visual hull: the voxels that project inside every mask, the largest shape the views allow.

    Parameters
    ----------
    views : sequence of View
        Square masks of one size and their rotations.
    size : int
        Grid side of the result over the world cube.
    rotation : np.ndarray, optional
        (3, 3) view rotation R of the result's grid (its point q is the world point Rᵀ q); default the world.

    Returns
    -------
    np.ndarray
        bool (size, size, size).
    """
    grid = cube_grid(size)
    if rotation is not None:
        grid = grid @ np.asarray(rotation)
    inside = np.ones(len(grid), bool)
    for view in views:
        n = view.mask.shape[0]
        q = grid @ np.asarray(view.rotation).T  # the view's point of world point p is R_v p
        pixels = (q[:, 1:] + 1.0) * 0.5 * (n - 1)
        # Bilinear, not nearest: on a finer grid than the masks' the hull's outline is then smooth, not a
        # staircase of mask pixels; on the masks' own grid both are the masks' pixels.
        seen = ndimage.map_coordinates(view.mask.astype(np.float32), pixels.T, order=1, cval=0.0) >= 0.5
        inside &= seen
    return inside.reshape(size, size, size)
