"""2D masks and their viewing rotations: reading, checking, and the fixed view sets of the evaluation."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tifffile
import torch

from cellsdf.errors import InputError
from cellsdf.geometry.rotation import axis_angle_matrix

MIN_SIZE = 8


@dataclass(frozen=True)
class View:
    """One 2D mask and the rotation it was seen through (see :mod:`cellsdf.lift.render` for the convention).

    Attributes
    ----------
    mask : np.ndarray
        bool (N, N) silhouette, square.
    rotation : np.ndarray
        (3, 3) view rotation R_v acting on (z, y, x) points.
    source : str
        Where the mask came from (file name), for messages and the manifest.
    degrees : tuple of float
        The rotation vector (z, y, x) in degrees as given.
    """

    mask: np.ndarray
    rotation: np.ndarray
    source: str
    degrees: tuple[float, float, float] = (0.0, 0.0, 0.0)


def rotation_from_degrees(degrees: Sequence[float]) -> np.ndarray:
    """Rotation matrix of a rotation vector in degrees, components (z, y, x) like the arrays.

    ``[0, 90, 0]`` turns the object 90° about the y axis, so the view looks at its side (z and x swap). The
    matrix is :func:`cellsdf.geometry.rotation.axis_angle_matrix` of the vector in radians.

    Parameters
    ----------
    degrees : sequence of float
        (3,) axis times angle in degrees.

    Returns
    -------
    np.ndarray
        float64 (3, 3).
    """
    vector = torch.as_tensor(np.radians(np.asarray(degrees, float)), dtype=torch.float64)
    return axis_angle_matrix(vector).numpy()


def check_mask(mask: np.ndarray, source: str | Path) -> np.ndarray:
    """Return a 2D mask as bool, refusing what cannot be lifted.

    Parameters
    ----------
    mask : np.ndarray
        Any numeric 2D array; non-zero is foreground (a label image counts every label).
    source : str or Path
        Named in errors.

    Returns
    -------
    np.ndarray
        bool (Y, X).

    Raises
    ------
    InputError
        If the mask is not 2D, smaller than 8 pixels a side, empty or entirely foreground.
    """
    mask = np.asarray(mask)
    squeezed = mask.squeeze()
    if squeezed.ndim != 2:
        raise InputError(source, f"expected a 2D mask, got an image of shape {mask.shape}")
    if min(squeezed.shape) < MIN_SIZE:
        raise InputError(
            source, f"mask of shape {squeezed.shape} is too small (at least {MIN_SIZE} pixels a side)"
        )
    binary = squeezed != 0
    if not binary.any():
        raise InputError(source, "mask is empty (no foreground pixel)")
    if binary.all():
        raise InputError(source, "mask is entirely foreground, so the cell's outline is not in the image")
    return binary


def read_mask(path: str | Path) -> np.ndarray:
    """Read a 2D mask TIFF (non-zero is foreground) and check it (:func:`check_mask`).

    Parameters
    ----------
    path : str or Path
        TIFF file.

    Returns
    -------
    np.ndarray
        bool (Y, X).
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "mask file not found")
    try:
        data = tifffile.imread(path)
    except Exception as err:  # tifffile raises several types for damaged or foreign files
        raise InputError(path, f"unreadable TIFF ({type(err).__name__}: {err})") from None
    return check_mask(data, path)


def square(mask: np.ndarray) -> np.ndarray:
    """Pad a mask with background to a square, centred, so its pixels stay square in the world."""
    height, width = mask.shape
    size = max(height, width)
    top, left = (size - height) // 2, (size - width) // 2
    out = np.zeros((size, size), bool)
    out[top : top + height, left : left + width] = mask
    return out


