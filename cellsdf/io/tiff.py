"""TIFF time-lapses: ImageJ hyperstacks with axes TZYX, voxel spacing in µm and the frame interval.

OME-TIFF files are read too, their voxel size and frame interval taken from the OME-XML.
"""

from __future__ import annotations

import contextlib
import struct
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar
from xml.etree import ElementTree

import numpy as np
import tifffile

from cellsdf.console import quiet_logger
from cellsdf.errors import InputError
from cellsdf.io.atomic import atomic_path, check_writable
from cellsdf.io.axes import ORDERS, check_axes
from cellsdf.io.limits import check_array
from cellsdf.io.units import check_size, micrometres_per, seconds_per

# tifffile reports damaged files through its logger before raising; the InputError we raise says it once.
# Damaged compressed data surfaces as zlib.error, or as a RuntimeError subclass when imagecodecs is installed;
# damaged tags and metadata as arithmetic and type errors deep in tifffile (found by fuzzing).
_TIFF_ERRORS = (
    tifffile.TiffFileError,
    ValueError,
    ArithmeticError,
    TypeError,
    AssertionError,
    struct.error,
    zlib.error,
    RuntimeError,
    OSError,
    EOFError,
    IndexError,
    KeyError,
)
_GENERIC_AXES = "QSIC"
T = TypeVar("T")


@dataclass(frozen=True)
class Stack:
    """A TIFF read as a time-lapse.

    Attributes
    ----------
    data : np.ndarray
        Pixel values, shape (T, Z, Y, X); a single 3D image has T = 1.
    spacing : tuple of float
        Voxel size (z, y, x) in µm (1.0 where the file does not say).
    frame_interval : float
        Seconds between frames (1.0 where the file does not say).
    has_time : bool
        Whether the file itself has a time axis (False for a single ZYX volume).
    """

    data: np.ndarray
    spacing: tuple[float, float, float]
    frame_interval: float
    has_time: bool


@dataclass(frozen=True)
class Header:
    """A TIFF's shape and metadata, read without its pixels.

    Attributes
    ----------
    shape : tuple of int
        (T, Z, Y, X); a single 3D image has T = 1.
    spacing : tuple of float or None
        Voxel size (z, y, x) in µm as the ImageJ or OME-XML metadata states it; None when it states none.
    frame_interval : float
        Seconds between frames (1.0 where the file does not say).
    has_time : bool
        Whether the file itself has a time axis.
    axes : str
        The order the pixels are stored in, as read (``TZYX``, ``ZTYX``, ``ZYX``): the file's axes, the
        ``axes=`` given instead, or ``TZYX``/``ZYX`` assumed where the file names other letters.
    stated : str
        The axes the file (or ``axes=``) states, singleton channels dropped.
    """

    shape: tuple[int, int, int, int]
    spacing: tuple[float, float, float] | None
    frame_interval: float
    has_time: bool
    axes: str = "TZYX"
    stated: str = "TZYX"

    @property
    def order(self) -> tuple[int, ...]:
        """The transposition from the stored order to (T, Z, Y, X) (or (Z, Y, X))."""
        return tuple(self.axes.index(a) for a in ORDERS[len(self.axes)])

    def describe(self) -> str:
        """Say how the file was read: its axes and voxel size.

        Examples
        --------
        >>> Header((3, 32, 8, 8), (1.0, 0.2, 0.2), 60.0, True, "ZTYX", "ZTYX").describe()
        'axes ZTYX, voxel 1 x 0.2 x 0.2 µm'
        >>> Header((3, 32, 8, 8), None, 1.0, True, "TZYX", "ZCYX").describe()
        'axes TZYX assumed (the file says ZCYX), voxel not stated'
        """
        voxel = "not stated" if self.spacing is None else " x ".join(f"{v:g}" for v in self.spacing) + " µm"
        axes = self.axes if self.stated == self.axes else f"{self.axes} assumed (the file says {self.stated})"
        return f"axes {axes}, voxel {voxel}"


