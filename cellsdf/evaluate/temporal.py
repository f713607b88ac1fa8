"""How a cell changes from frame to frame: growth, smoothness, divisions."""

from __future__ import annotations

import numpy as np

TEMPORAL = ("volume_growth", "temporal_iou", "divisions")


def sequence_dynamics(
    volumes: list[float | None], components: list[float | None], ious: list[float | None]
) -> dict[str, list]:
    """Summarise one sequence over time from its per-frame measurements.

    Parameters
    ----------
    volumes : list of float or None
        Volume per frame (µm³); None for a frame that could not be measured (empty).
    components : list of float or None
        Connected components per frame; None as above.
    ious : list of float or None
        IoU of each frame with the one before (length T - 1); None where either frame is empty.

    Returns
    -------
    dict
        Per frame t (None at t = 0 and where a frame of the pair was not measured):
        ``volume_growth``, (V[t] - V[t-1]) / V[t-1]; ``temporal_iou``, the IoU with frame t - 1 (1 for a still
        cell: temporal smoothness). And ``division_frames``: frames t whose component count differs from
        frame t - 1 (a division when it rises).
    """
    growth: list[float | None] = [None] if volumes else []
    for before, after in zip(volumes[:-1], volumes[1:], strict=True):
        measured = before is not None and after is not None and before > 0
        growth.append(float((after - before) / before) if measured else None)
    divisions = [
        t
        for t in range(1, len(components))
        if components[t] is not None and components[t - 1] is not None and components[t] != components[t - 1]
    ]
    return {
        "volume_growth": growth,
        "temporal_iou": [None, *(None if i is None else float(i) for i in ious)] if volumes else [],
        "division_frames": divisions,
    }


def temporal_values(sequences: list[dict]) -> dict[str, np.ndarray]:
    """Pool the over-time measures of many sequences into one sample per measure.

    Parameters
    ----------
    sequences : list of dict
        Outputs of :func:`sequence_dynamics`.

    Returns
    -------
    dict of str to np.ndarray
        ``volume_growth`` and ``temporal_iou`` over all measured frame pairs, ``divisions`` (the number of
        frames with a change in component count) per sequence.
    """
    return {
        "volume_growth": _measured(s["volume_growth"] for s in sequences),
        "temporal_iou": _measured(s["temporal_iou"] for s in sequences),
        "divisions": np.array([len(s["division_frames"]) for s in sequences], dtype=float),
    }


def _measured(lists) -> np.ndarray:
    return np.array([v for values in lists for v in values if v is not None], dtype=float)
