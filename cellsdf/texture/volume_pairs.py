"""Training crops for the slice-wise 3D texture model: a slice of a 3D pair, with its neighbours as context.

A 3D microscope image is blurred across slices, so a slice's intensities depend on the cells just above and
below it. The slice-wise model (pix2pixHD, 2D) therefore sees, besides the slice's own foreground, boundaries,
per-cell codes and noise (:data:`cellsdf.texture.pairs.CONDITION_CHANNELS`), the foreground of the slice above
and of the slice below (background beyond the stack). A cell keeps one code through all the slices of a
volume, so its brightness is one cell's, not a new draw per slice.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import Dataset

from cellsdf.errors import InputError
from cellsdf.texture.pairs import boundary_map

# The discriminator sees the first VOLUME_LABEL_CHANNELS (the labels and their context), not the noise.
VOLUME_CHANNELS = (
    "foreground",
    "boundary",
    "foreground_above",
    "foreground_below",
    "cell_code",
    "pixel_noise",
)
VOLUME_LABEL_CHANNELS = 4


def volume_codes(labels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Draw one standard-normal code per label of a volume; index 0 (the background) is 0.

    Returns
    -------
    np.ndarray
        float32 (labels.max() + 1,) lookup table.
    """
    codes = rng.standard_normal(int(labels.max(initial=0)) + 1).astype(np.float32)
    codes[0] = 0.0
    return codes


def slice_condition(labels: np.ndarray, z: int, codes: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Return the generator's input for slice ``z`` of a (Z, Y, X) label volume, channels as VOLUME_CHANNELS.

    Examples
    --------
    >>> labels = np.zeros((3, 8, 8), np.uint16); labels[1:, 2:6, 2:6] = 1
    >>> condition = slice_condition(labels, 0, np.array([0.0, 1.5], np.float32), np.random.default_rng(0))
    >>> condition.shape, float(condition[0].sum()), float(condition[3].sum())
    ((6, 8, 8), 0.0, 16.0)
    """
    frame = labels[z]
    empty = np.zeros(frame.shape, np.float32)
    above = (labels[z - 1] > 0).astype(np.float32) if z > 0 else empty
    below = (labels[z + 1] > 0).astype(np.float32) if z + 1 < len(labels) else empty
    return np.stack(
        [
            (frame > 0).astype(np.float32),
            boundary_map(frame).astype(np.float32),
            above,
            below,
            codes[frame],
            rng.standard_normal(frame.shape, dtype=np.float32),
        ]
    )


class VolumeCropDataset(Dataset):
    """Random in-plane crops of single slices of 3D pairs, with flips and 90° turns (in-plane and in z).

    Parameters
    ----------
    images, labels : list of np.ndarray
        (Z, Y, X) training frames and their instance labels.
    crop : int
        Crop side in pixels.
    intensity_scale : float
        Intensity mapped to +1 (0 maps to -1).
    length : int
        Crops per epoch.
    seed : int
        Seed of the crops, augmentations, codes and noise.
    start : int
        Index of the first crop (a resumed run continues the sequence).
    """

    def __init__(
        self,
        images: list[np.ndarray],
        labels: list[np.ndarray],
        crop: int,
        intensity_scale: float,
        length: int,
        *,
        seed: int = 0,
        start: int = 0,
    ):
        if any(min(frame.shape[1:]) < crop for frame in labels):
            raise InputError("crop", f"{crop} px does not fit in frames of {labels[0].shape[1:]} px")
        self.images, self.labels = images, labels
        self.crop, self.intensity_scale = crop, float(intensity_scale)
        self.length, self.seed, self.start = length, seed, start

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Return (condition (6, crop, crop), image (1, crop, crop) scaled to [-1, 1])."""
        rng = np.random.default_rng((self.seed, self.start + index))
        k = int(rng.integers(len(self.labels)))
        labels, image = self.labels[k], self.images[k]
        depth, height, width = labels.shape
        y, x = int(rng.integers(height - self.crop + 1)), int(rng.integers(width - self.crop + 1))
        window = (slice(None), slice(y, y + self.crop), slice(x, x + self.crop))
        labels, image = labels[window], image[window].astype(np.float32)
        if rng.integers(2):  # above and below swap: the optics are about symmetric in z
            labels, image = labels[::-1], image[::-1]
        turns, flip = int(rng.integers(4)), bool(rng.integers(2))
        labels, image = np.rot90(labels, turns, axes=(1, 2)), np.rot90(image, turns, axes=(1, 2))
        if flip:
            labels, image = labels[:, :, ::-1], image[:, :, ::-1]
        z = int(rng.integers(depth))
        condition = slice_condition(np.ascontiguousarray(labels), z, volume_codes(labels, rng), rng)
        target = 2.0 * image[z] / self.intensity_scale - 1.0
        return torch.from_numpy(condition), torch.from_numpy(np.ascontiguousarray(target)[None])