def write_timelapse(
    path: str | Path,
    frames: np.ndarray | Iterable[np.ndarray],
    *,
    shape: tuple[int, int, int, int] | None = None,
    spacing: tuple[float, float, float] = (1.0, 1.0, 1.0),
    frame_interval: float = 1.0,
    overwrite: bool = False,
    labels: bool = False,
) -> Path:
    """Write binary masks as a uint8 0/255 ImageJ hyperstack (TZYX), zlib-compressed, atomically.

    Parameters
    ----------
    path : str or Path
        Output ``.tif`` file.
    frames : np.ndarray or iterable of np.ndarray
        Either an array (T, Z, Y, X) or an iterable of (Z, Y, X) frames, written one at a time so that memory
        does not grow with the number of frames; foreground is any non-zero value.
    shape : tuple of int, optional
        (T, Z, Y, X); required when ``frames`` is an iterable.
    spacing : tuple of float
        Voxel size (z, y, x) in µm.
    frame_interval : float
        Seconds between frames.
    overwrite : bool
        Replace an existing file.
    labels : bool
        Write the values as uint16 labels (0 is background) instead of a 0/255 mask.

    Returns
    -------
    Path
        The written file.

    Examples
    --------
    >>> import numpy as np, tempfile, pathlib
    >>> masks = np.zeros((2, 4, 8, 8), bool); masks[:, 1:3, 2:6, 2:6] = True
    >>> out = write_timelapse(pathlib.Path(tempfile.mkdtemp()) / "cell.tif", masks, spacing=(2.0, 0.5, 0.5))
    >>> read_timelapse(out).spacing
    (2.0, 0.5, 0.5)
    """
    path = check_writable(path, overwrite)
    if isinstance(frames, np.ndarray):
        if frames.ndim != 4:
            raise ValueError(f"frames must have shape (T, Z, Y, X), got {frames.shape}")
        shape = frames.shape
    elif shape is None:
        raise ValueError("shape is required when frames is an iterable")

    dtype = np.uint16 if labels else np.uint8

    def pages() -> Iterator[np.ndarray]:
        for frame in frames:
            if frame.shape != tuple(shape[1:]):
                raise ValueError(f"frame shape {frame.shape} differs from {tuple(shape[1:])}")
            if labels and frame.size and (frame.min() < 0 or frame.max() > np.iinfo(dtype).max):
                raise ValueError(f"labels must lie in [0, {np.iinfo(dtype).max}]")
            yield from frame.astype(dtype) if labels else np.where(frame != 0, dtype(255), dtype(0))

    with atomic_path(path) as tmp:
        tifffile.imwrite(
            tmp,
            pages(),
            shape=tuple(shape),
            dtype=dtype,
            imagej=True,
            compression="zlib",
            resolution=(1.0 / spacing[2], 1.0 / spacing[1]),
            metadata={
                "axes": "TZYX",
                "spacing": float(spacing[0]),
                "unit": "um",
                "finterval": frame_interval,
            },
        )
    return path


def read_timelapse(path: str | Path, *, axes: str | None = None) -> Stack:
    """Read a TIFF as a 3D time-lapse (T, Z, Y, X) or a single 3D volume.

    Axes come from the ImageJ or OME-XML metadata when present; a file without either is taken as ZYX (3D)
    or TZYX (4D). Singleton channel axes are dropped. Voxel size and frame interval come from the ImageJ
    metadata (sizes in its ``unit``), or from an OME-TIFF's ``PhysicalSizeZ/Y/X`` and ``TimeIncrement``,
    converted to µm and seconds; a file that states none gets 1 µm voxels.

    Parameters
    ----------
    path : str or Path
        The TIFF file.
    axes : str, optional
        The order the pixels are stored in (``TZYX``, ``ZTYX``, ``ZYX``, ...), instead of what the file says
        (ImageJ files often name their axes wrong).

    Returns
    -------
    Stack
        The pixels with spacing and frame interval.

    Raises
    ------
    InputError
        If the file is missing, unreadable or truncated, is not 3D or 3D+t, or states a voxel size or frame
        interval that is not a positive number.
    """
    with _open(path, axes) as (tif, header):
        _check_pixels(path, tif, header.shape)
        data = _read(path, lambda: tif.series[0].asarray())
    spacing = header.spacing or (1.0, 1.0, 1.0)
    return Stack(_ordered(path, data, header), spacing, header.frame_interval, header.has_time)


def read_header(path: str | Path, *, axes: str | None = None) -> Header:
    """Read a TIFF's shape and metadata without its pixels.

    Parameters
    ----------
    path : str or Path
        The TIFF file (as for :func:`read_timelapse`).
    axes : str, optional
        The stored order, instead of what the file says (as for :func:`read_timelapse`).

    Returns
    -------
    Header
        Shape (T, Z, Y, X), stated spacing (None when the file states none), frame interval, time axis.
    """
    with _open(path, axes) as (_, header):
        return header


