"""OME-Zarr (NGFF) label images: read 3D and 3D+t masks with their physical sizes; write generated masks.

Reading goes through the ``ome-zarr`` library's locations (NGFF 0.4 on Zarr v2 and 0.5 on Zarr v3 alike) and
takes the full-resolution level only. Writing makes an NGFF 0.5 image whose ``labels/mask`` is the label
image, one chunk per frame, one resolution level.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from cellsdf.console import quiet_logger
from cellsdf.errors import InputError
from cellsdf.io.atomic import atomic_folder, check_writable
from cellsdf.io.limits import check_array, check_chunk
from cellsdf.io.units import check_size, micrometres_per, seconds_per

# zarr and ome_zarr (with dask) take seconds to import, so every command would pay for them at start-up;
# they are imported where a file is read or written.
if TYPE_CHECKING:
    import zarr
    from ome_zarr.io import ZarrLocation

LABEL = "mask"
# zarr raises ValueError subclasses for bad metadata; codecs raise RuntimeError or ValueError on damaged
# chunks, the file system OSError; the others come from metadata of the wrong shape or type.
_ZARR_ERRORS = (ValueError, RuntimeError, OSError, KeyError, TypeError, IndexError, AttributeError)
_NGFF_KEYS = {"multiscales", "labels", "image-label"}
# Label value 1 shown in one colour (RGBA) whatever the viewer's own label palette.
_CELL_COLOUR = [{"label-value": 1, "rgba": [255, 140, 0, 255]}]


@dataclass(frozen=True)
class OmeImage:
    """A label image read from an OME-Zarr.

    Attributes
    ----------
    data : np.ndarray
        Label values, shape (T, Z, Y, X); an image without a time axis has T = 1.
    spacing : tuple of float or None
        Voxel size (z, y, x) in µm, from the full-resolution level's scale; None when the file states no
        physical size (no scale, or spatial axes without units).
    frame_interval : float or None
        Seconds between frames from the time axis' scale and unit; None when not stated.
    has_time : bool
        Whether the image has a time axis.
    """

    data: np.ndarray
    spacing: tuple[float, float, float] | None
    frame_interval: float | None
    has_time: bool


def is_omezarr(path: str | Path) -> bool:
    """Tell whether a path is an OME-Zarr: a folder named ``*.zarr`` or one holding NGFF metadata.

    Parameters
    ----------
    path : str or Path
        A file or folder.

    Returns
    -------
    bool
        True for a folder that looks like an OME-Zarr (it may still fail to read).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> is_omezarr(folder), (folder / "cells.zarr").mkdir(), is_omezarr(folder / "cells.zarr")
    (False, None, True)
    """
    path = Path(path)
    return path.is_dir() and (path.suffix == ".zarr" or bool(_NGFF_KEYS & _ngff_attributes(path).keys()))


def read_omezarr(path: str | Path) -> OmeImage:
    """Read a 3D or 3D+t label image from an OME-Zarr, with its voxel size and frame interval.

    ``path`` is either a label image (a group with ``image-label`` metadata, e.g. ``img.zarr/labels/cells``)
    or an image (or its ``labels`` group) holding exactly one label image, which is then read. Only the
    full-resolution level is read. A channel axis of size 1 is dropped; sizes are converted to µm and seconds
    from the axes' units.

    Parameters
    ----------
    path : str or Path
        The OME-Zarr folder.

    Returns
    -------
    OmeImage
        Labels (T, Z, Y, X), voxel size, frame interval, whether there is a time axis.

    Raises
    ------
    InputError
        If the folder is missing or not an OME-Zarr, is an image without a label image or holds several,
        its metadata or chunks are unreadable, it is not 3D or 3D+t with one channel, or it states a size
        that is not a positive number.
    """
    path = Path(path)
    if not path.exists():
        raise InputError(path, "not found")
    if not path.is_dir():
        raise InputError(path, "not an OME-Zarr: an OME-Zarr is a folder")
    with quiet_logger("ome_zarr", logging.ERROR):
        label = _label_location(path, _location(path, path))
        return _read_label(path, label)


@contextlib.contextmanager
def omezarr_writer(
    path: str | Path,
    shape: tuple[int, int, int, int],
    *,
    spacing: tuple[float, float, float],
    frame_interval: float,
    overwrite: bool = False,
    keep_labels: bool = False,
) -> Iterator[Callable[[np.ndarray], None]]:
    """Open an OME-Zarr mask time-lapse; yield a function that appends one frame (memory holds one frame).

    The folder is an NGFF 0.5 image (Zarr v3) with axes t (second), z, y, x (micrometer) and scale
    (frame_interval, *spacing). ``labels/mask`` holds the uint8 label image (1 = cell, 0 = background);
    the image itself holds the same mask as 0/255, so that viewers without label support show it too.
    Both have one chunk per frame and one resolution level. The folder is moved into place when the block
    ends with all ``shape[0]`` frames written; if the block raises, nothing is left behind and an existing
    folder is untouched.

    Parameters
    ----------
    path : str or Path
        Output folder, e.g. ``mask.ome.zarr``.
    shape : tuple of int
        (T, Z, Y, X).
    spacing : tuple of float
        Voxel size (z, y, x) in µm.
    frame_interval : float
        Seconds between frames.
    overwrite : bool
        Replace an existing folder.
    keep_labels : bool
        Keep the frames' label values (uint32, 0 is background) in ``labels/mask`` instead of a 0/1 mask,
        so that several cells stay apart.

    Yields
    ------
    callable
        ``add(frame)`` with ``frame`` a (Z, Y, X) mask or label image; foreground is any non-zero value.

    Examples
    --------
    >>> import numpy as np, tempfile, pathlib
    >>> masks = np.zeros((2, 4, 8, 8), bool); masks[:, 1:3, 2:6, 2:6] = True
    >>> out = pathlib.Path(tempfile.mkdtemp()) / "mask.ome.zarr"
    >>> with omezarr_writer(out, masks.shape, spacing=(2.0, 0.5, 0.5), frame_interval=60.0) as add:
    ...     for frame in masks:
    ...         add(frame)
    >>> image = read_omezarr(out)
    >>> image.data.shape, image.spacing, image.frame_interval
    ((2, 4, 8, 8), (2.0, 0.5, 0.5), 60.0)
    """
    path = check_writable(path, overwrite)
    shape = tuple(int(s) for s in shape)
    with atomic_folder(path) as tmp:
        import zarr

        root = zarr.open_group(tmp, mode="w", zarr_format=3)
        label_group = root.create_group("labels").create_group(LABEL)
        # The arrays are created here and filled frame by frame, rather than handed whole to
        # ome_zarr.writer.write_image / write_labels, which need the full (T, Z, Y, X) array in memory (or a
        # dask graph that may compute frames in any order); ome_zarr.writer then writes the NGFF metadata.
        image = _frame_array(root, shape, np.uint8)
        labels = _frame_array(label_group, shape, np.uint32 if keep_labels else np.uint8)
        count = 0

        def add(frame: np.ndarray) -> None:
            nonlocal count
            if count >= shape[0] or frame.shape != shape[1:]:
                raise ValueError(f"frame {count} of shape {frame.shape} does not fit shape {shape}")
            label = (frame != 0).view(np.uint8)  # 0/1 without a second copy of the frame
            if keep_labels and frame.size and (frame.min() < 0 or frame.max() > np.iinfo(np.uint32).max):
                raise ValueError("label values must lie in [0, 2**32 - 1]")
            labels[count] = frame.astype(np.uint32) if keep_labels else label
            image[count] = label * np.uint8(255)
            count += 1

        yield add
        if count != shape[0]:
            raise ValueError(f"got {count} frames, expected {shape[0]}")
        _write_metadata(root, label_group, spacing, frame_interval)


def _frame_array(group: zarr.Group, shape: tuple[int, ...], dtype: type) -> zarr.Array:
    """Create the full-resolution level ``0``: (T, Z, Y, X), one chunk per frame."""
    return group.create_array(
        "0",
        shape=shape,
        chunks=(1, *shape[1:]),
        dtype=dtype,
        fill_value=0,
        dimension_names=("t", "z", "y", "x"),  # NGFF 0.5 asks for the axes' names here too
    )


def _write_metadata(
    root: zarr.Group,
    label_group: zarr.Group,
    spacing: tuple[float, float, float],
    frame_interval: float,
) -> None:
    """NGFF multiscales metadata on the image and the label image, image-label metadata on the label."""
    from ome_zarr.format import FormatV05
    from ome_zarr.writer import add_metadata, write_label_metadata, write_multiscales_metadata

    fmt = FormatV05()
    axes = [
        {"name": "t", "type": "time", "unit": "second"},
        *({"name": name, "type": "space", "unit": "micrometer"} for name in "zyx"),
    ]
    scale = [float(frame_interval), *(float(s) for s in spacing)]
    datasets = [{"path": "0", "coordinateTransformations": [{"type": "scale", "scale": scale}]}]
    write_multiscales_metadata(root, datasets, fmt=fmt, axes=axes, name=LABEL)
    write_multiscales_metadata(label_group, datasets, fmt=fmt, axes=axes, name=LABEL)
    write_label_metadata(root["labels"], LABEL, colors=_CELL_COLOUR, fmt=fmt, source={"image": "../../"})
    # NGFF 0.5 wants the version in every group's OME attributes; write_label_metadata leaves it out here.
    add_metadata(root["labels"], {"version": fmt.version}, fmt=fmt)


def _ngff_attributes(folder: Path) -> dict:
    """Return the OME attributes of a Zarr group folder (v3 ``zarr.json`` or v2 ``.zattrs``); {} if none."""
    for name in ("zarr.json", ".zattrs"):
        try:
            attributes = json.loads((folder / name).read_text())
        except (OSError, ValueError):
            continue
        if name == "zarr.json":
            attributes = (
                attributes.get("attributes", {}).get("ome", {}) if isinstance(attributes, dict) else {}
            )
        if isinstance(attributes, dict):
            return attributes
    return {}


def _location(path: Path, folder: Path) -> ZarrLocation:
    """Open a Zarr group through ome-zarr; an absent or unreadable group is an InputError naming ``path``."""
    from ome_zarr.io import parse_url

    try:
        location = parse_url(folder)
    except _ZARR_ERRORS as err:
        raise InputError(path, f"unreadable Zarr metadata in {folder} ({err})") from None
    if location is None:
        raise InputError(
            path, f"not an OME-Zarr: no readable Zarr group metadata (zarr.json or .zgroup) in {folder}"
        )
    return location


def _label_location(path: Path, location: ZarrLocation) -> ZarrLocation:
    """Find the label image ``path`` names: itself, or the one label image of an image or labels group."""
    attributes = location.root_attrs
    if "image-label" in attributes:
        return location
    if "labels" in attributes:  # the labels group itself
        labels, prefix = location, path
    elif "multiscales" in attributes:
        labels_folder = path / "labels"
        if "labels" not in _ngff_attributes(labels_folder):
            raise InputError(
                path,
                "an OME-Zarr image, not a label image (no image-label metadata, no labels group); "
                "pass a label image",
            )
        labels, prefix = _location(path, labels_folder), labels_folder
    else:
        raise InputError(path, "not an OME-Zarr: no multiscales, labels or image-label metadata")
    names = labels.root_attrs.get("labels")
    if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
        raise InputError(path, f"the labels metadata lists no label images: {names!r}")
    if len(names) > 1:
        raise InputError(
            path,
            f"holds {len(names)} label images ({', '.join(names)}); pass the path of one, "
            f"e.g. {prefix / names[0]}",
        )
    return _location(path, prefix / _inside(path, prefix, names[0]))


def _inside(path: Path, folder: Path, name: str) -> str:
    """Return a path named in metadata if it stays inside ``folder``; metadata may not point elsewhere."""
    parts = Path(name).parts
    if Path(name).is_absolute() or ".." in parts or not parts:
        raise InputError(path, f"the metadata names {name!r}, outside this OME-Zarr; refused")
    return name


def _read_label(path: Path, location: ZarrLocation) -> OmeImage:
    """Read the full-resolution level of a label image as (T, Z, Y, X) with its sizes."""
    from ome_zarr.axes import Axes

    try:
        multiscale = location.root_attrs["multiscales"][0]
        dataset = multiscale["datasets"][0]
        axes = Axes(multiscale.get("axes"), fmt=location.fmt).to_list()
        if not isinstance(dataset, dict) or not all(isinstance(axis, dict) for axis in axes):
            raise TypeError("datasets and axes must be JSON objects")
    except _ZARR_ERRORS as err:
        raise InputError(path, f"invalid multiscales metadata in {location.path} ({err!r})") from None
    try:
        array = location.load(_inside(path, Path(location.path), str(dataset["path"])))
    except _ZARR_ERRORS as err:
        raise InputError(
            path, f"unreadable array {dataset.get('path')!r} in {location.path} ({err})"
        ) from None
    if array.ndim != len(axes):
        raise InputError(
            path, f"the array has {array.ndim} dimensions but the metadata names {len(axes)} axes"
        )
    keep = _pick_axes(path, axes, array.shape)
    check_array(path, array.shape, array.dtype, what=f"label image {location.path}")
    check_chunk(path, location.path, array.chunksize, array.dtype.itemsize)
    try:
        data = np.asarray(array.compute())
    except _ZARR_ERRORS as err:
        raise InputError(path, f"unreadable or damaged chunks in {location.path} ({err})") from None
    data = data.transpose([*keep, *(i for i in range(data.ndim) if i not in keep)])
    data = data.reshape(data.shape[: len(keep)])
    has_time = len(keep) == 4
    scale = _scale(path, multiscale, dataset, len(axes))
    spacing, frame_interval = _sizes(
        path, [axes[i] for i in keep], None if scale is None else [scale[i] for i in keep]
    )
    return OmeImage(data if has_time else data[None], spacing, frame_interval, has_time)


def _pick_axes(path: Path, axes: list[dict[str, Any]], shape: tuple[int, ...]) -> list[int]:
    """Return the indices of the time axis (if any) and the space axes (z, y, x); drop only singletons."""
    kinds = [axis.get("type") for axis in axes]
    names = [str(axis.get("name")) for axis in axes]
    described = ", ".join(f"{n} ({s})" for n, s in zip(names, shape, strict=True))
    for index, kind in enumerate(kinds):
        if kind not in ("time", "space") and shape[index] != 1:
            raise InputError(
                path, f"axes {described}: a label image with one channel is expected, not {shape[index]}"
            )
    space = [i for i, kind in enumerate(kinds) if kind == "space"]
    time = [i for i, kind in enumerate(kinds) if kind == "time"]
    if len(space) != 3 or len(time) > 1:
        raise InputError(path, f"axes {described}: a 3D or 3D+t label image (z, y, x) is expected")
    if sorted(names[i] for i in space) == ["x", "y", "z"]:
        space = sorted(space, key=lambda i: "zyx".index(names[i]))
    return [*time, *space]


def _scale(path: Path, multiscale: dict, dataset: dict, ndim: int) -> list[float] | None:
    """Return the full-resolution scale times the multiscale-wide one (if any); None if none is stated."""
    scales = [
        transform["scale"]
        for transforms in (
            dataset.get("coordinateTransformations"),
            multiscale.get("coordinateTransformations"),
        )
        for transform in transforms or []
        if isinstance(transform, dict) and transform.get("type") == "scale" and "scale" in transform
    ]
    if not scales:
        return None
    combined = [1.0] * ndim
    for scale in scales:
        if not isinstance(scale, list) or len(scale) != ndim:
            raise InputError(
                path, f"a scale in coordinateTransformations does not have {ndim} values: {scale}"
            )
        combined = [c * check_size(path, "scale", s, kind=None) for c, s in zip(combined, scale, strict=True)]
    return combined


def _sizes(
    path: Path, axes: list[dict[str, Any]], scale: list[float] | None
) -> tuple[tuple[float, float, float] | None, float | None]:
    """Voxel size in µm and frame interval in s for the kept axes (time first when present)."""
    if scale is None:
        return None, None
    sizes: list[float | None] = []
    for axis, value in zip(axes, scale, strict=True):
        unit = axis.get("unit")
        if unit is None:
            sizes.append(None)
            continue
        kind = "time" if axis["type"] == "time" else "length"
        factor = (seconds_per if kind == "time" else micrometres_per)(str(unit))
        if factor is None:
            raise InputError(path, f"unit {unit!r} of axis {axis['name']} is not a unit of {kind}")
        sizes.append(check_size(path, f"scale of axis {axis['name']}", value, kind=kind, factor=factor))
    frame_interval = sizes.pop(0) if len(axes) == 4 else None
    spacing = None if None in sizes else (sizes[0], sizes[1], sizes[2])
    return spacing, frame_interval
