"""The picture of a lift: each view's mask beside the silhouettes of the ranked hypotheses in that view."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from cellsdf.io.atomic import atomic_path


def write_lift_picture(
    path: str | Path,
    masks: Sequence[np.ndarray],
    silhouettes: Sequence[Sequence[np.ndarray]],
    titles: Sequence[str],
    *,
    depth_slices: Sequence[np.ndarray] | None = None,
) -> Path:
    """Write a PNG: one row per view, the mask first, then each hypothesis' silhouette (mask outline on top).

    Parameters
    ----------
    path : str or Path
        Output ``.png``.
    masks : sequence of np.ndarray
        bool (N, N) mask of each view.
    silhouettes : sequence of sequence of np.ndarray
        ``silhouettes[k][v]``: hypothesis k's silhouette in view v.
    titles : sequence of str
        One title per hypothesis (rank and fit).
    depth_slices : sequence of np.ndarray, optional
        One (N, N) image per hypothesis shown in an extra row: its side view (projection along y), where
        the hypotheses differ most.

    Returns
    -------
    Path
        The written file.
    """
    rows = len(masks) + (depth_slices is not None)
    columns = 1 + len(silhouettes)
    fig = Figure(figsize=(2.2 * columns, 2.2 * rows))
    FigureCanvasAgg(fig)
    axes = fig.subplots(rows, columns, squeeze=False)
    for v, mask in enumerate(masks):
        axes[v, 0].imshow(mask, cmap="gray", interpolation="nearest")
        axes[v, 0].set_title(f"mask, view {v + 1}", fontsize=8)
        for k, shapes in enumerate(silhouettes):
            axes[v, k + 1].imshow(shapes[v], cmap="magma", interpolation="nearest")
            axes[v, k + 1].contour(mask, levels=[0.5], colors="c", linewidths=0.6)
            if v == 0:
                axes[v, k + 1].set_title(titles[k], fontsize=8)
    if depth_slices is not None:
        axes[-1, 0].text(0.5, 0.5, "side view\n(along y)", ha="center", va="center", fontsize=8)
        for k, side in enumerate(depth_slices):
            axes[-1, k + 1].imshow(side, cmap="magma", interpolation="nearest")
    for ax in axes.ravel():
        ax.set_xticks([])
        ax.set_yticks([])
    fig.tight_layout()
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110)
    return path