def iter_frames(path: str | Path, *, axes: str | None = None) -> Iterator[np.ndarray]:
    """Read a 3D time-lapse one (Z, Y, X) frame at a time, so memory stays flat with the number of frames.

    Parameters
    ----------
    path : str or Path
        The TIFF file (as for :func:`read_timelapse`).
    axes : str, optional
        The stored order, instead of what the file says (as for :func:`read_timelapse`).

    Yields
    ------
    np.ndarray
        One frame in the file's dtype.
    """
    with _open(path, axes) as (tif, header):
        shape = header.shape
        depth = shape[1]
        in_order = header.order == tuple(range(len(header.axes)))
        one_page_per_slice = in_order and len(tif.series[0].pages) == shape[0] * depth
        _check_pixels(path, tif, shape[1:] if one_page_per_slice else shape)
        for t in range(shape[0]):
            if one_page_per_slice:
                pages = range(t * depth, (t + 1) * depth)
                frame = _read(path, lambda pages=pages: tif.asarray(key=pages, series=0))
            else:  # a volume stored in few pages, or in another order, can only be read whole
                frame = _ordered(path, _read(path, lambda: tif.series[0].asarray()), header)[t]
            yield _shaped(path, frame, shape[1:])


@contextlib.contextmanager
def _open(path: str | Path, given: str | None = None) -> Iterator[tuple[tifffile.TiffFile, Header]]:
    """Open a TIFF and work out its header; ``given`` axes replace the file's."""
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "file not found")
    with quiet_logger("tifffile"):
        try:
            tif = tifffile.TiffFile(path)
        except _TIFF_ERRORS as err:
            raise InputError(path, f"unreadable or truncated TIFF ({err})") from None
    with tif:
        series = _read(path, lambda: tif.series[0])
        meta = tif.imagej_metadata or {}
        shape, axes = _squeeze_channels(series.shape, series.axes)
        if given is not None:
            if len(given) != len(shape):
                raise InputError(
                    path, f"axes={given} names {len(given)} axes, but the file has {len(shape)} {shape}"
                )
            axes = given
        has_time = "T" in axes
        if len(shape) == 3 and has_time or len(shape) < 3:
            raise InputError(
                path, f"2D image (axes {axes}, shape {shape}) where a 3D or 3D+t mask is expected"
            )
        elif len(shape) == 4:
            has_time = True
        elif len(shape) != 3:
            raise InputError(path, f"unsupported axes {axes} with shape {shape}; expected ZYX or TZYX")
        if 0 in shape:
            raise InputError(path, f"holds no pixels (axes {axes}, shape {shape})")
        stored = _stored_order(axes, len(shape), given is not None)
        order = [stored.index(a) for a in ORDERS[len(stored)]]
        shape = tuple(shape[i] for i in order)
        if len(shape) == 3:
            shape = (1, *shape)
        if tif.is_imagej:
            spacing, frame_interval = _imagej_sizes(path, tif, meta)
        elif tif.is_ome:
            spacing, frame_interval = _ome_sizes(path, tif)
        else:
            spacing, frame_interval = None, 1.0
        yield tif, Header(shape, spacing, frame_interval, has_time, stored, axes)


def _imagej_sizes(
    path: Path, tif: tifffile.TiffFile, meta: dict
) -> tuple[tuple[float, float, float] | None, float]:
    """Voxel size (µm) and frame interval (s) from ImageJ metadata: z spacing, XY resolution, finterval.

    The sizes are in the file's ``unit`` (µm where it names none); ``pixel``, ImageJ's word for an
    uncalibrated image, gives no voxel size.
    """
    interval = meta.get("finterval")
    frame_interval = 1.0 if interval is None else check_size(path, "finterval", interval, kind="time")
    # ImageJ writes µ as the escape \u00B5 in its description.
    unit = str(meta.get("unit", "µm")).replace("\\u00B5", "µ").strip()
    if "spacing" not in meta or unit.lower() in ("pixel", "pixels"):
        return None, frame_interval
    factor = micrometres_per(unit)
    if factor is None:
        raise InputError(path, f"ImageJ unit {unit!r} is not a unit of length")
    x_res, y_res = tif.pages.first.resolution
    # A resolution of 0 means the file left XY unset; ImageJ shows 1 pixel per unit then.
    y = _pixel_size(path, "YResolution", y_res) if y_res else 1.0
    x = _pixel_size(path, "XResolution", x_res) if x_res else 1.0
    z = check_size(path, "spacing", meta["spacing"], kind="length")
    return (z * factor, y * factor, x * factor), frame_interval


