"""What a decoded sequence becomes: grid side, output times, file types."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from cellsdf.decode.options import FORMATS, MESH_FORMATS, WRITE_BASE_BYTES, MeshOptions, bytes_per_voxel
from cellsdf.errors import InputError, check_whole
from cellsdf.geometry.grid import frame_times
from cellsdf.io.limits import check_grid


@dataclass(frozen=True)
class SequenceCode:
    """What decodes one sequence of a prepared dataset.

    Attributes
    ----------
    name : str
        Sequence name (its output folder).
    index : int
        Index of the sequence in the prepared dataset whose frames and evaluation masks it is scored against.
    latent : torch.Tensor
        (L,) code.
    rotation : torch.Tensor or None
        (3,) axis-angle vector of the rotation the model applies to the coordinates; None for the identity.
    scale : float
        Placement scale s in the dataset's frame (its units per model unit, :mod:`cellsdf.model.placement`).
    translation : torch.Tensor or None
        (3,) placement translation c in the dataset's units; None for the origin.
    protrusions : int or None
        For a body-and-protrusions model, the training sequence whose measured protrusions join the body;
        None: new ones drawn from the code.
    """

    name: str
    index: int
    latent: torch.Tensor
    rotation: torch.Tensor | None
    scale: float = 1.0
    translation: torch.Tensor | None = None
    protrusions: int | None = None


@dataclass(frozen=True)
class OutputOptions:
    """How decoded sequences are written: grid side, frames, file types, progress bars."""

    resolution: int = 64
    frames: int | None = None
    formats: tuple[str, ...] = ("tiff", "mesh")
    mesh: MeshOptions = MeshOptions()
    progress: bool = False


def output_options(
    *,
    resolution: int,
    frames: int | None,
    formats: Sequence[str],
    mesh_format: str,
    progress: bool = False,
) -> OutputOptions:
    """Check and collect the output settings shared by ``reconstruct`` and ``fit``.

    Examples
    --------
    >>> output_options(resolution=32, frames=None, formats=["tiff"], mesh_format="ply").formats
    ('tiff',)
    """
    check_whole(resolution, "resolution", least=8)
    if frames is not None and (not isinstance(frames, int) or isinstance(frames, bool) or frames < 1):
        raise InputError(
            "frames", f"must be null (the data's frame times) or an integer >= 1, got {frames!r}"
        )
    formats = [str(f) for f in formats]
    unknown = sorted(set(formats) - set(FORMATS))
    if unknown or not formats:
        raise InputError("formats", f"choose one or more of {', '.join(FORMATS)}, got {formats}")
    if mesh_format not in MESH_FORMATS:
        raise InputError("mesh_format", f"choose one of {', '.join(MESH_FORMATS)}, got {mesh_format!r}")
    # The decoded frame is scored against its target on the same grid: one bool mask more per voxel.
    check_grid("resolution", resolution, bytes_per_voxel(formats) + 1, base=WRITE_BASE_BYTES)
    return OutputOptions(resolution, frames, tuple(formats), MeshOptions(format=mesh_format), bool(progress))


def output_times(frames: int | None, data_times: np.ndarray) -> np.ndarray:
    """Return the times to decode: the data's frame times (``frames`` None) or ``frames`` evenly spaced.

    Examples
    --------
    >>> output_times(3, np.zeros(0)).tolist()
    [-1.0, 0.0, 1.0]
    """
    if frames is None:
        return np.asarray(data_times, np.float64)
    return frame_times(frames)
