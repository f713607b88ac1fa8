"""Placing a trained model's cell in another frame: rotation, scale and translation of its cube.

A trained model's cell fills its own cube [-1, 1]³. A placement puts it in a world (a view of
``cellsdf lift``, the data's frame of ``cellsdf fit``) with a rotation R (axis-angle), a scale s and a
translation c: a world point p is the model point x = R·(p − c) / s, and the world SDF is s·f(z, x, t), so
distances stay in world units. Every command that places a cell uses these functions.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from cellsdf.model.siren import SirenDecoder


def model_points(
    points: torch.Tensor, rotation: torch.Tensor, log_scale: torch.Tensor, translation: torch.Tensor
) -> torch.Tensor:
    """World points to the model's frame of each placed shape: x = R·(p − c) / s.

    Parameters
    ----------
    points : torch.Tensor
        (K, P, 3) world points (z, y, x).
    rotation : torch.Tensor
        (K, 3, 3) rotation matrices R.
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
        (K,) times, one per shape, or (K, P) times, one per point.
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
    times = t[:, :, None] if t.dim() == 2 else t[:, None, None].expand(-1, model_xyz.shape[1], 1)
    times = times.to(model_xyz.dtype)
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

    def forward_terms(
        self, terms: list[torch.Tensor], coords: torch.Tensor, *, hidden_dtype: torch.dtype | None = None
    ) -> torch.Tensor:
        """World-unit SDF at (B, P, 4) view points (z, y, x, t); ``hidden_dtype`` as the decoder's."""
        xyz = coords[..., :3] @ self.matrix.T + self.offset
        placed = torch.cat([xyz, coords[..., 3:]], dim=-1)
        values = self.decoder.forward_terms(terms, placed, hidden_dtype=hidden_dtype)
        return torch.maximum(values, xyz.abs().amax(dim=-1) - 1.0) * self.scale

    def forward(self, latent: torch.Tensor, coords: torch.Tensor) -> torch.Tensor:
        """As :meth:`SirenDecoder.forward`."""
        return self.forward_terms(self.sequence_terms(latent), coords)
