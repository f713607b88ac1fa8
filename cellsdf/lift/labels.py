"""Lifting the cells of a 2D label image in memory: one square crop per cell, K ranked 3D shapes each.

``cellsdf lift`` reads one mask from a file and writes its hypotheses to folders; an interactive viewer (the
napari plugin) has a label image in memory with several cells and wants surfaces placed over them. Both fit
with :func:`cellsdf.lift.latent.fit_hypotheses` and decode with
:meth:`~cellsdf.lift.latent.Hypothesis.decode`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import trimesh

from cellsdf.errors import InputError
from cellsdf.geometry.mesh_defaults import SMOOTHING
from cellsdf.geometry.surface import frame_mesh
from cellsdf.lift.latent import FitOptions, Hypothesis, fit_hypotheses, model_scale
from cellsdf.lift.views import View, check_mask, square
from cellsdf.model.trained import TrainedModel


@dataclass(frozen=True)
class CellMask:
    """One cell of a 2D label image, cut out as a square mask.

    Attributes
    ----------
    label : int
        Its label value.
    mask : np.ndarray
        bool (N, N) square crop with background around the cell.
    origin : tuple of int
        (y, x) pixel of the label image at the crop's corner (negative where the crop reaches past the
        image).
    """

    label: int
    mask: np.ndarray
    origin: tuple[int, int]


@dataclass(frozen=True)
class LiftedShape:
    """One 3D hypothesis behind a mask, decoded on a grid over the mask's square.

    Attributes
    ----------
    hypothesis : Hypothesis
        The fitted hypothesis (``dice``: its silhouette Dice on the mask; ``loss``: its rank).
    volume : np.ndarray
        bool (R, R, R) shape, axes (z, y, x); y and x span the mask's pixels, z the same extent centred on
        the image plane.
    voxel : float
        Mask pixels per voxel.
    """

    hypothesis: Hypothesis
    volume: np.ndarray
    voxel: float

    def mesh(
        self, *, origin: tuple[int, int] = (0, 0), smoothing: int = SMOOTHING, faces: int | None = None
    ) -> trimesh.Trimesh | None:
        """Surface in pixel coordinates of the image the mask came from, z = 0 on the image plane.

        Parameters
        ----------
        origin : tuple of int
            (y, x) pixel of the mask's corner in the image (:attr:`CellMask.origin`).
        smoothing : int
            Taubin iterations.
        faces : int or None
            Decimate to at most this many faces.

        Returns
        -------
        trimesh.Trimesh or None
            Vertices (z, y, x) in pixels; None for an empty volume.
        """
        mesh = frame_mesh(self.volume, (self.voxel,) * 3, smoothing=smoothing, faces=faces)
        if mesh is not None:
            half = (len(self.volume) - 1) * self.voxel / 2
            mesh.apply_translation((-half, *origin))
        return mesh


def cell_masks(labels: np.ndarray, *, margin: int = 4) -> list[CellMask]:
    """Cut every cell of a 2D label image out as a square mask, with background around it.

    Parameters
    ----------
    labels : np.ndarray
        Integer (Y, X) label image (0 is background); a bool mask counts as one cell.
    margin : int
        Background pixels kept on every side of the cell's box.

    Returns
    -------
    list of CellMask
        One per label, in label order.

    Raises
    ------
    InputError
        If ``labels`` is not 2D or holds no cell.

    Examples
    --------
    >>> labels = np.zeros((20, 30), int)
    >>> labels[2:6, 3:9] = 1; labels[10:18, 20:24] = 7
    >>> [(c.label, c.mask.shape, c.origin) for c in cell_masks(labels, margin=2)]
    [(1, (10, 10), (-1, 1)), (7, (12, 12), (8, 16))]
    """
    labels = np.asarray(labels)
    if labels.ndim != 2:
        raise InputError("labels", f"expected a 2D label image, got shape {labels.shape}")
    values = np.unique(labels[labels != 0])
    if not len(values):
        raise InputError("labels", "holds no cell (every pixel is 0)")
    cells = []
    for value in values:
        rows, cols = np.nonzero(labels == value)
        top, left = rows.min() - margin, cols.min() - margin
        height, width = rows.max() + margin + 1 - top, cols.max() + margin + 1 - left
        crop = np.zeros((height, width), bool)
        crop[rows - top, cols - left] = True
        size = max(height, width)
        # square() centres the crop this way; the origin moves with it.
        origin = (int(top - (size - height) // 2), int(left - (size - width) // 2))
        cells.append(CellMask(int(value), square(crop), origin))
    return cells


def lift_mask(
    model: TrainedModel,
    mask: np.ndarray,
    *,
    hypotheses: int = 4,
    options: FitOptions | None = None,
    resolution: int | None = None,
    pixel_size: float | None = None,
    seed: int = 0,
    source: str = "mask",
) -> list[LiftedShape]:
    """Fit K 3D shapes of a trained model behind one 2D mask and decode them, best first.

    The model's clamp is used for decoding and the model's learned rotations for upright starts, as
    ``cellsdf lift mode=latent`` does with one view.

    Parameters
    ----------
    model : TrainedModel
        The trained model.
    mask : np.ndarray
        2D mask (non-zero is foreground); padded to a square.
    hypotheses : int
        K.
    options : FitOptions, optional
        Steps, rays, depth, temperature, learning rate, prior weight (clamp and scale are set here);
        None: the defaults of ``cellsdf lift``.
    resolution : int, optional
        Grid side of the decoded volumes; None: the mask's side.
    pixel_size : float, optional
        µm per mask pixel: keeps the model's cells at their trained size. None fits the size freely.
    seed : int
        Seed of the starts and the ray draws.
    source : str
        Named in errors.

    Returns
    -------
    list of LiftedShape
        K shapes sorted by silhouette fit, best first.

    Examples
    --------
    >>> from cellsdf.model.trained import load_trained
    >>> yy, xx = np.mgrid[:24, :24]
    >>> ellipse = (yy - 12) ** 2 / 49 + (xx - 11) ** 2 / 25 < 1
    >>> shapes = lift_mask(load_trained("plat"), ellipse, hypotheses=2, options=FitOptions(steps=5),
    ...                    resolution=16)
    >>> len(shapes), shapes[0].volume.shape, shapes[0].hypothesis.loss <= shapes[1].hypothesis.loss
    (2, (16, 16, 16), True)
    """
    view = View(square(check_mask(mask, source)), np.eye(3), source)
    size = len(view.mask)
    resolution = resolution or size
    if resolution < 8:
        raise InputError("resolution", f"must be at least 8, got {resolution}")
    scale = None if pixel_size is None else model_scale(model, float(pixel_size), size)
    options = replace(options or FitOptions(), scale=scale)
    results = fit_hypotheses(model, [view], hypotheses=hypotheses, options=options, seed=seed)
    voxel = (size - 1) / (resolution - 1)
    return [
        LiftedShape(h, h.decode(model.decoder, np.eye(3), resolution, model.clamp), voxel) for h in results
    ]
