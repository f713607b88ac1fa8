"""Training pairs for the texture GAN: real images with instance masks, the held-out quarter, random crops.

A pairs folder holds ``<stem>_img.tif`` beside ``<stem>_mask.tif`` (the layout of ``data/real``). The
bottom-right quarter of every pair is held out for evaluation; training crops lie wholly in the other
three quarters.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path

import numpy as np
import tifffile
import torch
from torch.utils.data import Dataset

from cellsdf.errors import InputError

__all__ = [
    "ImagePair",
    "CropDataset",
    "boundary_map",
    "condition_channels",
    "crop_origins",
    "holdout_slices",
    "read_pairs",
    "shipped_pairs",
    "training_region",
]

IMAGE_SUFFIX = "_img.tif"
MASK_SUFFIX = "_mask.tif"
# Channels the generator is conditioned on; the discriminator sees the first LABEL_CHANNELS of them.
CONDITION_CHANNELS = ("foreground", "boundary", "cell_code", "pixel_noise")
LABEL_CHANNELS = 2


@dataclass(frozen=True)
class ImagePair:
    """A real image and its instance labels.

    Attributes
    ----------
    name : str
        The file stem shared by both files.
    image : np.ndarray
        (Y, X) intensities.
    labels : np.ndarray
        (Y, X) integer instance labels, 0 is background.
    """

    name: str
    image: np.ndarray
    labels: np.ndarray


def shipped_pairs() -> Path:
    """Return the folder of the shipped real pair (``data/real``)."""
    return Path(str(files("cellsdf.assets") / "real"))


def _read_2d(path: Path) -> np.ndarray:
    try:
        data = tifffile.imread(path)
    except Exception as err:  # tifffile raises many types for damaged files
        raise InputError(path, f"unreadable or truncated TIFF ({err})") from None
    data = np.squeeze(data)
    if data.ndim != 2:
        raise InputError(path, f"expected a 2D (Y, X) image, got shape {data.shape}")
    return data


def read_pairs(folder: str | Path) -> list[ImagePair]:
    """Read every ``<stem>_img.tif`` / ``<stem>_mask.tif`` pair of a folder.

    Parameters
    ----------
    folder : str or Path
        Folder of pairs.

    Returns
    -------
    list of ImagePair
        Sorted by name.

    Raises
    ------
    InputError
        If the folder is missing or holds no pair, a file is unreadable or not 2D, image and mask shapes
        differ, or a mask is not integer labels.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(folder, "pairs folder not found")
    images = sorted(folder.glob(f"*{IMAGE_SUFFIX}"))
    pairs = []
    for image_path in images:
        name = image_path.name[: -len(IMAGE_SUFFIX)]
        mask_path = folder / f"{name}{MASK_SUFFIX}"
        if not mask_path.is_file():
            continue
        image, labels = _read_2d(image_path), _read_2d(mask_path)
        if image.shape != labels.shape:
            raise InputError(mask_path, f"mask shape {labels.shape} differs from image shape {image.shape}")
        if not np.issubdtype(labels.dtype, np.integer) or labels.min() < 0:
            raise InputError(
                mask_path, f"not instance labels (non-negative integers), got dtype {labels.dtype}"
            )
        if not np.issubdtype(image.dtype, np.number) or np.issubdtype(image.dtype, np.complexfloating):
            raise InputError(image_path, f"not an intensity image, got dtype {image.dtype}")
        pairs.append(ImagePair(name, image, labels))
    if not pairs:
        raise InputError(folder, f"holds no pairs of <name>{IMAGE_SUFFIX} and <name>{MASK_SUFFIX}")
    return pairs


def boundary_map(labels: np.ndarray) -> np.ndarray:
    """Return pix2pixHD's instance edge map: pixels whose 4-neighbour has another label.

    Both sides of every label change are marked, so touching cells are separated by a two-pixel line and a
    cell against the background gets its outline; the image border is not an edge.

    Parameters
    ----------
    labels : np.ndarray
        (..., Y, X) integer instance labels.

    Returns
    -------
    np.ndarray
        bool array of the same shape.
    """
    labels = np.asarray(labels)
    edge = np.zeros(labels.shape, bool)
    vertical = labels[..., 1:, :] != labels[..., :-1, :]
    horizontal = labels[..., :, 1:] != labels[..., :, :-1]
    edge[..., 1:, :] |= vertical
    edge[..., :-1, :] |= vertical
    edge[..., :, 1:] |= horizontal
    edge[..., :, :-1] |= horizontal
    return edge


