"""Narrow-band (hierarchical) decoding: the cell mask on a grid, decoding densely only near the surface.

The grid is cut into cubic blocks. A block whose centre lies farther from the surface than the block reaches
cannot hold both signs, so all its voxels take the centre's sign; the other blocks are split into 8 children
and tested again, down to single voxels, which are decoded exactly at their grid points. A cell's surface
touches about 1 % of a 256³ grid, so most of the grid is settled by a few thousand coarse evaluations.

The decoder's output is a distance only near the surface: training clamps the loss at ``clamp`` (0.1 by
default), so beyond it the network only learns "far enough" and its values there (about 0.1 to 0.14 in the
shipped models) say nothing about how far. A block's test is therefore only trusted for blocks whose
half-diagonal lies within the clamp, which bounds the coarse block size (:func:`default_coarse`).
"""

from __future__ import annotations

import math
import numbers

import numpy as np
import torch
from scipy import ndimage

from cellsdf.decode.dense import decode_points
from cellsdf.decode.field import Field
from cellsdf.geometry.grid import grid_axis, grid_step
from cellsdf.geometry.surface import crop_box

# Voxels whose bf16 value lies this close to the zero level are decoded again in float32. On frames of the
# three shipped models, bf16 products moved the SDF within 0.02 of the surface by at most 2.2e-3 (99.9 % of
# points by less than 1.6e-3): with 2e-3 no voxel of six 96³ frames changed sign and 8 % of the points within
# 0.02 of the surface were decoded twice; with 1e-3, 2 to 15 voxels per frame changed sign.
BF16_GUARD = 2e-3

# The 8 children of a block, as offsets in units of the child's size.
_CHILDREN = np.stack(np.meshgrid([0, 1], [0, 1], [0, 1], indexing="ij"), axis=-1).reshape(8, 3)


def block_radius(size: int, resolution: int) -> float:
    """Distance from a block's centre to its farthest voxel, in normalised units.

    Parameters
    ----------
    size : int
        Block side in voxels.
    resolution : int
        Grid side; voxels are ``2 / (resolution - 1)`` apart.

    Returns
    -------
    float
        Half the diagonal between the block's corner voxel centres; 0 for a single voxel.
    """
    # (size - 1) steps of 2 / (resolution - 1), halved; written so that the value keeps its last bit.
    return (size - 1) / (resolution - 1) * math.sqrt(3.0)


def default_coarse(resolution: int, *, clamp: float = 0.1) -> int:
    """Largest coarse block side whose half-diagonal stays within the training clamp.

    A block holding the surface has its centre within the block's radius of it. If that radius is within
    the clamp, the centre lies where the loss trained the output as a distance, so its value is small and the
    block is refined. With a larger radius the centre could lie where the output was only trained to be
    "far enough", and an over-estimate there would settle a block that holds the surface. Hence the default
    block grows with the resolution: 2 voxels at 32³, 4 at 64³, 8 at 128³ and 256³, 16 at 512³ (clamp 0.1).

    Parameters
    ----------
    resolution : int
        Grid side.
    clamp : float
        Distance (normalised units) up to which the decoder was trained to output distances.

    Returns
    -------
    int
        A power of two, at least 2.
    """
    coarse = 2
    # Blocks wider than the grid would only add levels that decode the whole grid again.
    while coarse < resolution and block_radius(2 * coarse, resolution) <= clamp:
        coarse *= 2
    return coarse


def _check(
    resolution: int, coarse: int, margin: float, chunk: int, clamp: float, rotation: torch.Tensor | None
) -> None:
    """Raise ValueError naming the first argument that is not usable."""

    def whole(value: object) -> bool:
        return isinstance(value, numbers.Integral) and not isinstance(value, bool)

    if not whole(resolution) or resolution < 2:
        raise ValueError(f"resolution must be an integer >= 2, got {resolution!r}")
    if not whole(coarse) or coarse < 2 or coarse & (coarse - 1):
        raise ValueError(f"coarse must be a power of two >= 2, got {coarse!r}")
    if not isinstance(margin, numbers.Real) or not margin > 0 or not math.isfinite(margin):
        raise ValueError(f"margin must be a finite number > 0, got {margin!r}")
    if not whole(chunk) or chunk < 1:
        raise ValueError(f"chunk must be an integer >= 1, got {chunk!r}")
    if not isinstance(clamp, numbers.Real) or not clamp > 0 or not math.isfinite(clamp):
        raise ValueError(f"clamp must be a finite number > 0, got {clamp!r}")
    if rotation is not None and tuple(rotation.shape) != (3, 3):
        raise ValueError(f"rotation must be a (3, 3) matrix, got shape {tuple(rotation.shape)}")


