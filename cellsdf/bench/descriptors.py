"""Descriptors row: seconds per frame to measure a simulated sequence, ours and the plain way."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
from scipy import ndimage
from skimage.measure import euler_number, regionprops
from skimage.morphology import skeletonize

from cellsdf.bench.measure import TARGET_SIZE, measure
from cellsdf.bench.row import Row
from cellsdf.evaluate.inputs import list_sequences
from cellsdf.evaluate.sequence import describe_sequence
from cellsdf.geometry.surface import surface_mesh
from cellsdf.io.tiff import write_timelapse
from cellsdf.simulate import sequence_rng, simulate_frames

TARGET_SECONDS = 0.6  # per 256³ frame on one core: 33 sequences x 30 frames in 10 minutes
_SPACING = (0.1, 0.1, 0.1)


def plain_descriptors(mask: np.ndarray, spacing: tuple[float, float, float]) -> None:
    """Measure a frame the simple way: the same library calls on the whole grid, full-resolution skeleton.

    Parameters
    ----------
    mask : np.ndarray
        bool (Z, Y, X).
    spacing : tuple of float
        Voxel size (z, y, x) in µm.
    """
    mesh = surface_mesh(np.pad(mask, 1), spacing)
    _ = mesh.area, mesh.volume, mesh.integral_mean_curvature, mesh.convex_hull.volume
    _ = regionprops(mask.astype(np.uint8), spacing=spacing)[0].inertia_tensor_eigvals
    ndimage.label(mask, structure=np.ones((3, 3, 3), bool))
    euler_number(mask, connectivity=3)
    skeleton = skeletonize(mask)
    ndimage.convolve(skeleton.astype(np.uint8), np.ones((3, 3, 3), np.uint8), mode="constant")


def descriptors_row(*, cell_line: str = "plat", size: int, frames: int, seed: int) -> Row:
    """Time ``cellsdf evaluate``'s per-frame work on one simulated sequence, our way and the plain way.

    Ours reads the frames one at a time from a TIFF and computes every descriptor, the over-time measures and
    the surface points, on each frame's bounding box; peak memory is that of this streaming run. The plain way
    computes the same descriptors on the whole grid of every frame.

    Parameters
    ----------
    cell_line : str
        Simulated cell line; ``plat`` has the largest cells.
    size : int
        Grid side in voxels (the target is stated for 256).
    frames : int
        Frames timed.
    seed : int
        Seed of the simulated sequence.

    Returns
    -------
    Row
        ``ours`` and ``reference`` in s per frame; ``passed`` is None unless ``size`` is the target size.
    """
    stream, _, _ = simulate_frames(cell_line, frames, size, sequence_rng(seed, 0))
    masks = np.stack(list(stream))
    with tempfile.TemporaryDirectory() as tmp:
        write_timelapse(Path(tmp) / "bench.tif", masks, spacing=_SPACING)
        spec = list_sequences(Path(tmp) / "bench.tif")[0]
        seconds, peak = measure(lambda: describe_sequence(spec, points=1024, seed=(seed,)))
    plain, _ = measure(lambda: [plain_descriptors(mask, _SPACING) for mask in masks])
    ours, reference = seconds / frames, plain / frames
    return Row(
        name=f"evaluate descriptors {cell_line} {size}³ (s/frame)",
        ours=ours,
        reference=reference,
        ratio=reference / ours,
        target=f"<= {TARGET_SECONDS} s/frame at {TARGET_SIZE}³, 1 core",
        passed=ours <= TARGET_SECONDS if size == TARGET_SIZE else None,
        peak_mib=peak,
    )
