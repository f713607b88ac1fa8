"""One generated cell in memory: draw a code, decode it frame by frame, mesh each frame; no files.

This is what an interactive viewer needs (the napari plugin): the same draw as cell ``index`` of
``cellsdf generate`` (same seed, sampler and redraw rule), decoded into display meshes instead of files.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass

import numpy as np
import trimesh

from cellsdf.errors import InputError
from cellsdf.generate.cell import _Watcher
from cellsdf.generate.draw import Draw, draw_accepted
from cellsdf.generate.run import learned_codes, timing, topology_rule
from cellsdf.generate.sampling import Auto, Sampler, model_sampler
from cellsdf.geometry.grid import frame_times, grid_spacing
from cellsdf.geometry.mesh_defaults import MESH_TOLERANCE, SMOOTHING
from cellsdf.geometry.surface import frame_mesh
from cellsdf.io.mesh import napari_surface
from cellsdf.model.trained import TrainedModel


@dataclass(frozen=True)
class GeneratedSurfaces:
    """A generated cell's surfaces, one mesh per frame, with what it was drawn from.

    Attributes
    ----------
    meshes : list of trimesh.Trimesh
        One mesh per frame, vertices (z, y, x) in µm of the ``resolution``³ grid.
    latent : np.ndarray
        float32 (L,) code.
    rotation : np.ndarray or None
        (3,) rotation vector, or None.
    spacing : tuple of float
        Voxel size (z, y, x) in µm of the grid the meshes were made on.
    frame_interval : float
        Seconds between frames.
    redraws : int
        Draws rejected before this one (empty frames, frames cut by the grid border, broken topology).
    info : dict
        The draw's description (sampler and its settings), as ``cellsdf generate`` records it.
    """

    meshes: list[trimesh.Trimesh]
    latent: np.ndarray
    rotation: np.ndarray | None
    spacing: tuple[float, float, float]
    frame_interval: float
    redraws: int
    info: dict

    def napari_surface(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Return the time-lapse as one 4D napari surface (:func:`cellsdf.io.mesh.napari_surface`)."""
        return napari_surface(self.meshes, self.frame_interval)


def generate_surfaces(
    model: TrainedModel,
    *,
    frames: int,
    resolution: int,
    seed: int = 0,
    sampler: Sampler | None = None,
    rotation: str = "uniform",
    index: int = 0,
    count: int = 1,
    max_draws: int = 50,
    topology: str = "auto",
    smoothing: int = SMOOTHING,
    tolerance: float | None = MESH_TOLERANCE,
    faces: int | None = 20000,
    precision: str = "auto",
    tracking: bool = True,
) -> Generator[int, None, GeneratedSurfaces]:
    """Draw and decode one generated cell into display meshes, frame by frame, in memory.

    A generator, so a caller can show progress (or stop early): it yields the index of each frame as it
    is meshed (starting again at 0 after a rejected draw) and returns the cell; ``yield from`` or
    ``next`` until ``StopIteration`` gives the value. The draw is the one ``cellsdf generate`` makes for
    cell ``index`` of ``count`` with the same seed and sampler, so the meshes match that run's files.

    Parameters
    ----------
    model : TrainedModel
        The trained model.
    frames, resolution : int
        Number of frames (spread over the training sequences' mean duration) and grid side.
    seed : int
        Seed of the run; the cell's generator is seeded with (seed, index).
    sampler : Sampler, optional
        Latent sampler; None or :class:`~cellsdf.generate.sampling.Auto`: the model's own choice.
    rotation : {'uniform', 'none'}
        Rotation of the cell.
    index, count : int
        The cell's place in a run of ``count`` cells; ``interpolate`` puts it at ``index / (count - 1)``
        along its path.
    max_draws : int
        Draws before giving up on a random sampler.
    topology : {'auto', 'none', 'single', 'divide_once'}
        Topology rule frames must keep (``auto``: the rule of the model's cell line).
    smoothing : int
        Taubin iterations of each mesh.
    tolerance : float or None
        Decimate each frame's mesh as far as it stays within this many voxels of the full mesh, as
        ``cellsdf generate mesh.tolerance=`` does; None keeps every face.
    faces : int or None
        Then decimate each frame's mesh to at most this many faces; None sets no limit.
    precision : {'auto', '32', 'bf16'}
        Decoder arithmetic, as ``cellsdf generate precision=``.
    tracking : bool
        Follow each frame's surface from the previous one, as ``cellsdf generate tracking=``.

    Yields
    ------
    int
        Index of the frame just meshed.

    Returns
    -------
    GeneratedSurfaces
        The meshes and the draw.

    Raises
    ------
    InputError
        If ``frames`` or ``resolution`` is too small, ``index`` is outside the run, or no draw gives a usable
        cell.

    Examples
    --------
    >>> from cellsdf.model.trained import load_trained
    >>> steps = generate_surfaces(load_trained("plat"), frames=2, resolution=16, seed=0)
    >>> try:
    ...     while True:
    ...         frame = next(steps)
    ... except StopIteration as done:
    ...     cell = done.value
    >>> len(cell.meshes), frame
    (2, 1)
    """
    if frames < 1 or resolution < 8:
        raise InputError("generate", f"needs frames >= 1 and resolution >= 8, got {frames} and {resolution}")
    if not 0 <= index < count:
        raise InputError("index", f"must lie in 0 .. {count - 1}, got {index}")
    sampler = model_sampler(sampler or Auto(), model.sampler, source=str(model.file))
    latents = learned_codes(model, sampler)
    rule = topology_rule(model, topology)
    scale, interval = timing(model, frames, None)
    spacing = grid_spacing(resolution, scale)
    times = frame_times(frames).tolist()

    def attempt(draw: Draw) -> Generator[int, None, list[trimesh.Trimesh]]:
        masks, _ = _Watcher([], frames, rule).decode(
            model,
            draw.latent,
            times,
            resolution=resolution,
            rotation=draw.rotation,
            precision=precision,
            tracking=tracking,
        )
        meshes = []
        for frame, mask in enumerate(masks):
            meshes.append(frame_mesh(mask, spacing, smoothing=smoothing, tolerance=tolerance, faces=faces))
            yield frame
        return meshes

    cell = yield from draw_accepted(
        attempt,
        latents=latents,
        sampler=sampler,
        rotation=rotation,
        rng=np.random.default_rng([seed, index]),
        index=index,
        count=count,
        max_draws=max_draws,
        name=f"cell {index}",
    )
    draw = cell.draw
    return GeneratedSurfaces(
        cell.value, draw.latent, draw.rotation, spacing, interval, len(cell.rejected), draw.info
    )