def _voxel_sdf(
    decoder: Field,
    latent: torch.Tensor,
    t: float,
    points: np.ndarray,
    rotation: torch.Tensor | None,
    chunk: int,
    precision: str,
    counts: list[int] | None,
) -> np.ndarray:
    """SDF at voxel centres whose sign equals float32's (bf16 values near zero are decoded again)."""
    sdf = decode_points(decoder, latent, t, points, rotation=rotation, chunk=chunk, precision=precision)
    if counts is not None:
        counts.append(len(points))
    if precision != "32":
        # A voxel whose rounded value lies within the rounding's reach of the zero level could take the other
        # sign in float32: those few are decoded again in float32.
        near = np.flatnonzero(np.abs(sdf) <= BF16_GUARD)
        sdf[near] = decode_points(decoder, latent, t, points[near], rotation=rotation, chunk=chunk)
        if counts is not None:
            counts.append(len(near))
    return sdf


def _first_level(
    resolution: int,
    coarse: int | None,
    margin: float,
    chunk: int,
    clamp: float,
    rotation: torch.Tensor | None,
) -> int:
    """Check the arguments and return the first level's block side (``coarse``, or the default)."""
    if coarse is None:
        _check(resolution, 2, margin, chunk, clamp, rotation)
        coarse = default_coarse(resolution, clamp=clamp)
    _check(resolution, coarse, margin, chunk, clamp, rotation)
    return coarse