def parse_degrees(value: object, source: str, what: str) -> tuple[float, float, float]:
    """Read a rotation given as three finite numbers [z, y, x] in degrees.

    Parameters
    ----------
    value : object
        The configured value.
    source : str
        The option, which starts the error message.
    what : str
        What the value is, for the message (``entry 2: rotation``).

    Returns
    -------
    tuple of float
        The three angles.

    Raises
    ------
    InputError
        If ``value`` is not three finite numbers.
    """
    try:
        degrees = tuple(float(d) for d in value)
    except (TypeError, ValueError):
        degrees = ()
    if len(degrees) != 3 or not np.all(np.isfinite(degrees)):
        raise InputError(source, f"{what} must be three numbers [z, y, x] in degrees, got {value!r}")
    return degrees


def parse_views(mask: str | None, views: Sequence[Mapping] | None) -> list[View]:
    """Read the views of a lift: one ``mask`` seen along z, or a list of ``{mask, rotation}`` entries.

    Parameters
    ----------
    mask : str or None
        A single mask file; its rotation is the identity.
    views : sequence of mapping or None
        Entries ``{mask: <file>, rotation: [z, y, x]}``, the rotation vector in degrees
        (:func:`rotation_from_degrees`).

    Returns
    -------
    list of View
        Square masks of one common size.

    Raises
    ------
    InputError
        For no or both inputs, an entry without a mask or rotation, a rotation that is not three numbers,
        masks of different shapes, or a bad mask file.
    """
    if (mask is None) == (views is None or len(views) == 0):
        raise InputError(
            "lift", "give exactly one of mask=<2D TIFF> or views=[{mask: ..., rotation: [z, y, x]}, ...]"
        )
    if mask is not None:
        entries: list[Mapping] = [{"mask": mask, "rotation": [0.0, 0.0, 0.0]}]
    else:
        entries = list(views)
    masks = sum(1 for e in entries if isinstance(e, Mapping) and e.get("mask") is not None)
    rotations = sum(1 for e in entries if isinstance(e, Mapping) and e.get("rotation") is not None)
    if masks != len(entries) or rotations != len(entries):
        raise InputError(
            "views",
            f"{len(entries)} entries with {masks} masks and {rotations} rotations; every entry needs both "
            "(views=[{mask: a.tif, rotation: [0, 0, 0]}, {mask: b.tif, rotation: [0, 90, 0]}])",
        )
    out = []
    for index, entry in enumerate(entries):
        degrees = parse_degrees(entry["rotation"], "views", f"entry {index + 1}: rotation")
        path = Path(str(entry["mask"]))
        out.append(View(square(read_mask(path)), rotation_from_degrees(degrees), str(path), degrees))
    shapes = {v.mask.shape for v in out}
    if len(shapes) > 1:
        raise InputError("views", f"all masks must have the same shape, got {sorted(shapes)}")
    return out


def spiral_rotations(count: int) -> list[np.ndarray]:
    """Return the evaluation's fixed view set: ``count`` directions on a Fibonacci spiral over a hemisphere.

    Direction k has z component 1 − k / (count − 1) (view 1 looks along z, the last lies in the image plane)
    and turns by the golden angle about z from one to the next, so any count spreads evenly from the optical
    axis to the side; 2 views are front and side. The other hemisphere would only show mirror images of the
    same silhouettes. Each view's rotation is the smallest one that turns its direction onto z.

    Parameters
    ----------
    count : int
        Number of views, at least 1.

    Returns
    -------
    list of np.ndarray
        (3, 3) rotation matrices R_v with R_v·d_k = (1, 0, 0) in (z, y, x).
    """
    golden = np.pi * (3.0 - np.sqrt(5.0))
    axis = np.array([1.0, 0.0, 0.0])
    out = []
    for k in range(count):
        z = 1.0 - k / (count - 1) if count > 1 else 1.0
        r = np.sqrt(max(0.0, 1.0 - z * z))
        direction = np.array([z, r * np.sin(golden * k), r * np.cos(golden * k)])
        normal = np.cross(direction, axis)
        sine = np.linalg.norm(normal)
        if sine < 1e-12:
            out.append(np.eye(3))
            continue
        angle = np.degrees(np.arctan2(sine, direction @ axis))
        out.append(rotation_from_degrees(normal / sine * angle))
    return out
