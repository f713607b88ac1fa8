"""Masks to a prepared dataset: centre, common scale, signed distance, point samples, evaluation masks."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from cellsdf.dataset.decompose import open_body
from cellsdf.dataset.normalise import centres, crop_padded, frame_boxes, half_extent
from cellsdf.dataset.options import check_prepare_sizes
from cellsdf.dataset.prepared import SequenceInfo, config_json, create_prepared, write_frame
from cellsdf.dataset.sampling import sample_points
from cellsdf.dataset.sdf import interpolate_sdf, signed_distance
from cellsdf.dataset.sources import SequenceLoader, scan_sequences
from cellsdf.errors import InputError
from cellsdf.geometry.grid import cube_grid
from cellsdf.io.atomic import atomic_path, check_writable
from cellsdf.progress import track


def frame_times(frame_numbers: np.ndarray) -> np.ndarray:
    """Map frame numbers linearly to t in [-1, 1] (a single frame gets t = 0).

    Parameters
    ----------
    frame_numbers : np.ndarray
        Increasing frame numbers of one sequence.

    Returns
    -------
    np.ndarray
        float32 times.
    """
    numbers = np.asarray(frame_numbers, dtype=np.float64)
    span = numbers[-1] - numbers[0]
    if span == 0:
        return np.zeros(len(numbers), np.float32)
    return (2.0 * (numbers - numbers[0]) / span - 1.0).astype(np.float32)


def prepare_dataset(
    loaders: list[SequenceLoader],
    out: str | Path,
    *,
    centre: str = "sequence",
    margin: float = 0.1,
    points_per_frame: int = 16384,
    surface_fraction: float = 0.8,
    surface_sigmas: tuple[float, ...] = (0.01, 0.05),
    thin_power: float = 0.0,
    interior_fraction: float = 0.0,
    exact_band: float = 0.15,
    eval_size: int = 64,
    body_radius: float | None = None,
    seed: int = 0,
    overwrite: bool = False,
    progress: bool = False,
    scale: float | None = None,
) -> Path:
    """Turn mask sequences into one prepared-dataset file.

    Every sequence is centred (``centre``) and all are scaled by one common factor so that the largest fits in
    [-1 + margin, 1 - margin]³, keeping relative sizes. Signed distances are computed on each frame's bounding
    box grown by ``exact_band`` (normalised units), exact there and an upper bound beyond.

    Parameters
    ----------
    loaders : list of SequenceLoader
        The sequences (see :func:`cellsdf.dataset.sources.find_sequences`); each is read twice, once to
        measure and once to sample, so that the data set never has to fit in memory.
    out : str or Path
        The ``.h5`` file to write (atomically).
    centre : {'sequence', 'frame'}
        One centre per sequence (keeps motion) or per frame.
    margin : float
        Free border of the cube, in normalised units.
    points_per_frame : int
        Samples stored per frame.
    surface_fraction : float
        Share of samples near the surface.
    surface_sigmas : tuple of float
        Gaussian jitter scales of near-surface samples, normalised units.
    thin_power : float
        Near-surface and interior samples are drawn with weight ``max(h, 1) ** -thin_power`` (``h`` the
        local half-thickness in voxels), so that thin parts get more of them; 0: uniformly.
    interior_fraction : float
        Share of samples inside the cell (taken from the uniform share, so at most ``1 - surface_fraction``).
    exact_band : float
        Distance from the cell (normalised units) within which stored SDF values are exact.
    eval_size : int
        Side of the evaluation masks stored per frame (grid over [-1, 1]³).
    body_radius : float, optional
        Prepare the cells' bodies instead of the cells: each mask opened by a ball of this radius in µm
        (:func:`cellsdf.dataset.decompose.open_body`), centred and scaled as the whole cells are, so that
        protrusions measured on the whole masks sit where they belong on the bodies.
    seed : int
        Seed of the sampling.
    overwrite : bool
        Replace an existing output.
    progress : bool
        Show progress bars.
    scale : float, optional
        Normalised units per µm to use instead of fitting the largest cell to ``margin``, so that new data
        share the units of an existing data set (a trained model's); every cell must still fit in [-1, 1]³.

    Returns
    -------
    Path
        The written file.
    """
    out = check_writable(out, overwrite)
    if not loaders:
        raise InputError(out, "no sequences to prepare")
    if not 0.0 <= margin < 1.0:
        raise InputError("margin", f"must lie in [0, 1), got {margin}")
    if points_per_frame < 1 or eval_size < 2:
        raise InputError("points_per_frame", "points_per_frame must be >= 1 and eval_size >= 2")
    # Sizes from the options are checked against the memory before any input is read (a recipe in a model
    # file sets them as well as the command line).
    check_prepare_sizes(points_per_frame, eval_size)
    # The first pass keeps each sequence's boxes and centres (a few numbers per frame) for the second.
    infos, sequence_boxes, frame_centres, extent = [], [], [], 0.0
    for loader in track(loaders, "measuring", show=progress):
        seq = loader.load()
        boxes = frame_boxes(seq.masks)
        seq_centres = centres(boxes, seq.spacing, centre)
        seq_extent = half_extent(boxes, seq.spacing, seq_centres)
        if seq_extent > extent:
            extent, largest = seq_extent, seq.source
        sequence_boxes.append(boxes)
        frame_centres.append(seq_centres)
        infos.append(
            SequenceInfo(
                seq.name, seq.source, seq.spacing, len(seq.masks), seq.frame_interval, seq.division_frame
            )
        )
    if scale is None:
        scale = (1.0 - margin) / extent
    elif not 0.0 < scale * extent <= 1.0:
        raise InputError(
            largest,
            f"at the given scale ({scale:.4g} normalised units per µm) this cell spans "
            f"{2 * scale * extent:.3g} units and does not fit in [-1, 1]³",
        )
    config = {
        "centre": centre,
        "margin": margin,
        "points_per_frame": points_per_frame,
        "surface_fraction": surface_fraction,
        "surface_sigmas": list(surface_sigmas),
        "thin_power": thin_power,
        "interior_fraction": interior_fraction,
        "exact_band": exact_band,
        "eval_size": eval_size,
        "body_radius": body_radius,
        "seed": seed,
    }
    attrs = {"scale": scale, "margin": margin, "centre": centre, "config": config_json(config)}
    rng = np.random.default_rng(seed)
    eval_points = cube_grid(eval_size)
    total = sum(info.frames for info in infos)
    row = 0
    with atomic_path(out) as tmp:
        with create_prepared(tmp, total, points_per_frame, eval_size, attrs, infos) as f:
            frames = ((i, loader.load()) for i, loader in enumerate(loaders))
            for index, seq in track(frames, "preparing", total=len(loaders), show=progress):
                spacing = np.asarray(seq.spacing)
                step = spacing * scale
                pad = np.ceil(exact_band / step).astype(np.int64) + 1
                times = frame_times(seq.frame_numbers)
                for k, mask in enumerate(seq.masks):
                    box = sequence_boxes[index][k]
                    lo, hi = box[0] - pad, box[1] + 1 + pad
                    crop = crop_padded(mask, lo, hi)
                    if body_radius is not None:
                        crop = open_body(crop, radius=body_radius, spacing=seq.spacing)
                        if not crop.any():
                            raise InputError(
                                seq.source,
                                f"{seq.name}, frame {k}: no ball of radius {body_radius} µm fits in the "
                                "cell, so it has no body; lower body_radius",
                            )
                    sdf = signed_distance(crop, spacing=seq.spacing) * np.float32(scale)
                    origin = (lo * spacing - frame_centres[index][k]) * scale
                    points, values = sample_points(
                        sdf,
                        origin,
                        step,
                        points_per_frame,
                        rng,
                        surface_fraction=surface_fraction,
                        sigmas=tuple(surface_sigmas),
                        thin_power=thin_power,
                        interior_fraction=interior_fraction,
                    )
                    eval_mask = interpolate_sdf(sdf, origin, step, eval_points) <= 0
                    write_frame(
                        f,
                        row,
                        index,
                        float(times[k]),
                        int(seq.frame_numbers[k]),
                        frame_centres[index][k],
                        points,
                        values,
                        eval_mask.reshape((eval_size,) * 3),
                    )
                    row += 1
    return out


def prepare_source(
    source: str | Path,
    out: str | Path,
    *,
    label: int | None = None,
    threshold: float | None = None,
    components: str = "all",
    spacing: tuple[float, float, float] | None = None,
    link: str = "labels",
    border: str = "drop",
    axes: str | None = None,
    seed: int = 0,
    overwrite: bool = False,
    progress: bool = False,
    report: bool = False,
    scale: float | None = None,
    **steps: object,
) -> Path:
    """Find the sequences in ``source`` (as ``cellsdf prepare`` reads them) and prepare them into ``out``.

    Parameters
    ----------
    source : str or Path
        A TIFF, a folder of TIFFs, a Cell Tracking Challenge folder or a reference HDF5 file.
    out : str or Path
        Prepared-dataset file to write.
    label, threshold, components, spacing, link, border, axes
        How masks are read (see :func:`cellsdf.dataset.sources.scan_sequences`).
    seed : int
        Sampling seed.
    overwrite, progress : bool
        Replace an existing file; show progress bars.
    report : bool
        Print how many cells were found and what the border rule did.
    scale : float, optional
        Normalised units per µm to use instead of fitting the data into the cube (a trained model's scale).
    **steps
        ``centre``, ``margin``, ``points_per_frame``, ``surface_fraction``, ``surface_sigmas``,
        ``thin_power``, ``interior_fraction``, ``exact_band``, ``eval_size``, ``body_radius`` of
        :func:`prepare_dataset`.

    Returns
    -------
    Path
        The written file.
    """
    scan = scan_sequences(
        source,
        label=label,
        threshold=threshold,
        components=components,
        spacing=None if spacing is None else tuple(spacing),
        link=link,
        border=border,
        axes=axes,
    )
    if report:
        print(scan.summary(source, border))
    if "surface_sigmas" in steps:
        steps["surface_sigmas"] = tuple(steps["surface_sigmas"])
    return prepare_dataset(
        scan.loaders, out, seed=seed, overwrite=overwrite, progress=progress, scale=scale, **steps
    )
