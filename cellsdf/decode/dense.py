"""Dense decoding: the SDF of one latent at one time on every point of a grid (the reference decoder)."""

from __future__ import annotations

import numpy as np
import torch

from cellsdf.decode.field import Field
from cellsdf.decode.options import PRECISIONS
from cellsdf.geometry.grid import cube_grid
from cellsdf.geometry.rotation import rotate


def bf16_fast(device: torch.device | str) -> bool:
    """Whether ``device`` multiplies bf16 matrices natively (faster than float32), not only by emulation.

    CPUs need the AVX512-BF16 or AMX instructions; CUDA devices report their own support.

    Examples
    --------
    >>> isinstance(bf16_fast("cpu"), bool)
    True
    """
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        return torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported()
    return False


def resolve_precision(precision: str, device: torch.device | str) -> str:
    """Return the decode precision that ``precision`` names on ``device``.

    ``auto`` is bf16 where :func:`bf16_fast`, float32 (``'32'``) elsewhere; ``'32'`` and ``'bf16'`` stay.

    Examples
    --------
    >>> resolve_precision("32", "cpu"), resolve_precision("auto", "cpu") in PRECISIONS
    ('32', True)
    """
    if precision == "auto":
        return "bf16" if bf16_fast(device) else "32"
    hidden_dtype(precision)
    return precision


def hidden_dtype(precision: str) -> torch.dtype | None:
    """Return the hidden layers' product type for a decode ``precision``: ``'32'`` None, ``'bf16'`` bfloat16.

    Raises
    ------
    ValueError
        If ``precision`` is not one of :data:`PRECISIONS`.
    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    return torch.bfloat16 if precision == "bf16" else None


@torch.no_grad()
def decode_points(
    decoder: Field,
    latent: torch.Tensor,
    t: float,
    points: np.ndarray,
    *,
    rotation: torch.Tensor | None = None,
    chunk: int = 1 << 13,
    precision: str = "32",
) -> np.ndarray:
    """Signed distances at arbitrary points for one latent and one time.

    Parameters
    ----------
    decoder : Field
        Trained decoder.
    latent : torch.Tensor
        (L,) code.
    t : float
        Time in [-1, 1] (any value: the model is continuous in time).
    points : np.ndarray
        (N, 3) normalised (z, y, x) coordinates.
    rotation : torch.Tensor, optional
        (3, 3) rotation applied to the points before decoding (the sequence's learned rotation); rotated
        points outside [-1, 1]³ are background.
    chunk : int
        Points per decoder call; bounds memory. 8192 points keep a chunk's activations (8192 x 192 floats
        per layer) in the CPU caches, which decodes about twice as fast on 2 cores as 65536-point chunks.
    precision : {'32', 'bf16'}
        ``bf16`` multiplies the hidden layers in bfloat16 (see :meth:`SirenDecoder.forward_terms
        <cellsdf.model.siren.SirenDecoder.forward_terms>`); coordinates, sums and sines stay float32.

    Returns
    -------
    np.ndarray
        float32 (N,) signed distances, negative inside.
    """
    low = hidden_dtype(precision)
    parameter = next(decoder.parameters())
    terms = decoder.sequence_terms(latent.to(parameter)[None])
    out = np.empty(len(points), np.float32)
    for start in range(0, len(points), chunk):
        block = points[start : start + chunk]
        xyz = torch.as_tensor(block, dtype=parameter.dtype, device=parameter.device)[None]
        if rotation is not None:
            xyz = rotate(xyz, rotation.to(parameter)[None])
        coords = torch.cat([xyz, torch.full_like(xyz[..., :1], t)], dim=-1)
        values = decoder.forward_terms(terms, coords, hidden_dtype=low)[0]
        # A rotated grid reaches past [-1, 1]³ in its corners, where the decoder never saw data and can put
        # stray blobs; cells lie within the cube's margin, so beyond it is background.
        values = torch.maximum(values, xyz[0].abs().amax(dim=-1) - 1.0)
        out[start : start + len(block)] = values.float().cpu().numpy()
    return out


def decode_dense(
    decoder: Field,
    latent: torch.Tensor,
    t: float,
    resolution: int,
    *,
    rotation: torch.Tensor | None = None,
    chunk: int = 1 << 13,
    precision: str = "32",
) -> np.ndarray:
    """Signed distances on a ``resolution``³ grid spanning [-1, 1]³.

    Parameters
    ----------
    decoder : Field
        Trained decoder.
    latent : torch.Tensor
        (L,) code.
    t : float
        Time in [-1, 1].
    resolution : int
        Grid side.
    rotation : torch.Tensor, optional
        (3, 3) rotation of the coordinates.
    chunk : int
        Points per decoder call.
    precision : {'32', 'bf16'}
        Type of the hidden layers' products (:func:`decode_points`).

    Returns
    -------
    np.ndarray
        float32 (R, R, R) SDF, axes (z, y, x); ``sdf <= 0`` is the cell.
    """
    values = decode_points(
        decoder, latent, t, cube_grid(resolution), rotation=rotation, chunk=chunk, precision=precision
    )
    return values.reshape((resolution,) * 3)
