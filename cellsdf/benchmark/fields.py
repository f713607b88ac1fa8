"""Multi-cell fields: several single-cell label time-lapses placed side by side in one 2D field of view.

Each cell is cropped to its bounding box over all frames, given a random start position and a straight drift
at constant speed, and accepted only where its whole path, widened by a gap, stays inside the field and clear
of the paths of the cells placed before it. No two cells therefore overlap or touch in any frame, and the
labels and track tables of the cells merge into one CTC sequence by offsetting each cell's labels.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import ndimage, signal

from cellsdf.errors import InputError
from cellsdf.io.ctc import table_of_present, track_table

_MAX_LABEL = np.iinfo(np.uint16).max


def field_groups(n_sequences: int, cells_per_field: int) -> list[list[int]]:
    """Say which input sequences make up each field: every field has ``cells_per_field`` cells, cycling.

    Parameters
    ----------
    n_sequences : int
        Number of input (single-cell) sequences, at least 1.
    cells_per_field : int
        Cells K per field, at least 1.

    Returns
    -------
    list of list of int
        ``ceil(n_sequences / K)`` fields; field ``j`` takes sequences ``(j * K + i) % n_sequences`` for
        ``i < K``, so every input is used and the last field is filled up from the first inputs.

    Raises
    ------
    InputError
        If ``cells_per_field`` is below 1.

    Examples
    --------
    >>> field_groups(5, 2)
    [[0, 1], [2, 3], [4, 0]]
    """
    if n_sequences < 1:
        raise ValueError(f"need at least one sequence, got {n_sequences}")
    if cells_per_field < 1:
        raise InputError("cells_per_field", f"must be at least 1, got {cells_per_field}")
    fields = math.ceil(n_sequences / cells_per_field)
    return [[(j * cells_per_field + i) % n_sequences for i in range(cells_per_field)] for j in range(fields)]


def compose_field(
    cells: Sequence[tuple[np.ndarray, np.ndarray]],
    size: int,
    rng: np.random.Generator,
    drift: float = 0.5,
    gap: int = 2,
    max_tries: int = 200,
) -> tuple[np.ndarray, np.ndarray, list[dict]]:
    """Place single-cell label time-lapses in one ``size`` x ``size`` field without overlap, drifting slowly.

    All cells are cut to the shortest sequence. Larger cells are placed first (they are the hard ones to fit).
    For each, a drift direction is drawn, and with it the cell's swept footprint: its pixels in every frame at
    that frame's position ``start + round(velocity * t)``, dilated by ``gap`` pixels (8-connected). The
    start is drawn uniformly from all positions where that footprint lies inside the field and misses every
    pixel that an earlier cell ever covers; one FFT correlation with the occupancy image tests all positions
    at once. A direction without any such position is a failed try, and another direction is drawn.

    Parameters
    ----------
    cells : sequence of (labels, tracks)
        Per cell, integer (T, h, w) labels and the (N, 4) ``L B E P`` track table that agrees with them,
        as :func:`cellsdf.benchmark.tracks.track_single_cell` returns.
    size : int
        Side of the square field in pixels.
    rng : np.random.Generator
        Source of directions and positions; the same seed gives the same field.
    drift : float
        Speed in pixels per frame; the drift moves a cell ``drift * (T - 1)`` pixels over the sequence.
    gap : int
        Least number of background pixels between two cells, and between a cell and the field's border.
        0 lets cells touch (never overlap).
    max_tries : int
        Drift directions tried per cell before giving up.

    Returns
    -------
    labels : np.ndarray
        uint16 (T, size, size); cell ``k``'s label ``l`` becomes ``l + offset_k``, with offsets in input order
        so that every label of the field is one cell's track.
    tracks : np.ndarray
        int64 (M, 4) merged ``L B E P`` rows, sorted by label, parents offset like their daughters; divisions
        after the cut to the shortest sequence are dropped.
    placements : list of dict
        Per input cell, in input order: ``source`` (index into ``cells``), ``crop`` (y0, x0, y1, x1 of the
        bounding box in the cell's own frames), ``start`` and ``end`` (field position of the box's top-left
        corner in the first and last frame), ``velocity`` (vy, vx in pixels per frame; frame ``t`` is at
        ``start + round(velocity * t)``), ``label_offset`` and ``labels`` (the cell's labels in the field).

    Raises
    ------
    InputError
        Naming ``field`` if a cell is larger than the field, ``cells_per_field`` if the cells do not fit or
        their labels exceed uint16, and ``drift``, ``gap`` or ``max_tries`` for invalid values.
    ValueError
        If a cell is not integer (T, h, w) labels with a track table that fits them, or has no pixels.

    Examples
    --------
    >>> disk = np.zeros((4, 9, 9), np.uint16)
    >>> disk[:, 2:7, 2:7] = 1
    >>> tracks = np.array([[1, 0, 3, 0]])
    >>> labels, merged, placed = compose_field([(disk, tracks)] * 3, 48, np.random.default_rng(0))
    >>> merged.tolist()
    [[1, 0, 3, 0], [2, 0, 3, 0], [3, 0, 3, 0]]
    """
    placed = place_cells(cells, (size, size), rng, drift=drift, gap=gap, max_tries=max_tries)
    field = np.zeros((placed.n_frames, size, size), dtype=np.uint16)
    for t in range(placed.n_frames):
        field[t] = placed.frame(t)
    try:
        merged = track_table(field, placed.divisions)
    except ValueError as error:
        raise ValueError(f"a cell's track table does not fit its labels: {error}") from error
    return field, merged, placed.placements


@dataclass(frozen=True)
class PlacedCells:
    """Cells placed in one field: their crops, where each sits in every frame, and their merged divisions.

    Attributes
    ----------
    shape : tuple of int
        The field's spatial shape ((Y, X) or (Z, Y, X)).
    n_frames : int
        Frames of the field (the shortest cell's).
    crops : list of np.ndarray
        Per cell, uint16 (T, *box) labels cut to their bounding box over all frames.
    positions : list of np.ndarray
        Per cell, int (T, ndim) field position of the box's corner in each frame.
    offsets : np.ndarray
        int (K + 1,) label offset of each cell (cell ``k``'s label ``l`` is ``l + offsets[k]`` in the field).
    divisions : list of (frame, parent, daughters)
        The cells' divisions in field labels (those after the cut dropped).
    placements : list of dict
        Per cell, what the manifest records (see :func:`compose_field`).
    """

    shape: tuple[int, ...]
    n_frames: int
    crops: list[np.ndarray]
    positions: list[np.ndarray]
    offsets: np.ndarray
    divisions: list[tuple[int, int, list[int]]]
    placements: list[dict]

    def frame(self, t: int, values: Sequence[np.ndarray] | None = None, *, margin: int = 0) -> np.ndarray:
        """Return frame ``t`` of the field: uint16 labels, or pasted ``values`` (float32).

        ``values`` holds, per cell, an array shaped like its crop (T, *box) grown by ``margin`` on every side
        of every spatial axis (what spills a little past a cell's labels, such as partial-volume intensity);
        each is added where the cell lies in frame ``t``. Cells never overlap; with ``margin`` at most the
        gap, their margins stay inside the field and clear of each other's labels.
        """
        out = np.zeros(self.shape, dtype=np.uint16 if values is None else np.float32)
        for k, (crop, position) in enumerate(zip(self.crops, self.positions, strict=True)):
            if values is None:
                box = tuple(slice(p, p + n) for p, n in zip(position[t], crop.shape[1:], strict=True))
                inside = crop[t] > 0
                out[box][inside] = crop[t][inside] + self.offsets[k]
            else:
                # The margin may reach past the field where a cell touches its border: clip it there.
                corner = position[t] - margin
                size = values[k].shape[1:]
                low = np.maximum(corner, 0)
                high = np.minimum(corner + np.array(size), self.shape)
                target = tuple(slice(a, b) for a, b in zip(low, high, strict=True))
                source = tuple(slice(a - c, b - c) for a, b, c in zip(low, high, corner, strict=True))
                out[target] += values[k][t][source]
        return out

    def tracks(self) -> np.ndarray:
        """Return the merged ``L B E P`` table of the field's labels (from the crops, nothing pasted)."""
        present = []
        for t in range(self.n_frames):
            ids = [np.unique(crop[t]) for crop in self.crops]
            present.append(np.concatenate([i[i > 0] + self.offsets[k] for k, i in enumerate(ids)]))
        return table_of_present(present, self.divisions)


def place_cells(
    cells: Sequence[tuple[np.ndarray, np.ndarray]],
    shape: tuple[int, ...],
    rng: np.random.Generator,
    *,
    drift: float = 0.5,
    gap: int = 2,
    max_tries: int = 200,
) -> PlacedCells:
    """Place single-cell label time-lapses in a 2D or 3D field without overlap, each drifting in a line.

    As :func:`compose_field` describes; in 3D the drift lies in the (y, x) plane (cells moving over a
    coverslip; z is the coarse axis of a 3D microscope image) and the gap holds in all three axes. Nothing
    is pasted: :meth:`PlacedCells.frame` makes one frame at a time.

    Parameters
    ----------
    cells : sequence of (labels, tracks)
        Per cell, integer (T, h, w) or (T, d, h, w) labels and the ``L B E P`` table that agrees with them.
    shape : tuple of int
        The field's spatial shape, (Y, X) or (Z, Y, X).
    rng, drift, gap, max_tries
        As for :func:`compose_field`.

    Returns
    -------
    PlacedCells
    """
    if not cells:
        raise ValueError("compose_field needs at least one cell")
    _check_options(min(shape), drift, gap, max_tries)
    ndim = len(shape)
    n_frames = min(np.shape(labels)[0] for labels, _ in cells)
    crops, boxes = zip(
        *(_crop(labels[:n_frames], k, ndim) for k, (labels, _) in enumerate(cells)), strict=True
    )
    offsets = np.concatenate([[0], np.cumsum([int(crop.max()) for crop in crops])]).astype(np.int64)
    if offsets[-1] > _MAX_LABEL:
        raise InputError(
            "cells_per_field",
            f"the {len(cells)} cells have {offsets[-1]} labels together, more than uint16 labels hold",
        )
    field_text = "x".join(map(str, shape))
    for k, crop in enumerate(crops):
        if any(n + 2 * gap > side for n, side in zip(crop.shape[1:], shape, strict=True)):
            size_text = "x".join(map(str, crop.shape[1:]))
            raise InputError(
                "field",
                f"cell {k} is {size_text} pixels, which with a {gap}-pixel gap does not "
                f"fit in a {field_text} field; use a larger field=",
            )
    occupied = np.zeros(shape, dtype=bool)
    placements: list[dict] = [{} for _ in cells]
    positions: list[np.ndarray] = [np.zeros(0)] * len(cells)
    order = sorted(range(len(cells)), key=lambda k: -np.count_nonzero(crops[k].any(axis=0)))
    # The position search is exhaustive, so only a new direction can help; without drift there is one path.
    tries = max_tries if drift > 0 else 1
    for n, k in enumerate(order, start=1):
        masks = crops[k] > 0
        halo = _dilate(masks, gap)
        for _ in range(tries):
            angle = rng.uniform(0.0, 2.0 * np.pi)
            velocity = np.zeros(ndim)
            velocity[-2:] = drift * np.array([np.sin(angle), np.cos(angle)])
            shifts = _shifts(velocity, n_frames)
            start = _free_start(_sweep(halo, shifts), occupied, rng)
            if start is not None:
                break
        else:
            raise InputError(
                "cells_per_field",
                f"could not place cell {n} of {len(cells)} without overlap in a {field_text} field after "
                f"{tries} tries; use a larger field=, fewer cells_per_field= or a slower drift=",
            )
        # The halo box sits `gap` pixels before the cell's box on every axis.
        positions[k] = start + gap + shifts
        _occupy(occupied, masks, positions[k])
        ids = np.unique(crops[k])
        placements[k] = {
            "source": k,
            "crop": [int(v) for v in boxes[k]],
            "start": positions[k][0].tolist(),
            "end": positions[k][-1].tolist(),
            "velocity": [float(v) for v in velocity[-2:]],
            "label_offset": int(offsets[k]),
            "labels": (ids[ids > 0].astype(np.int64) + offsets[k]).tolist(),
        }
    divisions = merged_divisions([tracks for _, tracks in cells], offsets, n_frames)
    return PlacedCells(tuple(shape), n_frames, list(crops), positions, offsets, divisions, placements)


def _check_options(size: int, drift: float, gap: int, max_tries: int) -> None:
    if size < 1:
        raise InputError("field", f"must be a positive number of pixels, got {size}")
    if not drift >= 0:
        raise InputError("drift", f"must be 0 or more pixels per frame, got {drift}")
    if gap < 0:
        raise InputError("gap", f"must be 0 or more pixels, got {gap}")
    if max_tries < 1:
        raise InputError("max_tries", f"must be at least 1, got {max_tries}")


def _crop(labels: np.ndarray, k: int, ndim: int = 2) -> tuple[np.ndarray, tuple[int, ...]]:
    """Cut a cell's labels to their bounding box over all frames; return them as uint16 and the box.

    The box is (starts..., stops...) of the spatial axes: (y0, x0, y1, x1) in 2D.
    """
    labels = np.asarray(labels)
    if labels.ndim != ndim + 1 or not np.issubdtype(labels.dtype, np.integer):
        shape = "(T, h, w)" if ndim == 2 else "(T, d, h, w)"
        raise ValueError(f"cell {k}: expected integer {shape} labels, got {labels.dtype} {labels.shape}")
    if labels.min(initial=0) < 0 or labels.max(initial=0) > _MAX_LABEL:
        raise ValueError(f"cell {k}: labels must lie in 0..{_MAX_LABEL}")
    box = ndimage.find_objects((labels > 0).any(axis=0).astype(np.uint8))
    if not box:
        raise ValueError(f"cell {k} has no labelled pixels in its first {labels.shape[0]} frames")
    starts = tuple(axis.start for axis in box[0])
    stops = tuple(axis.stop for axis in box[0])
    return labels[(slice(None), *box[0])].astype(np.uint16), starts + stops


def _dilate(masks: np.ndarray, gap: int) -> np.ndarray:
    """Pad each frame by ``gap`` and grow it by ``gap`` pixels, chessboard-wise (8 or 26 neighbours)."""
    spatial = masks.ndim - 1
    padded = np.pad(masks, ((0, 0),) + ((gap, gap),) * spatial)
    return ndimage.maximum_filter(padded, size=(1,) + (2 * gap + 1,) * spatial) if gap else padded


def _shifts(velocity: np.ndarray, n_frames: int) -> np.ndarray:
    """Per-frame integer offsets ``round(velocity * t)``, moved so that the smallest is 0 on each axis."""
    shifts = np.rint(np.arange(n_frames)[:, None] * velocity[None, :]).astype(np.int64)
    return shifts - shifts.min(axis=0)


def _sweep(masks: np.ndarray, shifts: np.ndarray) -> np.ndarray:
    """Union of the frames of ``masks``, each moved by its shift: every pixel the cell ever covers."""
    size = masks.shape[1:]
    swept = np.zeros(tuple(np.add(size, shifts.max(axis=0))), dtype=bool)
    for shift, frame in zip(shifts, masks, strict=True):
        swept[tuple(slice(d, d + n) for d, n in zip(shift, size, strict=True))] |= frame
    return swept


def _free_start(swept: np.ndarray, occupied: np.ndarray, rng: np.random.Generator) -> np.ndarray | None:
    """Draw a top-left corner where ``swept`` lies inside ``occupied``'s extent and misses it, or None."""
    room = np.array(occupied.shape) - swept.shape + 1
    if np.any(room < 1):
        return None
    if occupied.any():
        # Correlation counts, for every corner at once, the occupied pixels the footprint would cover.
        flipped = swept[(slice(None, None, -1),) * swept.ndim]
        hits = signal.fftconvolve(occupied.astype(np.float64), flipped.astype(np.float64), "valid")
        free = np.flatnonzero(hits < 0.5)
    else:
        free = np.arange(room.prod())
    if free.size == 0:
        return None
    return np.array(np.unravel_index(free[rng.integers(free.size)], tuple(room)), dtype=np.int64)


def _occupy(occupied: np.ndarray, masks: np.ndarray, positions: np.ndarray) -> None:
    """Mark every pixel a cell covers in any frame, at that frame's position."""
    for frame, position in zip(masks, positions, strict=True):
        occupied[tuple(slice(p, p + n) for p, n in zip(position, frame.shape, strict=True))] |= frame


def merged_divisions(
    tables: Sequence[np.ndarray], offsets: np.ndarray, n_frames: int
) -> list[tuple[int, int, list[int]]]:
    """Return all cells' divisions ``(frame, parent, daughters)`` in field labels (after the cut: dropped).

    Parameters
    ----------
    tables : sequence of np.ndarray
        Each cell's ``L B E P`` table in its own labels.
    offsets : np.ndarray
        Each cell's label offset in the field.
    n_frames : int
        Frames of the field.

    Returns
    -------
    list of (frame, parent, daughters)
    """
    divisions: dict[tuple[int, int], list[int]] = {}
    for table, offset in zip(tables, offsets[: len(tables)], strict=True):
        for label, begin, _, parent in np.asarray(table, dtype=np.int64).reshape(-1, 4).tolist():
            if parent > 0 and begin < n_frames:
                divisions.setdefault((begin, parent + int(offset)), []).append(label + int(offset))
    return [(frame, parent, daughters) for (frame, parent), daughters in sorted(divisions.items())]