def _pixel_size(path: Path, field: str, resolution: object) -> float:
    """Pixel size (µm) from a TIFF resolution tag, which states pixels per unit."""
    return check_size(path, f"1/{field}", 1.0 / check_size(path, field, resolution, kind=None), kind="length")


def _ome_sizes(path: Path, tif: tifffile.TiffFile) -> tuple[tuple[float, float, float] | None, float]:
    """Voxel size (µm) and frame interval (s) from the OME-XML of the first image.

    The voxel size counts as stated only when all three of PhysicalSizeZ/Y/X are: a partial statement does
    not give one. Units default to µm and s, as the OME schema says.
    """
    try:
        images = tifffile.xml2dict(tif.ome_metadata)["OME"]["Image"]
        pixels = (images[0] if isinstance(images, list) else images)["Pixels"]
    except (KeyError, IndexError, TypeError, ValueError, ElementTree.ParseError) as err:
        raise InputError(path, f"unreadable OME-XML metadata ({err!r})") from None
    frame_interval = 1.0
    if "TimeIncrement" in pixels:
        unit = str(pixels.get("TimeIncrementUnit", "s"))
        factor = seconds_per(unit)
        if factor is None:
            raise InputError(path, f"TimeIncrementUnit {unit!r} in the OME-XML is not a unit of time")
        stated = pixels["TimeIncrement"]
        frame_interval = check_size(path, "TimeIncrement", stated, kind="time", factor=factor)
    if not all(f"PhysicalSize{a}" in pixels for a in "ZYX"):
        return None, frame_interval
    sizes = []
    for axis in "ZYX":
        unit = str(pixels.get(f"PhysicalSize{axis}Unit", "µm"))
        factor = micrometres_per(unit)
        if factor is None:
            raise InputError(path, f"PhysicalSize{axis}Unit {unit!r} in the OME-XML is not a unit of length")
        stated = pixels[f"PhysicalSize{axis}"]
        sizes.append(check_size(path, f"PhysicalSize{axis}", stated, kind="length", factor=factor))
    return (sizes[0], sizes[1], sizes[2]), frame_interval


def _check_pixels(path: str | Path, tif: tifffile.TiffFile, shape: tuple[int, ...]) -> None:
    """Refuse pixels that the header declares larger than memory, before they are allocated."""
    dtype = tif.series[0].dtype
    if dtype is None:
        raise InputError(path, "unreadable TIFF (its pixels have no known data type)")
    check_array(path, shape, dtype, what="its pixels")


def _stored_order(axes: str, ndim: int, given: bool) -> str:
    """Return the stored order as T, Z, Y, X letters.

    A file whose axes are exactly those letters (an OME-TIFF stored ZTYX, say) is read in its own order;
    one that names other letters (an ImageJ file tagged ZCYX, a plain TIFF's Q axes) is taken as TZYX (or
    ZYX), the order ImageJ hyperstacks use, and ``prepare`` says so. Axes ``given`` must name those letters.
    """
    if given:
        check_axes("axes", axes, ndim=ndim)
    return axes if sorted(axes) == sorted(ORDERS[ndim]) else ORDERS[ndim]


def _ordered(path: str | Path, data: np.ndarray, header: Header) -> np.ndarray:
    """Return the pixels as (T, Z, Y, X), transposed from the order they are stored in."""
    order = header.order
    target = header.shape if len(order) == 4 else header.shape[1:]
    stored = [0] * len(order)
    for axis, source in enumerate(order):
        stored[source] = target[axis]
    return _shaped(path, data, tuple(stored)).transpose(order).reshape(header.shape)


def _shaped(path: str | Path, data: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Return the pixels in the shape the metadata declares; InputError when their number differs."""
    if data.size != int(np.prod(shape)):
        raise InputError(path, f"damaged TIFF: {data.size} pixels where the metadata declares {shape}")
    return data.reshape(shape)


def _read(path: Path, read: Callable[[], T]) -> T:
    with quiet_logger("tifffile"):
        try:
            return read()
        except _TIFF_ERRORS as err:
            raise InputError(path, f"unreadable or truncated TIFF ({err})") from None


def _squeeze_channels(shape: tuple[int, ...], axes: str) -> tuple[tuple[int, ...], str]:
    keep = [i for i, a in enumerate(axes) if not (shape[i] == 1 and a in _GENERIC_AXES)]
    return tuple(shape[i] for i in keep), "".join(axes[i] for i in keep)
