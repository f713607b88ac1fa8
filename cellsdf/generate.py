"""New cells from a trained model: latent samplers, uniform rotations, and writing one generated sequence.

A generated cell is a latent code (drawn near the codes the model learned) and a rotation, decoded at any
number of frames and any resolution. Every draw takes a ``numpy.random.Generator``; ``cellsdf generate`` seeds
one per cell from (seed, cell index), so a cell does not depend on which shard or run made it.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from cellsdf.decode.volumes import DEFAULT_MESH, MeshOptions, decode_masks, write_volumes
from cellsdf.geometry.rotation import uniform_rotation
from cellsdf.io.preview import PreviewRow, preview_frames, write_preview_rows
from cellsdf.model.rotation import axis_angle_matrix
from cellsdf.model.siren import SirenDecoder
from cellsdf.progress import track

SAMPLERS = ("gaussian", "around", "interpolate")
ROTATIONS = ("uniform", "none")


def gaussian_latent(latents: np.ndarray, rng: np.random.Generator, std: float | None = None) -> np.ndarray:
    """Draw a code from a normal distribution fitted to the learned codes.

    Parameters
    ----------
    latents : np.ndarray
        (S, L) learned codes, one per training sequence.
    rng : numpy.random.Generator
        Source of randomness.
    std : float, optional
        None: the codes' mean and full covariance (with fewer sequences than dimensions the covariance is
        singular and draws stay in the span of the codes). A number: the codes' mean with isotropic
        standard deviation ``std``.

    Returns
    -------
    np.ndarray
        float64 (L,) code.
    """
    mean = latents.mean(axis=0)
    if std is not None:
        return mean + std * rng.standard_normal(latents.shape[1])
    cov = np.cov(latents, rowvar=False)
    return rng.multivariate_normal(mean, cov, method="eigh")


def around_latent(latents: np.ndarray, rng: np.random.Generator, noise: float) -> tuple[np.ndarray, int]:
    """Draw a learned code at random and add isotropic Gaussian noise (the published code's way for filo).

    Parameters
    ----------
    latents : np.ndarray
        (S, L) learned codes.
    rng : numpy.random.Generator
        Source of randomness.
    noise : float
        Standard deviation of the noise.

    Returns
    -------
    tuple
        float64 (L,) code and the index of the learned code it started from.
    """
    index = int(rng.integers(len(latents)))
    return latents[index] + noise * rng.standard_normal(latents.shape[1]), index


def interpolated_latent(latents: np.ndarray, first: int, last: int, fraction: float) -> np.ndarray:
    """Return the code at ``fraction`` along the straight path from learned code ``first`` to ``last``.

    Parameters
    ----------
    latents : np.ndarray
        (S, L) learned codes.
    first, last : int
        Indices of the path's ends.
    fraction : float
        0 gives ``latents[first]``, 1 gives ``latents[last]``.

    Returns
    -------
    np.ndarray
        float64 (L,) code.
    """
    return (1.0 - fraction) * latents[first] + fraction * latents[last]


@dataclass(frozen=True)
class SamplerOptions:
    """Which latent sampler and rotation a generated cell gets.

    Attributes
    ----------
    name : {'gaussian', 'around', 'interpolate'}
        Latent sampler.
    std : float or None
        ``gaussian``: None for the learned codes' covariance, else isotropic with this standard deviation.
    noise : float
        ``around``: standard deviation of the noise added to a learned code.
    path : tuple of int
        ``interpolate``: indices of the two learned codes at the ends of the path.
    rotation : {'uniform', 'none'}
        Rotation of each generated cell.
    """

    name: str = "gaussian"
    std: float | None = None
    noise: float = 0.1
    path: tuple[int, int] = (0, 1)
    rotation: str = "uniform"

    @property
    def random(self) -> bool:
        """Whether a redraw can give another cell (an interpolation without rotation cannot)."""
        return self.name != "interpolate" or self.rotation != "none"


def draw_cell(
    latents: np.ndarray, options: SamplerOptions, rng: np.random.Generator, index: int, count: int
) -> tuple[np.ndarray, np.ndarray | None, dict]:
    """Draw the code and rotation of one generated cell.

    Parameters
    ----------
    latents : np.ndarray
        (S, L) learned codes.
    options : SamplerOptions
        Sampler and rotation.
    rng : numpy.random.Generator
        The cell's source of randomness (redraws continue from it).
    index, count : int
        The cell's index and the number of cells; ``interpolate`` places cell ``index`` at
        ``index / (count - 1)`` along the path.

    Returns
    -------
    tuple
        float32 (L,) code, (3,) rotation vector or None, and a description of the draw for the manifest.
    """
    info: dict = {"sampler": options.name}
    if options.name == "gaussian":
        latent = gaussian_latent(latents, rng, options.std)
        info["std"] = options.std
    elif options.name == "around":
        latent, source = around_latent(latents, rng, options.noise)
        info.update(noise=options.noise, learned_code=source)
    else:
        fraction = index / (count - 1) if count > 1 else 0.0
        latent = interpolated_latent(latents, *options.path, fraction)
        info.update(path=list(options.path), fraction=fraction)
    rotation = uniform_rotation(rng) if options.rotation == "uniform" else None
    return latent.astype(np.float32), rotation, info


def frame_problem(mask: np.ndarray) -> str | None:
    """Say why a generated frame is unusable: empty, or touching the grid border (cut off); None if fine."""
    if not mask.any():
        return "empty"
    faces = (mask[0], mask[-1], mask[:, 0], mask[:, -1], mask[:, :, 0], mask[:, :, -1])
    if any(face.any() for face in faces):
        return "touches the grid border"
    return None


class RejectedCell(Exception):
    """A generated cell failed a frame check and has to be redrawn.

    Parameters
    ----------
    frame : int
        The first failing frame.
    problem : str
        What is wrong with it.
    """

    def __init__(self, frame: int, problem: str):
        self.frame, self.problem = frame, problem
        super().__init__(f"frame {frame} {problem}")


@dataclass
class _Watcher:
    """Checks frames as they stream past and keeps what the preview needs."""

    picks: list[int]
    projections: dict[int, np.ndarray] = field(default_factory=dict)
    last: np.ndarray | None = None

    def watch(self, masks: Iterable[np.ndarray]) -> Iterator[np.ndarray]:
        for index, mask in enumerate(masks):
            problem = frame_problem(mask)
            if problem is not None:
                raise RejectedCell(index, problem)
            if index in self.picks:
                self.projections[index] = mask.max(axis=0)
            self.last = mask
            yield mask


def write_cell(
    decoder: SirenDecoder,
    latent: np.ndarray,
    rotation: np.ndarray | None,
    times: Sequence[float],
    resolution: int,
    folder: str | Path,
    spacing: tuple[float, float, float],
    frame_interval: float,
    formats: Sequence[str] = ("tiff", "mesh"),
    mesh: MeshOptions = DEFAULT_MESH,
    title: str = "cell",
    progress: bool = False,
    clamp: float = 0.1,
) -> list[dict]:
    """Decode one generated cell frame by frame and write its files and ``preview.png`` into ``folder``.

    Parameters
    ----------
    decoder : SirenDecoder
        Trained decoder.
    latent : np.ndarray
        (L,) code.
    rotation : np.ndarray or None
        (3,) rotation vector applied to the coordinates, or None.
    times : sequence of float
        Frame times in [-1, 1].
    resolution : int
        Grid side.
    folder : str or Path
        Output folder.
    spacing : tuple of float
        Voxel size (z, y, x) in µm.
    frame_interval : float
        Seconds between frames.
    formats : sequence of {'tiff', 'mesh', 'sdf'}
        Files to write (see :func:`cellsdf.decode.volumes.write_volumes`).
    mesh : MeshOptions
        Mesh file type, smoothing and decimation.
    title : str
        Name on the progress bar and the preview.
    progress : bool
        Show a progress bar over frames.
    clamp : float
        The model's training loss clamp (see :func:`cellsdf.decode.volumes.decode_masks`).

    Returns
    -------
    list of dict
        Per frame: ``voxels``, ``components`` (connected components, face neighbours) and
        ``mesh`` (file name or None).

    Raises
    ------
    RejectedCell
        If a frame is empty or touches the grid border; files written so far are left for the caller to
        remove.
    """
    folder = Path(folder)
    parameter = next(decoder.parameters())
    code = torch.as_tensor(latent, dtype=parameter.dtype, device=parameter.device)
    matrix = None if rotation is None else axis_angle_matrix(torch.as_tensor(rotation, dtype=torch.float32))
    watcher = _Watcher(preview_frames(len(times)))
    masks = watcher.watch(decode_masks(decoder, code, times, resolution, matrix, clamp=clamp))
    masks = track(masks, title, total=len(times), show=progress)
    frames = write_volumes(masks, folder, len(times), resolution, spacing, frame_interval, formats, mesh)
    row = PreviewRow(title, watcher.projections, watcher.last, len(times) - 1, spacing)
    write_preview_rows(folder / "preview.png", [row])
    return frames
