"""napari writer: a labels layer saved as an OME-Zarr label image (``mask.ome.zarr``'s layout)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from cellsdf.io.omezarr import omezarr_writer


def write_labels(path: str, data: Any, meta: dict) -> list[str]:
    """Write a 3D or 3D+t labels layer as an OME-Zarr label image with the layer's scale as its sizes.

    The layout is what ``cellsdf generate formats=[omezarr]`` writes
    (:func:`cellsdf.io.omezarr.omezarr_writer`), with the layer's label values kept (uint32), so that
    ``cellsdf prepare`` reads one cell per label. A 3D layer becomes one frame; the layer's scale gives the
    voxel size (µm) and, for 3D+t, the frame interval (s).

    Parameters
    ----------
    path : str
        Output folder, ``*.zarr`` (an existing one is replaced, as napari has asked before).
    data : array-like
        Labels (Z, Y, X) or (T, Z, Y, X).
    meta : dict
        The layer's attributes; ``scale`` is used.

    Returns
    -------
    list of str
        The written folder, or nothing for a layer that is not 3D or 3D+t.
    """
    labels = np.asarray(data)
    if labels.ndim not in (3, 4):
        return []
    scale = tuple(float(s) for s in meta.get("scale") or (1.0,) * labels.ndim)
    frames = labels if labels.ndim == 4 else labels[None]
    interval = scale[0] if labels.ndim == 4 else 1.0
    with omezarr_writer(
        Path(path),
        frames.shape,
        spacing=scale[-3:],
        frame_interval=interval,
        overwrite=True,
        keep_labels=True,
    ) as add:
        for frame in frames:
            add(frame)
    return [str(path)]
