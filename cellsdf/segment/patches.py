"""Random training patches with the augmentations that carry a segmenter from one kind of image to another."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from scipy import ndimage
from torch.utils.data import Dataset

from cellsdf.segment.targets import class_targets, normalise


class PatchDataset(Dataset):
    """``length`` random (image, target) patches drawn from annotated frames.

    Each set of frames is drawn equally often (a few real frames are not drowned by many synthetic ones), and
    within a set, frames in proportion to their size. Each patch is flipped and turned in the fine plane (the
    last two axes), and its contrast, brightness, gamma, blur and noise are varied, so that the network
    learns shapes rather than one texture. Patch ``i`` depends only on (seed, i).

    Parameters
    ----------
    images, labels : sequence of np.ndarray
        Frames (Y, X) or (Z, Y, X) and their instance labels.
    spacings : sequence of tuple of float
        Voxel size of each frame (targets of coarse axes, :func:`cellsdf.segment.targets.class_targets`).
    groups : sequence of int
        The set each frame belongs to.
    patch : tuple of int
        Patch size; frames smaller along an axis are padded (image 0, background).
    length : int
        Patches in the dataset (steps x batch).
    seed : int
        Seeds the draws.
    """

    def __init__(
        self,
        images: Sequence[np.ndarray],
        labels: Sequence[np.ndarray],
        spacings: Sequence[tuple[float, ...]],
        groups: Sequence[int],
        *,
        patch: tuple[int, ...],
        length: int,
        seed: int = 0,
    ):
        self.images = [normalise(im) for im in images]
        self.targets = [class_targets(lab, spacing=s) for lab, s in zip(labels, spacings, strict=True)]
        sizes = np.array([im.size for im in self.images], dtype=float)
        groups = np.asarray(groups)
        per_set = np.bincount(groups, weights=sizes)
        self.weights = sizes / per_set[groups] / np.unique(groups).size
        self.patch = tuple(patch)
        self.length = length
        self.seed = seed

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        rng = np.random.default_rng([self.seed, index])
        k = rng.choice(len(self.images), p=self.weights)
        image, target = _padded(self.images[k], self.targets[k], self.patch)
        corner = [rng.integers(0, n - p + 1) for n, p in zip(image.shape, self.patch, strict=True)]
        box = tuple(slice(c, c + p) for c, p in zip(corner, self.patch, strict=True))
        image, target = image[box], target[box]
        for axis in (-1, -2):
            if rng.random() < 0.5:
                image, target = np.flip(image, axis), np.flip(target, axis)
        if self.patch[-1] == self.patch[-2]:
            turns = int(rng.integers(4))
            image, target = np.rot90(image, turns, (-2, -1)), np.rot90(target, turns, (-2, -1))
        image = _vary_intensity(np.ascontiguousarray(image), rng)
        return torch.from_numpy(image[None]), torch.from_numpy(
            np.ascontiguousarray(target)[None].astype(np.int64)
        )


def _padded(image: np.ndarray, target: np.ndarray, patch: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    widths = [(0, max(p - n, 0)) for n, p in zip(image.shape, patch, strict=True)]
    if not any(w for _, w in widths):
        return image, target
    return np.pad(image, widths), np.pad(target, widths)


def _vary_intensity(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Blur, gamma, contrast, brightness and noise of a normalised patch, each drawn at random."""
    if rng.random() < 0.3:
        sigma = [0.0] * (image.ndim - 2) + [rng.uniform(0.3, 1.2)] * 2
        image = ndimage.gaussian_filter(image, sigma)
    if rng.random() < 0.5:
        image = np.clip(image, 0, None) ** np.float32(rng.uniform(0.6, 1.6))
    image = image * np.float32(rng.uniform(0.6, 1.4)) + np.float32(rng.uniform(-0.15, 0.15))
    if rng.random() < 0.5:
        image = image + rng.normal(0, rng.uniform(0.01, 0.1), image.shape).astype(np.float32)
    return image.astype(np.float32)