def _coarse_blocks(resolution: int, coarse: int) -> tuple[int, np.ndarray]:
    """Blocks per axis at the first level and the (N, 3) block indices, which may reach beyond the grid."""
    side = -(-resolution // coarse)
    return side, np.stack(np.meshgrid(*[np.arange(side)] * 3, indexing="ij"), axis=-1).reshape(-1, 3)


def decode_narrowband(
    decoder: Field,
    latent: torch.Tensor,
    t: float,
    resolution: int,
    *,
    rotation: torch.Tensor | None = None,
    coarse: int | None = None,
    margin: float = 2.0,
    chunk: int = 1 << 13,
    clamp: float = 0.1,
    counts: list[int] | None = None,
    precision: str = "32",
) -> np.ndarray:
    """Cell mask (``sdf <= 0``) on a ``resolution``³ grid spanning [-1, 1]³, decoding only near the surface.

    Same grid and voxel values as :func:`~cellsdf.decode.dense.decode_dense` (every voxel near the surface
    goes through the same :func:`~cellsdf.decode.dense.decode_points`); voxels far from it take the sign of
    the centre of the largest block around them that the surface cannot reach.

    Parameters
    ----------
    decoder : Field
        Trained decoder.
    latent : torch.Tensor
        (L,) code.
    t : float
        Time in [-1, 1].
    resolution : int
        Grid side, at least 2 (any value, not only powers of two).
    rotation : torch.Tensor, optional
        (3, 3) rotation of the coordinates, as in :func:`~cellsdf.decode.dense.decode_dense`.
    coarse : int, optional
        Side in voxels of the first level's blocks, a power of two >= 2; it may exceed the grid (the grid is
        padded to a multiple of it, and blocks beyond the grid are dropped). Default:
        :func:`default_coarse` for this resolution and clamp (8 at 256³).
    margin : float
        Safety factor, > 0: a block is settled when ``|sdf(centre)| > margin * radius`` (radius from
        :func:`block_radius`). The decoder is not an exact distance: its gradient norm near the surface
        reaches 2 to 3 in the shipped models, though its mean slope over a block's radius stays near 1. With
        the default 2, no voxel differs from the dense mask on the shipped models at 64³ and 128³, and 3 in
        16.8 M on one plat frame at 256³, each within 0.001 of the zero level where the slope is steepest;
        margin 3 decodes those too, at about 1.8 times the points.
    chunk : int
        Points per decoder call; bounds memory. The default is the dense decoder's (see
        :func:`~cellsdf.decode.dense.decode_points`), so the bench compares the points each decodes.
    clamp : float
        The training loss clamp (``model.hparams.clamp``); only used for the default ``coarse``.
    counts : list of int, optional
        If given, the number of points decoded at each level (block sides ``coarse``, ``coarse / 2``, ...,
        1) is appended to it, and with ``bf16`` then the number of voxels decoded again in float32.
    precision : {'32', 'bf16'}
        Type of the hidden layers' products (:func:`~cellsdf.decode.dense.decode_points`). With ``bf16``,
        voxels whose value lies within :data:`BF16_GUARD` of the zero level are decoded again in float32,
        so the mask agrees with the float32 one wherever bf16 moves the SDF by less than that.

    Returns
    -------
    np.ndarray
        bool (R, R, R) mask, axes (z, y, x), True inside the cell.

    Raises
    ------
    ValueError
        If ``resolution``, ``coarse``, ``margin``, ``chunk``, ``clamp``, ``rotation`` or ``precision`` is
        not usable.

    Examples
    --------
    >>> from cellsdf.model.checkpoint import load_autodecoder
    >>> model = load_autodecoder("plat")
    >>> mask = decode_narrowband(model.decoder, model.latents.weight[0].detach(), 0.0, 32)
    >>> mask.shape, mask.dtype
    ((32, 32, 32), dtype('bool'))
    """
    coarse = _first_level(resolution, coarse, margin, chunk, clamp, rotation)
    axis = grid_axis(resolution)
    spacing = grid_step(resolution)
    side, blocks = _coarse_blocks(resolution, coarse)
    signs = np.empty((0, 0, 0), bool)
    size = coarse
    with torch.inference_mode():
        while True:
            if size == 1:
                # Voxels are decoded at the dense decoder's own grid points, so both give identical values.
                points = axis[blocks]
            else:
                points = -1.0 + spacing * (blocks * size + 0.5 * (size - 1))
            if size == 1:
                sdf = _voxel_sdf(decoder, latent, t, points, rotation, chunk, precision, counts)
            else:
                sdf = decode_points(
                    decoder, latent, t, points, rotation=rotation, chunk=chunk, precision=precision
                )
                if counts is not None:
                    counts.append(len(points))
            inside = sdf <= 0
            if size == coarse:
                signs = inside.reshape(side, side, side)
            else:
                # Each block inherits its parent's sign, then the decoded children overwrite theirs.
                n = len(signs)
                finer = np.empty((n, 2, n, 2, n, 2), bool)
                finer[...] = signs[:, None, :, None, :, None]
                signs = finer.reshape(2 * n, 2 * n, 2 * n)
                signs[blocks[:, 0], blocks[:, 1], blocks[:, 2]] = inside
            if size == 1:
                break
            unsettled = blocks[np.abs(sdf) <= margin * block_radius(size, resolution)]
            size //= 2
            children = (2 * unsettled[:, None, :] + _CHILDREN).reshape(-1, 3)
            # Children that start beyond the last voxel are padding only: never decoded, cropped below.
            blocks = children[(children * size < resolution).all(axis=1)]
    return np.ascontiguousarray(signs[:resolution, :resolution, :resolution])


class TrackingLost(Exception):
    """A tracked frame disagrees with its coarse check: the surface left the band it was followed in."""


# The surface is followed across the 6 faces of a voxel both ways (marching cubes puts the surface on the
# edges between face neighbours) and from inside voxels also across edges and corners, to the outside voxels a
# cell's 26-connected components (:mod:`cellsdf.evaluate.topology`) grow into: a filopodium one voxel thin
# extends along a diagonal chain. Following all 26 neighbours from both sides decoded 1.54x the surface
# shell on a 256³ plat frame against 1.42x, with the same masks on the frames measured (plat, cele, filo at
# 128³ and 256³); following faces only (1.23x) missed a filopodium's diagonal steps at 48³.
_NEIGHBOURS = np.array([offset for offset in np.ndindex(3, 3, 3) if offset != (1, 1, 1)], dtype=np.int64) - 1
_DIAGONAL = np.abs(_NEIGHBOURS).sum(axis=1) > 1


def _sign_changes(signs: np.ndarray) -> np.ndarray:
    """(N, 3) voxels with a face neighbour of the other sign: both sides of every change (the seeds)."""
    box = crop_box(signs)
    if box is None or signs.all():
        return np.empty((0, 3), np.int64)
    crop, origin = box
    faces = ndimage.generate_binary_structure(3, 1)
    # Grown and shrunk by the voxel and its 6 faces differ exactly where a face neighbour has the other sign.
    grown = ndimage.maximum_filter(crop, footprint=faces, mode="nearest")
    shrunk = ndimage.minimum_filter(crop, footprint=faces, mode="nearest")
    found = np.argwhere(grown != shrunk) + origin
    return found[((found >= 0) & (found < len(signs))).all(axis=1)]


def decode_tracked(
    decoder: Field,
    latent: torch.Tensor,
    t: float,
    previous: np.ndarray,
    *,
    rotation: torch.Tensor | None = None,
    coarse: int | None = None,
    margin: float = 2.0,
    chunk: int = 1 << 13,
    clamp: float = 0.1,
    counts: list[int] | None = None,
    precision: str = "32",
) -> np.ndarray:
    """Cell mask at time ``t``, following the surface from the mask of a nearby frame (``previous``).

    Consecutive frames of a cell differ little, so instead of refining from the coarse grid (as
    :func:`decode_narrowband` does), the voxels on both sides of ``previous``'s surface are decoded, the rest
    keep ``previous``'s sign, and the surface is then followed: wherever a decoded voxel and a neighbour that
    still carries the old sign differ, the latter is decoded too (face neighbours, where marching cubes puts
    the surface, and for an inside voxel all 26, where a cell's components connect), until no such pair is
    left. A surface that moved, grew or shrank is followed however far it went (one voxel a round); what
    tracking cannot see is a piece of surface that touches no old one (a fragment that appears from nothing).
    The coarse check catches those that the coarse grid sees: its centres are decoded as in
    :func:`decode_narrowband`, and a block that the surface cannot reach (``|sdf| > margin * radius``) must
    hold its centre's sign throughout, as must the 8 voxels around every centre farther than ``margin`` times
    their own radius from the surface; otherwise :class:`TrackingLost` is raised.

    Parameters
    ----------
    decoder, latent, t, rotation, coarse, margin, chunk, clamp, precision
        As for :func:`decode_narrowband`.
    previous : np.ndarray
        bool (R, R, R) mask of a nearby time (the previous frame) on the same grid.
    counts : list of int, optional
        If given, the points of each decoder pass are appended to it: the coarse check, then each round of
        voxels (and with ``bf16`` each round's float32 re-decode).

    Returns
    -------
    np.ndarray
        bool (R, R, R) mask, axes (z, y, x), True inside the cell.

    Raises
    ------
    TrackingLost
        If the coarse check finds a sign the tracked surface does not explain (decode the frame with
        :func:`decode_narrowband` instead).
    ValueError
        If ``previous`` is not a cubic bool mask of at least 2³, or another argument is not usable.

    Examples
    --------
    >>> from cellsdf.model.checkpoint import load_autodecoder
    >>> model = load_autodecoder("plat")
    >>> latent = model.latents.weight[0].detach()
    >>> first = decode_narrowband(model.decoder, latent, 0.0, 32)
    >>> second = decode_tracked(model.decoder, latent, 0.1, first)
    >>> bool((second == decode_narrowband(model.decoder, latent, 0.1, 32)).all())
    True
    """
    shape = np.shape(previous)
    if len(shape) != 3 or len(set(shape)) != 1 or np.asarray(previous).dtype != bool:
        raise ValueError(f"previous must be a cubic bool mask, got {np.asarray(previous).dtype} {shape}")
    resolution = shape[0]
    coarse = _first_level(resolution, coarse, margin, chunk, clamp, rotation)
    axis = grid_axis(resolution)
    signs = np.array(previous, dtype=bool, copy=True)
    decoded = np.zeros(signs.shape, bool)
    with torch.inference_mode():
        pending = _sign_changes(signs)
        while len(pending):
            sdf = _voxel_sdf(decoder, latent, t, axis[pending], rotation, chunk, precision, counts)
            index = tuple(pending.T)
            decoded[index] = True
            signs[index] = sdf <= 0
            pending = _unsettled_neighbours(pending, signs, decoded)
        _coarse_check(decoder, latent, t, signs, rotation, coarse, margin, chunk, precision, counts)
    return signs


def _unsettled_neighbours(voxels: np.ndarray, signs: np.ndarray, decoded: np.ndarray) -> np.ndarray:
    """Undecoded neighbours of just-decoded voxels of the other sign: faces, and all 26 of inside voxels."""
    resolution = len(signs)
    flat_signs, flat_decoded = signs.reshape(-1), decoded.reshape(-1)
    source = np.ravel_multi_index(tuple(voxels.T), signs.shape)
    # Per axis, which voxels have a neighbour one step down (-1) and up (+1) within the grid.
    steps = {-1: voxels > 0, 0: np.ones(voxels.shape, bool), 1: voxels < resolution - 1}
    strides = np.array([resolution * resolution, resolution, 1])
    inside = signs[tuple(voxels.T)]
    found = []
    for offset, diagonal in zip(_NEIGHBOURS, _DIAGONAL, strict=True):
        valid = steps[offset[0]][:, 0] & steps[offset[1]][:, 1] & steps[offset[2]][:, 2]
        if diagonal:
            valid &= inside
        here = source[valid]
        there = here + int(offset @ strides)
        found.append(there[(flat_signs[there] != flat_signs[here]) & ~flat_decoded[there]])
    flat = np.unique(np.concatenate(found))
    return np.stack(np.unravel_index(flat, signs.shape), axis=1)


def _coarse_check(
    decoder: Field,
    latent: torch.Tensor,
    t: float,
    signs: np.ndarray,
    rotation: torch.Tensor | None,
    coarse: int,
    margin: float,
    chunk: int,
    precision: str,
    counts: list[int] | None,
) -> None:
    """Raise TrackingLost where a coarse block's centre shows a sign that the tracked mask lacks."""
    resolution = len(signs)
    side, blocks = _coarse_blocks(resolution, coarse)
    centres = -1.0 + grid_step(resolution) * (blocks * coarse + 0.5 * (coarse - 1))
    sdf = decode_points(decoder, latent, t, centres, rotation=rotation, chunk=chunk, precision=precision)
    if counts is not None:
        counts.append(len(centres))
    inside = (sdf <= 0).reshape(side, side, side)
    # Voxels beyond the grid repeat the last ones, which changes no block's "all inside" or "all outside".
    extra = side * coarse - resolution
    full = np.pad(signs, ((0, extra),) * 3, mode="edge") if extra else signs
    per_block = full.reshape(side, coarse, side, coarse, side, coarse)
    all_in = per_block.all(axis=(1, 3, 5))
    all_out = ~per_block.any(axis=(1, 3, 5))
    settled = (np.abs(sdf) > margin * block_radius(coarse, resolution)).reshape(side, side, side)
    wrong = settled & np.where(inside, ~all_in, ~all_out)
    # The 8 voxels around a centre lie within one 2-voxel block's radius of it.
    low = coarse // 2 - 1
    clear = (np.abs(sdf) > margin * block_radius(2, resolution)).reshape(side, side, side)
    for dz, dy, dx in np.ndindex(2, 2, 2):
        around = full[low + dz :: coarse, low + dy :: coarse, low + dx :: coarse][:side, :side, :side]
        wrong |= clear & (around != inside)
    if wrong.any():
        raise TrackingLost(
            f"{int(wrong.sum())} coarse block(s) hold a sign the tracked surface does not explain"
        )
