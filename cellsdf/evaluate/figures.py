"""PNG figures of an evaluation: descriptor distributions, descriptors over time, a montage of cells."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from cellsdf.io.atomic import atomic_path
from cellsdf.io.preview import draw_surface

COLOURS = {"real": "tab:blue", "generated": "tab:orange"}
_COLUMNS = 4


def plot_distributions(
    path: Path,
    values: dict[str, dict[str, np.ndarray]],
    distances: dict[str, dict],
    units: dict[str, str],
) -> Path:
    """Draw one panel per measure with the real and generated histograms on shared bins.

    Parameters
    ----------
    path : Path
        Output PNG.
    values : dict
        ``real`` and ``generated``, each mapping a measure to its values.
    distances : dict
        Per measure the output of :func:`cellsdf.evaluate.distributions.distribution_distances`.
    units : dict of str to str
        Unit per measure ('' for none).

    Returns
    -------
    Path
        The written picture.
    """
    names = list(distances)
    fig, axes = _grid(names)
    for ax, name in zip(axes, names, strict=False):
        real, generated = values["real"][name], values["generated"][name]
        both = np.concatenate([real, generated])
        both = both[np.isfinite(both)]
        if len(both):
            if np.allclose(both, np.round(both)):  # counts
                ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            for role, sample in (("real", real), ("generated", generated)):
                sample = sample[np.isfinite(sample)]
                if not len(sample):
                    continue
                ax.hist(
                    sample,
                    bins=_bins(both),
                    density=True,
                    histtype="stepfilled",
                    alpha=0.45,
                    color=COLOURS[role],
                    edgecolor=COLOURS[role],
                    label=role,
                )
        d = distances[name]
        summary = "" if d["ks"] is None else f"\nW/σ {d['wasserstein_normalised']:.2f}  KS {d['ks']:.2f}"
        ax.set_title(f"{_label(name, units)}{summary}", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.set_yticks([])
    axes[0].legend(fontsize=7)
    return _save(fig, path)


def plot_over_time(
    path: Path, series: dict[str, dict[str, list[list[float]]]], units: dict[str, str]
) -> Path:
    """Draw per measure its mean (line) and standard deviation (band) over the frame index.

    Parameters
    ----------
    path : Path
        Output PNG.
    series : dict
        ``real`` and ``generated``, each mapping a measure to one list per sequence of values per frame
        (NaN where a frame was not measured).
    units : dict of str to str
        Unit per measure.

    Returns
    -------
    Path
        The written picture.
    """
    names = list(series["real"])
    fig, axes = _grid(names)
    for ax, name in zip(axes, names, strict=False):
        for role in ("real", "generated"):
            table = _padded(series[role][name])
            if not np.isfinite(table).any():
                continue
            mean, std = _mean_std(table)
            frames = np.arange(len(mean))
            ax.plot(frames, mean, color=COLOURS[role], label=role, lw=1.2)
            ax.fill_between(frames, mean - std, mean + std, color=COLOURS[role], alpha=0.2, lw=0)
        ax.set_title(_label(name, units), fontsize=8)
        ax.set_xlabel("frame", fontsize=7)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.tick_params(labelsize=7)
    axes[0].legend(fontsize=7)
    return _save(fig, path)


def plot_montage(
    path: Path, cells: dict[str, list[tuple[str, np.ndarray, tuple[float, float, float]]]]
) -> Path:
    """Draw real and generated cells side by side: a maximum projection along z and a rendered surface.

    Parameters
    ----------
    path : Path
        Output PNG.
    cells : dict
        ``real`` and ``generated``, each a list of (title, bool crop (Z, Y, X), voxel size (z, y, x) µm).

    Returns
    -------
    Path
        The written picture.
    """
    columns = max(1, *(len(c) for c in cells.values()))
    fig = Figure(figsize=(2.0 * columns, 2.1 * 2 * len(cells)), layout="constrained")
    FigureCanvasAgg(fig)
    for block, (role, items) in enumerate(cells.items()):
        for col, (title, crop, spacing) in enumerate(items):
            ax = fig.add_subplot(2 * len(cells), columns, 2 * block * columns + col + 1)
            extent = (0, crop.shape[2] * spacing[2], crop.shape[1] * spacing[1], 0)
            ax.imshow(crop.max(axis=0), cmap="gray", interpolation="nearest", extent=extent)
            ax.set_title(f"{role}: {title}", fontsize=7, color=COLOURS[role])
            ax.set_xlabel("µm", fontsize=6, labelpad=1)
            ax.tick_params(labelsize=6)
            ax = fig.add_subplot(
                2 * len(cells), columns, (2 * block + 1) * columns + col + 1, projection="3d"
            )
            draw_surface(ax, crop, spacing, colour=COLOURS[role])
    return _save(fig, path)


def _grid(names: list[str]) -> tuple[Figure, list]:
    rows = max(1, int(np.ceil(len(names) / _COLUMNS)))
    fig = Figure(figsize=(3.0 * _COLUMNS, 2.4 * rows), layout="constrained")
    FigureCanvasAgg(fig)
    axes = [fig.add_subplot(rows, _COLUMNS, i + 1) for i in range(len(names))]
    return fig, axes


def _bins(values: np.ndarray) -> np.ndarray | int:
    lo, hi = float(values.min()), float(values.max())
    if np.allclose(values, np.round(values)) and hi - lo <= 30:  # counts: one bar per integer
        return np.arange(lo - 0.5, hi + 1.5)
    if hi == lo:
        return np.array([lo - 0.5, lo + 0.5])
    return np.linspace(lo, hi, 25)


def _padded(rows: list[list[float]]) -> np.ndarray:
    width = max((len(r) for r in rows), default=0)
    table = np.full((len(rows), width), np.nan)
    for i, row in enumerate(rows):
        table[i, : len(row)] = row
    return table


def _mean_std(table: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Column mean and standard deviation over finite entries; NaN for a column without any."""
    finite = np.isfinite(table)
    count = finite.sum(axis=0)
    values = np.where(finite, table, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = values.sum(axis=0) / count
        std = np.sqrt(np.where(finite, (values - mean) ** 2, 0.0).sum(axis=0) / count)
    return mean, std


def _label(name: str, units: dict[str, str]) -> str:
    unit = units.get(name, "")
    return f"{name.replace('_', ' ')} ({unit})" if unit else name.replace("_", " ")


def _save(fig: Figure, path: Path) -> Path:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=100)
    return Path(path)
