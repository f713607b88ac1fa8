"""Opening HDF5 files from elsewhere: everything read must lie inside the file, in chunks of a sane size.

HDF5 can make a file read other files: external links, external raw storage (a dataset whose bytes are
another file, ``/etc/passwd`` for instance) and virtual datasets (whose missing sources read as fill values
without a word). It can also declare chunks of a GiB in a file of a MB, and reading one value reads the whole
chunk. A file handed over is checked for all of these before anything in it is read.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import h5py

from cellsdf.errors import InputError
from cellsdf.io.limits import check_chunk


def check_contained(f: h5py.File, path: str | Path) -> None:
    """Refuse an HDF5 file that reads other files or declares oversized chunks.

    Parameters
    ----------
    f : h5py.File
        The open file.
    path : str or Path
        Its path, for the messages.

    Raises
    ------
    InputError
        Naming the object: an external link, a dataset with external storage, a virtual dataset, or a chunk
        larger than :data:`~cellsdf.io.limits.MAX_CHUNK_BYTES`.
    """
    seen: set = set()
    groups = [f]
    while groups:
        group = groups.pop()
        for name in group:
            link = group.get(name, getlink=True)
            if isinstance(link, h5py.ExternalLink):
                raise InputError(
                    path,
                    f"{group.name.rstrip('/')}/{name} is a link to another file "
                    f"({link.filename}); refused: only what lies inside the file is read",
                )
            item = group.get(name)
            if item is None or item.id in seen:  # a dangling soft link, or an object reached before
                continue
            seen.add(item.id)
            if isinstance(item, h5py.Group):
                groups.append(item)
            elif isinstance(item, h5py.Dataset):
                _check_dataset(item, path)


def _check_dataset(data: h5py.Dataset, path: str | Path) -> None:
    if data.is_virtual:
        raise InputError(
            path, f"{data.name} is a virtual dataset (its values come from other files); refused"
        )
    if data.external:
        raise InputError(
            path, f"{data.name} stores its values in other files ({data.external[0][0]}); refused"
        )
    if data.chunks is not None:
        check_chunk(path, data.name, data.chunks, data.dtype.itemsize)


@contextmanager
def open_hdf5(path: str | Path) -> Iterator[h5py.File]:
    """Open an HDF5 file for reading, checked by :func:`check_contained` first."""
    with h5py.File(path, "r") as f:
        check_contained(f, path)
        yield f
