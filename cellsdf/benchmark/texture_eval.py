"""A trained texture model judged on the held-out quarter of its real image: realism figures and a picture."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from cellsdf.benchmark.realism import holdout_quarter, texture_realism
from cellsdf.io.atomic import atomic_path
from cellsdf.texture.models import Texture, gan
from cellsdf.texture.pairs import ImagePair


def heldout_quarter(pair: ImagePair, side_multiple: int) -> tuple[np.ndarray, np.ndarray]:
    """Return a pair's bottom-right quarter, trimmed to sides the generator takes."""
    image, labels = holdout_quarter(pair.image, pair.labels)
    h, w = (s - s % side_multiple for s in labels.shape)
    return image[:h, :w], labels[:h, :w]


def write_realism_preview(path: Path, panels: dict[str, np.ndarray], figures: dict[str, dict]) -> None:
    """Draw real and textured panels side by side, with each model's realism figures in its title."""
    # One grey scale for all panels, set by the real image, so brightness differences show.
    top = float(np.percentile(next(iter(panels.values())), 99.8))
    fig = Figure(figsize=(3.3 * len(panels), 3.6), layout="constrained")
    FigureCanvasAgg(fig)
    for i, (title, image) in enumerate(panels.items()):
        ax = fig.add_subplot(1, len(panels), i + 1)
        ax.imshow(image, cmap="gray", vmin=0, vmax=top, interpolation="nearest")
        if title in figures:
            f = figures[title]
            w1 = f"W1 fg {f['w1_foreground']:.1f}, bg {f['w1_background']:.1f} ADU"
            title += f"\n{w1}; spectrum {f['spectrum_distance']:.2f}"
        ax.set_title(title, fontsize=8)
        ax.set_axis_off()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110)


def evaluate_texture_model(
    model_file: Path,
    baseline: Texture,
    pair: ImagePair,
    out: Path,
    *,
    side_multiple: int,
    seed: int,
    holdout: bool,
) -> dict[str, dict]:
    """Texture the held-out quarter with the GAN and the baseline; write preview.png; return the figures."""
    real, labels = heldout_quarter(pair, side_multiple)
    # Judged as shipped: the exported file, as texture=gan loads it.
    trained = gan(checkpoint=str(model_file))
    figures, images = texture_realism(real, labels, [trained, baseline], [seed])
    title = "real, held-out quarter" if holdout else "real, bottom-right quarter (trained on)"
    write_realism_preview(out / "preview.png", {title: real, **images}, figures)
    return figures
