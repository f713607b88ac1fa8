"""Placing a shape in the world and looking at it: views, placed decoders, projections, visual hulls.

Conventions, defined here once:

- **World.** A mask of N x N pixels spans [-1, 1]² in (y, x), pixel i at −1 + 2i / (N − 1), as
  :func:`cellsdf.geometry.grid.cube_grid` places grid points; the world cube [-1, 1]³ adds depth z.
- **Views.** A view with rotation matrix R (acting on (z, y, x) points) shows the object rotated by R and
  looks along z: its image is I(y, x) = max over z of O(Rᵀ·(z, y, x)). The first view of ``cellsdf lift`` is
  usually the identity, so the world frame is the frame of its mask, with the stack's z as depth.
- **Placement.** A trained model's cell fills its own cube [-1, 1]³. A hypothesis places it in the world with
  a rotation R_h (axis-angle), a scale s and a translation c: a world point p is the model point
  x = R_h·(p − c) / s, and the world SDF is s·f(z, x, t), so distances stay in world units.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from scipy import ndimage
from torch import nn

from cellsdf.decode.narrowband import decode_narrowband
from cellsdf.geometry.grid import cube_grid
from cellsdf.lift.views import View
from cellsdf.model.siren import SirenDecoder


def model_points(
    points: torch.Tensor, rotation: torch.Tensor, log_scale: torch.Tensor, translation: torch.Tensor
) -> torch.Tensor:
    """World points to the model's frame of each hypothesis: x = R_h·(p − c) / s.

    Parameters
    ----------
    points : torch.Tensor
        (K, P, 3) world points (z, y, x).
    rotation : torch.Tensor
        (K, 3, 3) rotation matrices R_h.
    log_scale : torch.Tensor
        (K,) log s.
    translation : torch.Tensor
        (K, 3) world position c of the model cube's centre.

    Returns
    -------
    torch.Tensor
        (K, P, 3) model points.
    """
    shifted = (points - translation[:, None, :]) / log_scale.exp()[:, None, None]
    return shifted @ rotation.transpose(-1, -2)


def placed_sdf(
    decoder: SirenDecoder,
    latent: torch.Tensor,
    t: torch.Tensor,
    model_xyz: torch.Tensor,
    log_scale: torch.Tensor,
    clamp: float,
) -> torch.Tensor:
    """World-unit SDF s·min(f(z, x, t), clamp) at model points, everything beyond the model's cube background.

    Beyond the training clamp the decoder only learned "far", so its values there (0.1 to 0.14 in the shipped
    models) are cut to the clamp: far points then pull on nothing. The scale converts units only; a
    gradient through it would let the fit raise every far value, and lower every background pixel's
    silhouette, by growing the shape, so the scale is fitted through the geometry (the points) alone.

    Parameters
    ----------
    decoder : SirenDecoder
        The shape decoder.
    latent : torch.Tensor
        (K, L) codes.
    t : torch.Tensor
        (K,) times.
    model_xyz : torch.Tensor
        (K, P, 3) points in the model's frame (:func:`model_points`).
    log_scale : torch.Tensor
        (K,) log s.
    clamp : float
        The model's training loss clamp (model units).

    Returns
    -------
    torch.Tensor
        (K, P) signed distances in world units.
    """
    times = t[:, None, None].expand(-1, model_xyz.shape[1], 1).to(model_xyz.dtype)
    values = decoder(latent, torch.cat([model_xyz, times], dim=-1))
    # The decoder never saw data outside its cube and can put stray blobs there (as decode_points says).
    values = torch.maximum(values, model_xyz.abs().amax(dim=-1) - 1.0).clamp(max=clamp)
    return values * log_scale.detach().exp()[:, None]


class PlacedDecoder(nn.Module):
    """A decoder seen through a view and a placement, with the :class:`SirenDecoder` calling interface.

    It maps a view's grid point q to the model point x = A·q + b and returns s·f(z, x, t), background beyond
    the model's cube, so :func:`cellsdf.decode.narrowband.decode_narrowband` and
    :func:`cellsdf.decode.dense.decode_points` decode a placed, rotated shape at any resolution unchanged.
    Pass them ``clamp`` times ``scale`` for the narrow band's block sizes, since distances are scaled too.

    Parameters
    ----------
    decoder : SirenDecoder
        The shape decoder (a trained model's, or a free field with ``latent_size`` 0).
    view : np.ndarray
        (3, 3) view rotation R_v; the decoded grid is the object rotated by R_v.
    rotation : np.ndarray
        (3, 3) placement rotation R_h.
    scale : float
        Placement scale s.
    translation : np.ndarray
        (3,) placement translation c.
    """

    def __init__(
        self,
        decoder: SirenDecoder,
        view: np.ndarray,
        rotation: np.ndarray,
        scale: float,
        translation: np.ndarray,
    ):
        super().__init__()
        self.decoder = decoder
        parameter = next(decoder.parameters())
        # q -> p = R_vᵀ q -> x = R_h (p − c) / s = (R_h R_vᵀ / s) q − R_h c / s
        matrix = np.asarray(rotation) @ np.asarray(view).T / scale
        offset = -np.asarray(rotation) @ np.asarray(translation) / scale
        self.register_buffer(
            "matrix", torch.as_tensor(matrix, dtype=parameter.dtype, device=parameter.device)
        )
        self.register_buffer(
            "offset", torch.as_tensor(offset, dtype=parameter.dtype, device=parameter.device)
        )
        self.scale = float(scale)
        self.latent_size = decoder.latent_size

    def sequence_terms(self, latent: torch.Tensor) -> list[torch.Tensor]:
        """Return the decoder's per-sequence terms (see :meth:`SirenDecoder.sequence_terms`)."""
        return self.decoder.sequence_terms(latent)

    def forward_terms(self, terms: list[torch.Tensor], coords: torch.Tensor) -> torch.Tensor:
        """World-unit SDF at (B, P, 4) view points (z, y, x, t)."""
        xyz = coords[..., :3] @ self.matrix.T + self.offset
        values = self.decoder.forward_terms(terms, torch.cat([xyz, coords[..., 3:]], dim=-1))
        return torch.maximum(values, xyz.abs().amax(dim=-1) - 1.0) * self.scale

    def forward(self, latent: torch.Tensor, coords: torch.Tensor) -> torch.Tensor:
        """As :meth:`SirenDecoder.forward`."""
        return self.forward_terms(self.sequence_terms(latent), coords)


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


def visual_hull(views: Sequence[View], size: int, rotation: np.ndarray | None = None) -> np.ndarray:
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
