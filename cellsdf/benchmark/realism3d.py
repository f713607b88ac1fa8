"""How real a synthetic 3D image looks: intensities, spectra in-plane and along z, and a classifier's verdict.

Every synthetic image is rendered from the instance labels of a held-out real frame, so the two differ only
in what the texture model does. Three kinds of figures, each beside what it is for two real images:

- **Intensities**: 1-Wasserstein distances of the voxel values inside and outside the cells
  (:func:`cellsdf.benchmark.realism.intensity_w1`).
- **Spectra**: the radially averaged power spectrum of every z-slice (in-plane), and the power spectrum along
  z averaged over all (y, x) columns (z is sampled 5x coarser than y, x in the public sets, so the two are
  kept apart); distances in decades of power.
- **Classifier two-sample test** (Lopez-Paz and Oquab, ICLR 2017): a small 3D CNN learns to tell real from
  synthetic patches on some frames and is scored on patches of the other frames. Accuracy 0.5 means it cannot
  tell them apart; its floor is the same test between two halves of the real frames (left against right).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from scipy.signal.windows import hann
from scipy.stats import wasserstein_distance
from torch import nn

from cellsdf.benchmark.realism import intensity_w1, spectrum_distance
from cellsdf.io.atomic import atomic_path

PATCH = 32  # patch side in y and x (voxels)
DEPTH = 8  # at most this many z-slices per patch


def axial_power_spectrum(volume: np.ndarray) -> np.ndarray:
    """Return the power spectrum along z of a (Z, Y, X) volume, averaged over its columns, unit sum.

    Each column is mean-subtracted and Hann-windowed; the zero frequency is left out.

    Examples
    --------
    >>> z = np.arange(8)
    >>> volume = np.broadcast_to(np.cos(np.pi * z / 2)[:, None, None], (8, 4, 4))
    >>> int(axial_power_spectrum(volume).argmax())  # 0.25 cycles per slice: bin 2 of 1..4
    1
    """
    volume = np.asarray(volume, np.float64)
    if volume.ndim != 3 or volume.shape[0] < 3:
        raise ValueError(f"expected a (Z, Y, X) volume with at least 3 slices, got {volume.shape}")
    centred = (volume - volume.mean(axis=0)) * hann(volume.shape[0], sym=False)[:, None, None]
    power = (np.abs(np.fft.rfft(centred, axis=0)) ** 2).mean(axis=(1, 2))[1:]
    total = power.sum()
    return power / total if total > 0 else power


def axial_spectrum_distance(real: np.ndarray, synthetic: np.ndarray, floor: float = 1e-12) -> float:
    """Mean absolute difference of the log10 axial power spectra (:func:`axial_power_spectrum`), decades."""
    a, b = axial_power_spectrum(real), axial_power_spectrum(synthetic)
    return float(np.abs(np.log10(np.maximum(a, floor)) - np.log10(np.maximum(b, floor))).mean())


def volume_figures(
    real: np.ndarray, synthetic: np.ndarray, labels: np.ndarray, other_labels: np.ndarray | None = None
) -> dict[str, float]:
    """Intensity and spectrum figures of one (Z, Y, X) frame against a real one.

    Parameters
    ----------
    real, synthetic : np.ndarray
        (Z, Y, X) images of one shape.
    labels : np.ndarray
        The real frame's instance labels (a synthetic frame rendered from them shares them).
    other_labels : np.ndarray, optional
        The second image's own labels when it is another real frame (the floor).

    Returns
    -------
    dict
        ``w1_foreground``, ``w1_background`` (ADU), ``spectrum_in_plane`` (mean over slices) and
        ``spectrum_along_z`` (decades).
    """
    if other_labels is None:
        foreground, background = intensity_w1(real, synthetic, labels)
    else:
        inside, other = labels > 0, other_labels > 0
        foreground = float(wasserstein_distance(real[inside], synthetic[other]))
        background = float(wasserstein_distance(real[~inside], synthetic[~other]))
    in_plane = [spectrum_distance(r, s) for r, s in zip(real, synthetic, strict=True) if r.min() < r.max()]
    return {
        "w1_foreground": foreground,
        "w1_background": background,
        "spectrum_in_plane": float(np.mean(in_plane)),
        "spectrum_along_z": axial_spectrum_distance(real, synthetic),
    }


def random_patches(volumes: list[np.ndarray], count: int, rng: np.random.Generator) -> np.ndarray:
    """Cut ``count`` random (D, PATCH, PATCH) patches from (Z, Y, X) volumes (D = min(Z, DEPTH)).

    Returns
    -------
    np.ndarray
        float32 (count, D, PATCH, PATCH).
    """
    depth = min(DEPTH, min(v.shape[0] for v in volumes))
    out = np.empty((count, depth, PATCH, PATCH), np.float32)
    for i in range(count):
        volume = volumes[rng.integers(len(volumes))]
        z, y, x = (
            int(rng.integers(n - s + 1)) for n, s in zip(volume.shape, (depth, PATCH, PATCH), strict=True)
        )
        out[i] = volume[z : z + depth, y : y + PATCH, x : x + PATCH]
    return out


class PatchClassifier(nn.Module):
    """A small 3D CNN that scores a (1, D, PATCH, PATCH) patch: > 0 for class 1."""

    def __init__(self, width: int = 8):
        super().__init__()
        self.layers = nn.Sequential(
            nn.Conv3d(1, width, 3, padding=1),
            nn.LeakyReLU(0.2),
            nn.Conv3d(width, 2 * width, 3, stride=(1, 2, 2), padding=1),
            nn.LeakyReLU(0.2),
            nn.Conv3d(2 * width, 4 * width, 3, stride=(1, 2, 2), padding=1),
            nn.LeakyReLU(0.2),
            nn.AdaptiveAvgPool3d(1),
            nn.Flatten(),
            nn.Linear(4 * width, 1),
        )

    def forward(self, patches: torch.Tensor) -> torch.Tensor:
        """Return one logit per patch of (N, 1, D, H, W)."""
        return self.layers(patches)[:, 0]


def classifier_accuracy(
    train: tuple[np.ndarray, np.ndarray],
    test: tuple[np.ndarray, np.ndarray],
    *,
    seed: int,
    epochs: int = 30,
    scale: float = 1.0,
) -> float:
    """Train :class:`PatchClassifier` to tell two sets of patches apart; return its accuracy on held-out ones.

    Parameters
    ----------
    train, test : tuple of np.ndarray
        (class 0 patches, class 1 patches), each (N, D, H, W); the test patches come from other frames.
    seed : int
        Seed of the weights and the batch order.
    epochs : int
        Passes over the training patches (Adam, batch 32).
    scale : float
        Intensity divided out of every patch (the real data's 99th percentile), so inputs are about 0-1.

    Returns
    -------
    float
        Share of test patches classified right (0.5: chance for balanced classes).
    """
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    model = PatchClassifier()
    optimiser = torch.optim.Adam(model.parameters(), lr=2e-3)
    inputs, targets = _stacked(train, scale)
    for _ in range(epochs):
        order = torch.randperm(len(inputs), generator=generator)
        for start in range(0, len(order), 32):
            batch = order[start : start + 32]
            loss = nn.functional.binary_cross_entropy_with_logits(model(inputs[batch]), targets[batch])
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
    inputs, targets = _stacked(test, scale)
    with torch.no_grad():
        predicted = (model(inputs) > 0).float()
    return float((predicted == targets).float().mean())


def _stacked(pair: tuple[np.ndarray, np.ndarray], scale: float) -> tuple[torch.Tensor, torch.Tensor]:
    zero, one = pair
    inputs = torch.from_numpy(np.concatenate([zero, one]) / scale).float()[:, None]
    targets = torch.cat([torch.zeros(len(zero)), torch.ones(len(one))])
    return inputs, targets


def realism_table(
    real: np.ndarray,
    labels: np.ndarray,
    textures: dict[str, Callable[[np.ndarray, np.random.Generator], np.ndarray]],
    *,
    seeds: int = 3,
    patches: int = 256,
    epochs: int = 30,
) -> dict:
    """Score texture models on held-out real 3D frames: intensities, spectra and the classifier test.

    Parameters
    ----------
    real : np.ndarray
        (T, Z, Y, X) held-out real frames (at least 2, with at least ``PATCH`` voxels in y and x).
    labels : np.ndarray
        Their (T, Z, Y, X) instance labels.
    textures : dict of str to callable
        Name to ``render(labels (Z, Y, X), rng) -> image``.
    seeds : int
        Repeats (renderings and classifiers), reported as mean and sd.
    patches : int
        Patches per class for training and again for testing.
    epochs : int
        Classifier training passes.

    Returns
    -------
    dict
        ``floor`` (the real-vs-real figures: intensities and spectra between consecutive held-out frames,
        each with its own labels; the classifier between the left and right halves of the frames) and one
        entry per texture, each figure as ``{"mean", "sd"}`` over seeds, with ``frames`` and ``patches``.
    """
    real = np.asarray(real, np.float32)
    if real.ndim != 4 or len(real) < 2 or min(real.shape[2:]) < 2 * PATCH:
        raise ValueError(
            f"need (T >= 2, Z, Y, X) real frames at least {2 * PATCH} voxels wide, got {real.shape}"
        )
    if labels.shape != real.shape:
        raise ValueError(f"labels {labels.shape} and real frames {real.shape} differ in shape")
    scale = float(np.percentile(real, 99)) or 1.0
    # Frames split in two: the classifier trains on the first part and is scored on the second.
    cut = len(real) // 2
    result: dict = {"frames": len(real), "patches": patches, "train_frames": cut}
    floors: dict[str, list[float]] = {}
    # Intensities and spectra between consecutive real frames: what two real images differ by.
    pairs = [volume_figures(real[t], real[t + 1], labels[t], labels[t + 1]) for t in range(len(real) - 1)]
    between = {key: float(np.mean([f[key] for f in pairs])) for key in pairs[0]}
    for seed in range(seeds):
        rng = np.random.default_rng([seed, 0])
        figures = dict(between)
        figures["classifier_accuracy"] = _halves_accuracy(real, cut, rng, seed, patches, epochs, scale)
        for key, value in figures.items():
            floors.setdefault(key, []).append(value)
    result["floor"] = _summary(floors)
    for name, render in textures.items():
        runs: dict[str, list[float]] = {}
        for seed in range(seeds):
            rng = np.random.default_rng([seed, 1])
            synthetic = np.stack([render(frame, rng) for frame in labels]).astype(np.float32)
            per_frame = [volume_figures(r, s, lab) for r, s, lab in zip(real, synthetic, labels, strict=True)]
            figures = {key: float(np.mean([f[key] for f in per_frame])) for key in per_frame[0]}
            train = (
                random_patches(list(real[:cut]), patches, rng),
                random_patches(list(synthetic[:cut]), patches, rng),
            )
            test = (
                random_patches(list(real[cut:]), patches, rng),
                random_patches(list(synthetic[cut:]), patches, rng),
            )
            figures["classifier_accuracy"] = classifier_accuracy(
                train, test, seed=seed, epochs=epochs, scale=scale
            )
            for key, value in figures.items():
                runs.setdefault(key, []).append(value)
        result[name] = _summary(runs)
    return result


def _halves_accuracy(
    real: np.ndarray, cut: int, rng: np.random.Generator, seed: int, patches: int, epochs: int, scale: float
) -> float:
    """Return the classifier's accuracy between the left and right halves of the real frames (its floor)."""
    half = real.shape[-1] // 2
    left, right = real[..., :half], real[..., half:]
    train = (random_patches(list(left[:cut]), patches, rng), random_patches(list(right[:cut]), patches, rng))
    test = (random_patches(list(left[cut:]), patches, rng), random_patches(list(right[cut:]), patches, rng))
    return classifier_accuracy(train, test, seed=seed, epochs=epochs, scale=scale)


def _summary(runs: dict[str, list[float]]) -> dict[str, dict[str, float]]:
    return {key: {"mean": float(np.mean(v)), "sd": float(np.std(v))} for key, v in runs.items()}


FIGURES = {
    "w1_foreground": ("W1 inside cells (ADU)", "{:.2f}"),
    "w1_background": ("W1 outside (ADU)", "{:.2f}"),
    "spectrum_in_plane": ("spectrum in-plane (decades)", "{:.3f}"),
    "spectrum_along_z": ("spectrum along z (decades)", "{:.3f}"),
    "classifier_accuracy": ("real-vs-synthetic classifier accuracy", "{:.3f}"),
}


def realism_markdown(table: dict) -> str:
    """Return the realism table as Markdown: one row per figure, the floor and each texture as columns."""
    names = [key for key in table if isinstance(table[key], dict) and "w1_foreground" in table[key]]
    names = ["floor"] + [n for n in names if n != "floor"]
    header = "| figure | " + " | ".join("real vs real (floor)" if n == "floor" else n for n in names) + " |"
    lines = [header, "|---" * (len(names) + 1) + "|"]
    for key, (label, spec) in FIGURES.items():
        cells = []
        for name in names:
            value = table[name][key]
            cells.append(
                spec.format(value["mean"]) + (" ± " + spec.format(value["sd"]) if value["sd"] else "")
            )
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    frames, train, patches = table["frames"], table["train_frames"], table["patches"]
    lines.append(
        f"\n{frames} held-out frames; classifier trained on patches of the first {train}, scored on "
        f"{patches} + {patches} patches of the others; mean ± sd over seeds."
    )
    return "\n".join(lines)


def write_realism_preview(path: Path, real: np.ndarray, synthetic: dict[str, np.ndarray]) -> Path:
    """Draw the middle slice of a real frame beside the same slice of each texture's rendering of it."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    panels = {"real (held out)": real, **synthetic}
    top = float(np.percentile(real, 99.8)) or 1.0
    fig = Figure(figsize=(4.0 * len(panels), 4.2), layout="constrained")
    FigureCanvasAgg(fig)
    for i, (title, volume) in enumerate(panels.items()):
        ax = fig.add_subplot(1, len(panels), i + 1)
        ax.imshow(volume[volume.shape[0] // 2], cmap="gray", vmin=0, vmax=top)
        ax.set_title(f"{title}, slice {volume.shape[0] // 2}", fontsize=9)
        ax.set_axis_off()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=80)
    return path
