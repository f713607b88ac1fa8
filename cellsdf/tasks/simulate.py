"""``cellsdf simulate``: write procedural cell-line sequences as TIFF time-lapses with a manifest."""

from __future__ import annotations

from collections.abc import Iterator
from importlib.resources import files
from pathlib import Path

import numpy as np
from omegaconf import DictConfig, OmegaConf
from scipy import ndimage

from cellsdf.errors import InputError
from cellsdf.io.atomic import check_writable
from cellsdf.io.manifest import write_manifest
from cellsdf.io.spacing import check_spacing
from cellsdf.io.tiff import write_timelapse
from cellsdf.progress import track
from cellsdf.simulate import CELL_LINES, sequence_rng, simulate_frames


def simulate_to_folder(
    cell_line: str,
    out: str | Path,
    sequences: int = 33,
    frames: int = 30,
    size: int = 256,
    spacing: tuple[float, float, float] = (1.0, 1.0, 1.0),
    frame_interval: float = 1.0,
    seed: int = 0,
    overwrite: bool = False,
    progress: bool = False,
) -> list[dict]:
    """Simulate sequences of one cell line and write ``out/<cell_line>_000.tif`` ... plus ``manifest.json``.

    Frames are made and written one at a time, so memory does not grow with the number of frames.

    Parameters
    ----------
    cell_line : {'plat', 'cele', 'filo'}
        Which cell line.
    out : str or Path
        Output folder.
    sequences, frames, size : int
        Number of sequences, frames per sequence, grid side in voxels.
    spacing : tuple of float
        Voxel size (z, y, x) in µm written to the TIFFs.
    frame_interval : float
        Seconds between frames written to the TIFFs.
    seed : int
        Run seed; sequence i uses ``SeedSequence([seed, i])``.
    overwrite : bool
        Replace existing files.
    progress : bool
        Show a progress bar.

    Returns
    -------
    list of dict
        Manifest items: file, seed, division frame, drawn parameters, voxels and components per frame.
    """
    if cell_line not in CELL_LINES:
        raise InputError(
            "cellline", f"unknown cell line {cell_line!r}; choose one of {', '.join(CELL_LINES)}"
        )
    if sequences < 1 or frames < 1 or size < 16:
        raise InputError(
            "simulate", f"need sequences >= 1, frames >= 1, size >= 16 (got {sequences}, {frames}, {size})"
        )
    out = Path(out)
    files = [out / f"{cell_line}_{i:03d}.tif" for i in range(sequences)]
    for file in [*files, out / "manifest.json"]:
        check_writable(file, overwrite)
    items = []
    for i, file in enumerate(track(files, f"simulating {cell_line}", show=progress)):
        stream, division, params = simulate_frames(cell_line, frames, size, sequence_rng(seed, i))
        voxels: list[int] = []
        components: list[int] = []
        write_timelapse(
            file,
            _counted(stream, voxels, components),
            shape=(frames, size, size, size),
            spacing=spacing,
            frame_interval=frame_interval,
            overwrite=overwrite,
        )
        items.append(
            {
                "file": file.name,
                "index": i,
                "cell_line": cell_line,
                "division_frame": division,
                "params": params,
                "voxels": voxels,
                "components": components,
            }
        )
    return items


def _counted(frames: Iterator[np.ndarray], voxels: list[int], components: list[int]) -> Iterator[np.ndarray]:
    full = np.ones((3, 3, 3), bool)
    for frame in frames:
        voxels.append(int(frame.sum()))
        components.append(int(ndimage.label(frame, structure=full)[1]))
        yield frame


def scaled_spacing(spacing_at_256: tuple[float, ...], size: int) -> tuple[float, float, float]:
    """Return a cell line's voxel size at grid ``size``, given its voxel size at 256³.

    Keeping the physical field of view fixed means a smaller grid is the same cell at a coarser resolution.
    """
    return tuple(float(s) * 256.0 / size for s in spacing_at_256)


def shipped_spacing(cell_line: str, size: int) -> tuple[float, float, float]:
    """Return a built-in line's voxel size (µm) at grid ``size``, from its ``conf/cellline/<line>.yaml``."""
    if cell_line not in CELL_LINES:
        raise InputError("cellline", f"choose one of {', '.join(CELL_LINES)}, got {cell_line!r}")
    text = (files("cellsdf.conf") / "cellline" / f"{cell_line}.yaml").read_text()
    return scaled_spacing(OmegaConf.create(text).spacing_at_256, size)


def run(cfg: DictConfig) -> dict:
    """Simulate one cell line as configured in ``conf/simulate.yaml``; return the manifest items."""
    out = Path(cfg.out)
    spacing = check_spacing("spacing", None if cfg.spacing is None else list(cfg.spacing))
    items = simulate_to_folder(
        cfg.cellline.name,
        out,
        sequences=cfg.sequences,
        frames=cfg.frames,
        size=cfg.size,
        spacing=spacing or scaled_spacing(cfg.cellline.spacing_at_256, cfg.size),
        frame_interval=float(cfg.cellline.frame_interval),
        seed=cfg.seed,
        overwrite=cfg.overwrite,
        progress=cfg.progress,
    )
    write_manifest(out, "simulate", OmegaConf.to_container(cfg, resolve=True), cfg.seed, items)
    print(f"wrote {len(items)} {cfg.cellline.name} sequences to {out}")
    return {"out": out, "items": items}