def condition_channels(labels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Return the generator's input for one label frame: foreground, boundary, per-cell code, pixel noise.

    The per-cell code (one standard-normal value per instance, 0 on the background) lets the generator give
    cells different brightness and texture, as pix2pixHD's instance-wise features do; the pixel noise lets it
    draw camera noise. Both come from ``rng``, so a seed fixes the image.

    Parameters
    ----------
    labels : np.ndarray
        (Y, X) non-negative integer instance labels.
    rng : np.random.Generator
        Source of the noise channels.

    Returns
    -------
    np.ndarray
        (4, Y, X) float32, channels as in ``CONDITION_CHANNELS``.
    """
    ids, inverse = np.unique(labels, return_inverse=True)
    codes = rng.standard_normal(len(ids)).astype(np.float32)
    codes[ids == 0] = 0.0
    foreground = labels > 0
    return np.stack(
        [
            foreground.astype(np.float32),
            boundary_map(labels).astype(np.float32),
            codes[inverse.reshape(labels.shape)],
            rng.standard_normal(labels.shape, dtype=np.float32),
        ]
    )


def holdout_slices(shape: tuple[int, int]) -> tuple[slice, slice]:
    """Return the (y, x) slices of the held-out bottom-right quarter of a field of ``shape``."""
    return slice(shape[0] // 2, None), slice(shape[1] // 2, None)


def training_region(shape: tuple[int, int], holdout: bool = True) -> np.ndarray:
    """Return the bool (Y, X) mask of pixels that training may use: all but the held-out quarter."""
    region = np.ones(shape, bool)
    if holdout:
        region[holdout_slices(shape)] = False
    return region


def crop_origins(region: np.ndarray, crop: int) -> np.ndarray:
    """Return the (N, 2) top-left corners of all ``crop`` x ``crop`` windows wholly inside ``region``."""
    if crop > min(region.shape):
        return np.empty((0, 2), int)
    # Windows whose sum of outside pixels is zero, from an integral image of the excluded pixels.
    outside = np.pad(np.cumsum(np.cumsum(~region, 0), 1), ((1, 0), (1, 0)))
    sums = outside[crop:, crop:] - outside[:-crop, crop:] - outside[crop:, :-crop] + outside[:-crop, :-crop]
    return np.argwhere(sums == 0)


class CropDataset(Dataset):
    """Random training crops with random flips and 90° rotations, reproducible per seed and index.

    Parameters
    ----------
    pairs : list of ImagePair
        Training pairs.
    crop : int
        Crop side in pixels.
    intensity_scale : float
        Intensity mapped to +1 (0 maps to -1), the generator's output range.
    length : int
        Crops per epoch.
    seed : int
        Seed of the crop positions, augmentations and noise channels.
    holdout : bool
        Keep crops out of every pair's bottom-right quarter.
    start : int
        Index of the first crop: a run resumed after ``k`` crops passes ``k`` and draws the crops that the
        uninterrupted run would have drawn.

    Raises
    ------
    InputError
        If no pair has room for a crop of this size in its training region.
    """

    def __init__(
        self,
        pairs: list[ImagePair],
        crop: int,
        intensity_scale: float,
        length: int,
        seed: int = 0,
        holdout: bool = True,
        start: int = 0,
    ):
        self.pairs = pairs
        self.crop = crop
        self.intensity_scale = float(intensity_scale)
        self.length = length
        self.seed = seed
        self.start = start
        # (pair index, y, x) of every admissible window, so each one is equally likely.
        windows = [
            np.column_stack([np.full(len(o), i), o])
            for i, p in enumerate(pairs)
            if len(o := crop_origins(training_region(p.labels.shape, holdout), crop))
        ]
        if not windows:
            largest = max(min(p.labels.shape) // (2 if holdout else 1) for p in pairs)
            raise InputError(
                "crop", f"{crop} px does not fit in the training region (at most about {largest} px)"
            )
        self.windows = np.concatenate(windows)

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Return (condition (4, crop, crop), image (1, crop, crop) scaled to [-1, 1])."""
        rng = np.random.default_rng((self.seed, self.start + index))
        pair, y, x = self.windows[rng.integers(len(self.windows))]
        window = (slice(y, y + self.crop), slice(x, x + self.crop))
        labels = self.pairs[pair].labels[window]
        image = self.pairs[pair].image[window].astype(np.float32)
        turns, flip = int(rng.integers(4)), bool(rng.integers(2))
        labels, image = np.rot90(labels, turns), np.rot90(image, turns)
        if flip:
            labels, image = labels[:, ::-1], image[:, ::-1]
        condition = condition_channels(np.ascontiguousarray(labels), rng)
        image = 2.0 * image / self.intensity_scale - 1.0
        return torch.from_numpy(condition), torch.from_numpy(np.ascontiguousarray(image)[None])
