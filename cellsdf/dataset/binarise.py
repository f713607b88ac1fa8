"""Label or intensity volumes to binary masks, with checks that catch the wrong kind of input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy import ndimage

from cellsdf.errors import InputError

# In a label image almost every pair of neighbouring foreground voxels shares a value (they differ only where
# two cells touch); in an intensity image most pairs differ.
_INTENSITY_NEIGHBOUR_FRACTION = 0.2


def check_finite(values: np.ndarray, source: str | Path) -> None:
    """Refuse a floating-point image with NaN or infinite values: no threshold or label test can place them.

    Raises
    ------
    InputError
        Naming the first frame that holds one.

    Examples
    --------
    >>> check_finite(np.zeros((2, 3, 3)), "a.tif")
    """
    if not np.issubdtype(values.dtype, np.floating):
        return
    for i, frame in enumerate(values):
        if not np.isfinite(frame).all():
            raise InputError(source, f"frame {i} holds NaN or infinite values; a mask must be finite numbers")


def looks_like_intensity(values: np.ndarray) -> bool:
    """Tell whether an image holds intensities rather than labels or a binary mask.

    Parameters
    ----------
    values : np.ndarray
        Pixel values of one frame, any dimension.

    Returns
    -------
    bool
        True for non-integer values, or when neighbouring foreground voxels mostly differ in value.
    """
    if np.issubdtype(values.dtype, np.floating) and not np.array_equal(values, np.round(values)):
        return True
    left, right = values[..., :-1], values[..., 1:]
    both = (left != 0) & (right != 0)
    pairs = int(both.sum())
    if pairs == 0:
        return False
    return float((left[both] != right[both]).sum()) / pairs > _INTENSITY_NEIGHBOUR_FRACTION


def binarise(
    values: np.ndarray,
    source: str | Path,
    *,
    label: int | None = None,
    threshold: float | None = None,
    components: str = "all",
) -> np.ndarray:
    """Turn a (T, Z, Y, X) label, mask or intensity volume into checked binary masks.

    Parameters
    ----------
    values : np.ndarray
        Pixel values (T, Z, Y, X).
    source : str or Path
        Where the values came from, for error messages.
    label : int, optional
        Keep only this label; by default every non-zero voxel is foreground.
    threshold : float, optional
        Foreground is ``values > threshold``; required for intensity images.
    components : {'all', 'largest'}
        Keep all connected components, or only the largest in each frame.

    Returns
    -------
    np.ndarray
        bool (T, Z, Y, X).

    Raises
    ------
    InputError
        For an intensity image without ``threshold``, a missing label, or an empty or full frame.
    """
    if components not in ("all", "largest"):
        raise InputError("components", f"must be 'all' or 'largest', got {components!r}")
    if threshold is not None:
        masks = values > threshold
    elif label is not None:
        masks = values == label
        if not masks.any():
            raise InputError(source, f"label {label} does not occur")
    elif looks_like_intensity(values[0]):
        raise InputError(
            source,
            f"looks like an intensity image ({len(np.unique(values[0]))} distinct values), not a mask; "
            "pass threshold=<value> (or label=<id> for a label image)",
        )
    else:
        masks = values != 0
    for i, frame in enumerate(masks):
        if not frame.any():
            raise InputError(source, f"frame {i} is empty (no foreground voxel)")
        if frame.all():
            raise InputError(source, f"frame {i} is entirely foreground (no background voxel)")
    if components == "largest":
        masks = np.stack([largest_component(frame) for frame in masks])
    return masks


def largest_component(mask: np.ndarray) -> np.ndarray:
    """Keep the largest 26-connected component of a 3D mask.

    Parameters
    ----------
    mask : np.ndarray
        bool (Z, Y, X) with at least one foreground voxel.

    Returns
    -------
    np.ndarray
        bool (Z, Y, X).
    """
    labels, n = ndimage.label(mask, structure=np.ones((3, 3, 3), bool))
    if n <= 1:
        return mask
    sizes = np.bincount(labels.ravel())[1:]
    return labels == (int(np.argmax(sizes)) + 1)
