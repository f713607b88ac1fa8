"""Preview pictures of mask time-lapses: projections over time and a rendered surface, as PNG."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import LightSource
from matplotlib.figure import Figure
from mpl_toolkits.mplot3d.art3d import Poly3DCollection

from cellsdf.geometry.surface import crop_box, surface_mesh
from cellsdf.io.atomic import atomic_path

_LIGHT = LightSource(azdeg=315, altdeg=45)
_RENDER_SIDE = 64  # marching-cubes cells along a rendered cell's longest side


@dataclass(frozen=True)
class PreviewRow:
    """One row of a preview picture: z-projections of some frames and one frame's surface.

    Attributes
    ----------
    title : str
        Row title.
    projections : dict of int to np.ndarray
        Frame index to its (Y, X) maximum projection along z.
    surface : np.ndarray
        bool (Z, Y, X) mask whose surface is rendered; not empty.
    surface_frame : int
        Frame index of ``surface``.
    spacing : tuple of float
        Voxel size (z, y, x) in µm, so projections and surface have physical proportions.
    frame_interval : float or None
        Seconds between frames, for times in minutes; None labels frames by index.
    """

    title: str
    projections: dict[int, np.ndarray]
    surface: np.ndarray
    surface_frame: int
    spacing: tuple[float, float, float]
    frame_interval: float | None = None

    def time(self, frame: int) -> str:
        """Label of a frame: its time in minutes, or its index when the interval is unknown."""
        if self.frame_interval is None:
            return f"t={frame}"
        return f"{frame * self.frame_interval / 60.0:.0f} min"


def preview_frames(n_frames: int, *, columns: int = 4) -> list[int]:
    """Return the frame indices a preview shows: ``columns`` evenly spaced, first and last included."""
    return np.unique(np.linspace(0, n_frames - 1, columns).round().astype(int)).tolist()


def write_preview(
    path: str | Path,
    sequences: dict[str, np.ndarray],
    spacing: dict[str, tuple[float, float, float]],
    *,
    columns: int = 4,
    frame_interval: dict[str, float] | None = None,
) -> Path:
    """Draw one row per sequence: z-projections at evenly spaced frames and the last frame's surface.

    Parameters
    ----------
    path : str or Path
        Output PNG.
    sequences : dict of str to np.ndarray
        Row title to bool masks (T, Z, Y, X).
    spacing : dict of str to tuple of float
        Voxel size (z, y, x) in µm per row, so surfaces have physical proportions.
    columns : int
        Number of projection columns.
    frame_interval : dict of str to float, optional
        Seconds between frames per row, for times in minutes.

    Returns
    -------
    Path
        The written picture.
    """
    rows = [
        PreviewRow(
            title,
            {k: masks[k].max(axis=0) for k in preview_frames(len(masks), columns=columns)},
            masks[-1],
            len(masks) - 1,
            spacing[title],
            None if frame_interval is None else frame_interval.get(title),
        )
        for title, masks in sequences.items()
    ]
    return write_preview_rows(path, rows)


def write_preview_rows(path: str | Path, rows: list[PreviewRow]) -> Path:
    """Draw preview rows (projections, then a rendered surface) into one PNG, atomically.

    Every projection is drawn in µm on one common field, so cells of different voxel sizes appear at their
    true relative sizes, with a scale bar.

    Parameters
    ----------
    path : str or Path
        Output PNG.
    rows : list of PreviewRow
        One row each; rows may have different numbers of projections.

    Returns
    -------
    Path
        The written picture.
    """
    columns = max(len(r.projections) for r in rows)
    field = max(
        max(image.shape[0] * r.spacing[1], image.shape[1] * r.spacing[2])
        for r in rows
        for image in r.projections.values()
    )
    bar = _scale_bar_length(field)
    fig = Figure(figsize=(2.2 * (columns + 1), 2.3 * len(rows)), layout="constrained")
    FigureCanvasAgg(fig)
    for row, r in enumerate(rows):
        for col, (frame, image) in enumerate(r.projections.items()):
            ax = fig.add_subplot(len(rows), columns + 1, row * (columns + 1) + col + 1)
            height, width = image.shape[0] * r.spacing[1], image.shape[1] * r.spacing[2]
            extent = (-width / 2, width / 2, height / 2, -height / 2)
            ax.imshow(image, cmap="gray", interpolation="nearest", extent=extent)
            ax.set_xlim(-field / 2, field / 2)
            ax.set_ylim(field / 2, -field / 2)
            ax.set_facecolor("black")
            left, bottom = -0.45 * field, 0.42 * field
            ax.plot([left, left + bar], [bottom, bottom], color="yellow", linewidth=2)
            ax.text(left, bottom - 0.04 * field, f"{bar:g} µm", color="yellow", fontsize=6)
            ax.set_title(f"{r.title}  {r.time(frame)}", fontsize=8)
            ax.set_xticks([])
            ax.set_yticks([])
        ax = fig.add_subplot(len(rows), columns + 1, (row + 1) * (columns + 1), projection="3d")
        draw_surface(ax, r.surface, r.spacing)
        ax.set_title(f"{r.title}  surface {r.time(r.surface_frame)}", fontsize=8)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110)
    return Path(path)


def _scale_bar_length(field: float) -> float:
    """Return a round length (1, 2 or 5 times a power of ten µm) near a fifth of the field."""
    target = field / 5.0
    power = 10.0 ** np.floor(np.log10(target))
    return float(max(m * power for m in (1, 2, 5) if m * power <= target))


def draw_surface(
    ax, mask: np.ndarray, spacing: tuple[float, float, float], *, colour: str = "tab:green"
) -> float:
    """Render a mask's smoothed surface on a 3D axis, with equal scales on all axes and a scale bar.

    Parameters
    ----------
    ax : mpl_toolkits.mplot3d.Axes3D
        Where to draw.
    mask : np.ndarray
        bool (Z, Y, X), not empty.
    spacing : tuple of float
        Voxel size (z, y, x) in µm, so the surface has physical proportions.
    colour : str
        Matplotlib colour of the surface.

    Returns
    -------
    float
        Length of the scale bar in µm.
    """
    crop, origin = crop_box(mask)
    # A coarser marching-cubes step keeps pictures of large cells light; the picture is for looking at.
    step = max(1, int(np.ceil(max(crop.shape) / _RENDER_SIDE)))
    mesh = surface_mesh(crop, spacing, origin=origin, step=step)
    xyz = mesh.vertices[:, ::-1]  # matplotlib draws (x, y, z); our arrays are (z, y, x)
    surface = Poly3DCollection(xyz[mesh.faces], facecolors=colour, shade=True, lightsource=_LIGHT)
    surface.set_edgecolor("none")
    ax.add_collection3d(surface)
    lo, hi = xyz.min(axis=0), xyz.max(axis=0)
    middle, half = 0.5 * (lo + hi), 0.5 * (hi - lo).max()
    ax.set(xlim=(middle[0] - half, middle[0] + half), ylim=(middle[1] - half, middle[1] + half))
    ax.set_zlim(middle[2] - half, middle[2] + half)
    ax.set_axis_off()
    # The axes are off, so a scale bar gives the size. It lies along the screen's horizontal (perpendicular to
    # the view), so it is not foreshortened, below the cell, with its label under it.
    bar = _scale_bar_length(2 * half)
    elev, azim = np.radians(ax.elev), np.radians(ax.azim)
    right = np.array([-np.sin(azim), np.cos(azim), 0.0])
    up = np.array([-np.sin(elev) * np.cos(azim), -np.sin(elev) * np.sin(azim), np.cos(elev)])
    start = middle - 0.9 * half * right - 1.1 * half * up
    ends = np.stack([start, start + bar * right])
    ax.plot(ends[:, 0], ends[:, 1], ends[:, 2], color="black", linewidth=2)
    label = start - 0.18 * half * up
    ax.text(*label, f"{bar:g} µm", fontsize=6)
    return bar
