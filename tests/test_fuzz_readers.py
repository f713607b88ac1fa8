"""Property-based fuzzing of the file readers: any bytes or layout either reads sanely or ends in InputError.

Each reader gets random input and mutations of small valid files. A reader may succeed, and then its output
must be sane (shapes that agree, finite and plausible values), or raise InputError (a ValueError naming the
file) - never another exception, never a MemoryError. The normal suite tries a few cases per reader
(``FEW``, seconds in all); ``-m slow`` tries many more (``MANY``) with the same strategies.

Memory available is pretended to be 64 MiB here, so that random headers cannot make a reader allocate
gigabytes of this machine's memory: the size limits refuse them instead, as they would on a small machine.
"""

import json
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest
import tifffile
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cellsdf.dataset.prepared import (
    FORMAT,
    SequenceInfo,
    create_prepared,
    read_index,
    read_prepared,
    write_frame,
)
from cellsdf.errors import InputError
from cellsdf.io import limits
from cellsdf.io.ctc import read_ctc_sequence, read_ctc_tracks
from cellsdf.io.omezarr import omezarr_writer, read_omezarr
from cellsdf.io.reference import read_reference_sdf, write_reference_sdf
from cellsdf.io.tiff import iter_frames, read_header, read_timelapse, write_timelapse
from cellsdf.io.units import PLAUSIBLE

FEW = settings(
    max_examples=30,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
MANY = settings(
    max_examples=600,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
PRETENDED_MEMORY = 64 * 2**20


@pytest.fixture(scope="module", autouse=True)
def small_memory():
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(limits, "available_memory", lambda: PRETENDED_MEMORY)
        yield


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


def _plausible(value: float, kind: str) -> bool:
    least, most, _ = PLAUSIBLE[kind]
    return least <= value <= most


# ---------------------------------------------------------------------------------------------- TIFF


def _tiff_seeds(folder: Path) -> list[bytes]:
    """Small valid TIFFs of the kinds cellsdf reads: ImageJ TZYX (zlib), ImageJ ZYX, OME-TIFF, plain 4D."""
    masks = np.zeros((2, 3, 8, 8), bool)
    masks[:, 1, 2:6, 2:6] = True
    files = [write_timelapse(folder / "a.tif", masks, spacing=(2.0, 0.5, 0.5), frame_interval=30.0)]
    tifffile.imwrite(
        folder / "b.tif",
        np.arange(3 * 6 * 5, dtype=np.uint16).reshape(3, 6, 5),
        imagej=True,
        metadata={"axes": "ZYX", "spacing": 1.5},
    )
    ome = {"axes": "ZYX", "PhysicalSizeX": 0.2, "PhysicalSizeY": 0.2, "PhysicalSizeZ": 1.0}
    tifffile.imwrite(folder / "c.ome.tif", np.ones((2, 5, 6), np.uint8), ome=True, metadata=ome)
    tifffile.imwrite(folder / "d.tif", np.ones((2, 2, 5, 6), np.uint8))
    files += [folder / n for n in ("b.tif", "c.ome.tif", "d.tif")]
    return [f.read_bytes() for f in files]


SEEDS: dict[str, list[bytes]] = {}


@st.composite
def tiff_bytes(draw) -> bytes:
    """Random bytes, bytes behind a TIFF signature, or a valid TIFF truncated or with bytes overwritten."""
    kind = draw(st.sampled_from(["random", "signature", "truncated", "mutated"]))
    if kind == "random":
        return draw(st.binary(max_size=512))
    if kind == "signature":
        magic = draw(st.sampled_from([b"II*\x00", b"MM\x00*", b"II+\x00\x08\x00\x00\x00"]))
        return magic + draw(st.binary(max_size=512))
    seed = draw(st.sampled_from(SEEDS["tiff"]))
    if kind == "truncated":
        return seed[: draw(st.integers(0, len(seed) - 1))]
    data = bytearray(seed)
    # Most of what a reader interprets sits in the header and the tags near the start of a small file.
    for _ in range(draw(st.integers(1, 8))):
        position = draw(st.integers(0, min(len(data), 400) - 1) | st.integers(0, len(data) - 1))
        data[position] = draw(st.integers(0, 255))
    return bytes(data)


def _check_tiff(work: Path, data: bytes) -> None:
    path = work / "fuzz.tif"
    path.write_bytes(data)
    try:
        header = read_header(path)
    except InputError:
        return
    assert len(header.shape) == 4 and min(header.shape) >= 1
    assert header.spacing is None or all(_plausible(s, "length") for s in header.spacing)
    assert _plausible(header.frame_interval, "time")
    try:
        stack = read_timelapse(path)
    except InputError:
        pass
    else:
        assert stack.data.shape == header.shape
    try:
        for frame in iter_frames(path):
            assert frame.shape == header.shape[1:]
    except InputError:
        pass


@pytest.fixture(scope="module")
def tiff_seeds(work):
    SEEDS["tiff"] = _tiff_seeds(work)


@FEW
@given(data=tiff_bytes())
def test_tiff_readers_read_sanely_or_refuse(work, tiff_seeds, data):
    _check_tiff(work, data)


@pytest.mark.slow
@MANY
@given(data=tiff_bytes())
def test_tiff_readers_many(work, tiff_seeds, data):
    _check_tiff(work, data)


# ---------------------------------------------------------------------------------------------- HDF5

DTYPES = ["f4", "f8", "i4", "u1", "?", "S4", "str"]
VALUES = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True, width=32), st.integers(-(2**31), 2**31 - 1), st.just(0)
)


@st.composite
def dataset_spec(draw) -> dict:
    """One HDF5 object: a small filled array, a huge declared (chunked, empty) array, a group, or null."""
    kind = draw(st.sampled_from(["array", "array", "huge", "group", "null"]))
    spec = {"kind": kind, "dtype": draw(st.sampled_from(DTYPES))}
    if kind == "array":
        spec["shape"] = draw(st.lists(st.integers(0, 4), max_size=4).map(tuple))
        spec["value"] = draw(VALUES)
    elif kind == "huge":
        spec["shape"] = draw(st.lists(st.integers(1, 2**40), min_size=1, max_size=4).map(tuple))
    return spec


def _put(group: h5py.Group, name: str, spec: dict) -> None:
    # A layout that puts an object under a dataset replaces that dataset with a group, as a writer would.
    parts = name.split("/")
    for depth in range(1, len(parts)):
        parent = "/".join(parts[:depth])
        if parent in group and not isinstance(group[parent], h5py.Group):
            del group[parent]
    if name in group:
        del group[name]
    dtype = h5py.string_dtype() if spec["dtype"] == "str" else np.dtype(spec["dtype"])
    if spec["kind"] == "group":
        group.require_group(name)
    elif spec["kind"] == "null":
        group.create_dataset(name, data=h5py.Empty(dtype if dtype.kind != "O" else "f4"))
    elif spec["kind"] == "huge":
        group.create_dataset(name, shape=spec["shape"], dtype=dtype, chunks=(1,) * len(spec["shape"]))
    else:
        value = spec["value"]
        if dtype.kind == "S":
            array = np.full(spec["shape"], str(value).encode()[:4], dtype=dtype)
        elif dtype.kind == "O":
            array = np.full(spec["shape"], str(value), dtype=object)
        else:
            with np.errstate(invalid="ignore", over="ignore"):
                array = np.full(spec["shape"], value).astype(dtype)
        group.create_dataset(name, data=array, dtype=dtype)


PREPARED_NAMES = [
    "points",
    "sdf",
    "eval_masks",
    "frame_sequence",
    "frame_t",
    "frame_number",
    "frame_centre",
    "sequences/name",
    "sequences/source",
    "sequences/spacing",
    "sequences/frames",
    "sequences/frame_interval",
    "sequences/division_frame",
    "sequences",
    "other",
]
# HDF5 strings cannot hold NUL, so such text is no test of the readers.
ATTRIBUTE_VALUES = st.one_of(
    VALUES, st.text(st.characters(exclude_characters="\x00"), max_size=8), st.just(FORMAT)
)


def _valid_prepared(path: Path) -> None:
    infos = [
        SequenceInfo("a", "t", (1.0, 0.5, 0.5), 2, 2.0, None),
        SequenceInfo("b", "t", (1.0,) * 3, 1, 1.0, None),
    ]
    attrs = {"scale": 0.1, "margin": 0.1, "centre": "bbox", "config": "{}"}
    with create_prepared(path, 3, 8, 4, attrs, infos) as f:
        for row, (sequence, t) in enumerate([(0, -1.0), (0, 1.0), (1, 0.0)]):
            points = np.linspace(-1, 1, 24).reshape(8, 3)
            write_frame(
                f, row, sequence, t, row, np.zeros(3), points, points[:, 0], np.ones((4, 4, 4), np.uint8)
            )


@st.composite
def prepared_changes(draw) -> list[tuple]:
    """Changes to a valid prepared dataset: replace or delete objects, set an element or attributes."""
    change = st.one_of(
        st.tuples(st.just("put"), st.sampled_from(PREPARED_NAMES), dataset_spec()),
        st.tuples(st.just("delete"), st.sampled_from(PREPARED_NAMES), st.none()),
        st.tuples(st.just("element"), st.sampled_from(PREPARED_NAMES[:13]), VALUES),
        st.tuples(st.just("attribute"), st.sampled_from(["format", "scale", "config"]), ATTRIBUTE_VALUES),
    )
    return draw(st.lists(change, min_size=1, max_size=3))


def _apply(f: h5py.File, changes: list[tuple]) -> None:
    for action, name, argument in changes:
        if action == "put":
            _put(f, name, argument)
        elif action == "delete" and name in f:
            del f[name]
        elif action == "element" and isinstance(f.get(name), h5py.Dataset) and f[name].size:
            data = f[name]
            index = tuple(0 for _ in data.shape)
            try:
                data[index] = argument
            except (TypeError, ValueError, OverflowError):
                pass  # a value the dataset's type cannot hold is no change
        elif action == "attribute":
            f.attrs[name] = argument


def _check_prepared(work: Path, changes: list[tuple]) -> None:
    path = work / "prepared.h5"
    _valid_prepared(path)
    with h5py.File(path, "a") as f:
        _apply(f, changes)
    try:
        data = read_prepared(path)
    except InputError:
        pass
    else:
        frames, points = data.points.shape[:2]
        assert data.points.shape == (frames, points, 3) and data.sdf.shape == (frames, points) and points >= 1
        assert np.isfinite(data.points).all() and np.isfinite(data.sdf).all()
        assert data.frame_sequence.shape == data.frame_t.shape == (frames,)
        assert sorted(set(data.frame_sequence.tolist())) == list(range(data.n_sequences))
        assert np.isfinite(data.scale) and data.scale > 0
        for info in data.sequences:
            assert all(_plausible(s, "length") for s in info.spacing) and _plausible(
                info.frame_interval, "time"
            )
    try:
        index = read_index(path)
    except InputError:
        return
    assert index.eval_size >= 2 and len(index.frame_number) == len(index.frame_sequence)


@FEW
@given(changes=prepared_changes())
def test_prepared_reader_reads_sanely_or_refuses(work, changes):
    _check_prepared(work, changes)


@pytest.mark.slow
@MANY
@given(changes=prepared_changes())
def test_prepared_reader_many(work, changes):
    _check_prepared(work, changes)


@st.composite
def random_layouts(draw) -> tuple[dict, dict]:
    """A file of random objects under the names the readers look for (and others) with random attributes."""
    objects = draw(st.dictionaries(st.sampled_from([*PREPARED_NAMES, "sdf_vid"]), dataset_spec(), max_size=6))
    attrs = draw(
        st.dictionaries(st.sampled_from(["format", "scale", "version"]), ATTRIBUTE_VALUES, max_size=3)
    )
    return objects, attrs


def _check_layout(work: Path, layout: tuple[dict, dict]) -> None:
    objects, attrs = layout
    path = work / "layout.h5"
    with h5py.File(path, "w") as f:
        for name, spec in objects.items():
            if (
                name.startswith("sequences/")
                and "sequences" in f
                and not isinstance(f["sequences"], h5py.Group)
            ):
                continue
            _put(f, name, spec)
        f.attrs.update(attrs)
    for read in (read_prepared, read_index):
        try:
            read(path)
        except InputError:
            pass
    _check_reference_file(path)


def _check_reference_file(path: Path) -> None:
    try:
        sdf = read_reference_sdf(path)
    except InputError:
        return
    assert sdf.ndim == 4 and sdf.size and sdf.dtype == np.float32 and np.isfinite(sdf).all()


@FEW
@given(layout=random_layouts())
def test_hdf5_readers_refuse_random_layouts(work, layout):
    _check_layout(work, layout)


@pytest.mark.slow
@MANY
@given(layout=random_layouts())
def test_hdf5_readers_many_layouts(work, layout):
    _check_layout(work, layout)


def _check_reference(work: Path, changes: list[tuple]) -> None:
    path = work / "reference.h5"
    write_reference_sdf(
        path, np.linspace(-1, 1, 2 * 4 * 4 * 4, dtype=np.float32).reshape(2, 4, 4, 4), overwrite=True
    )
    with h5py.File(path, "a") as f:
        _apply(f, changes)
    _check_reference_file(path)


REFERENCE_CHANGES = st.lists(
    st.one_of(
        st.tuples(st.just("put"), st.sampled_from(["sdf_vid", "other"]), dataset_spec()),
        st.tuples(st.just("element"), st.just("sdf_vid"), VALUES),
        st.tuples(st.just("delete"), st.just("sdf_vid"), st.none()),
    ),
    min_size=1,
    max_size=2,
)


@FEW
@given(changes=REFERENCE_CHANGES)
def test_reference_reader_reads_sanely_or_refuses(work, changes):
    _check_reference(work, changes)


@pytest.mark.slow
@MANY
@given(changes=REFERENCE_CHANGES)
def test_reference_reader_many(work, changes):
    _check_reference(work, changes)


# ---------------------------------------------------------------------------------------------- CTC

TOKENS = st.one_of(
    st.integers(-5, 5),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.text(alphabet="0123456789-+.eEabc#", min_size=1, max_size=4),
)
TRACK_FILES = st.one_of(
    st.lists(st.lists(TOKENS, max_size=6).map(lambda row: " ".join(map(str, row))), max_size=6).map(
        "\n".join
    ),
    st.text(max_size=40),
)


@pytest.fixture(scope="module")
def ctc_folder(work) -> Path:
    """A CTC sequence of two 8 x 8 frames with label 1 in both and label 2 in the second."""
    folder = work / "ctc"
    labels = np.zeros((2, 8, 8), np.uint16)
    labels[:, 2:4, 2:4] = 1
    labels[1, 5:7, 5:7] = 2
    for sub, prefix in (("01", "t"), ("01_GT/TRA", "man_track")):
        (folder / sub).mkdir(parents=True)
        for t in range(2):
            tifffile.imwrite(folder / sub / f"{prefix}{t:03d}.tif", labels[t])
    return folder


def _check_track_file(folder: Path, text: str) -> None:
    (folder / "01_GT" / "TRA" / "man_track.txt").write_text(text)
    try:
        sequence = read_ctc_sequence(folder, "01")
    except InputError:
        return
    tracks = sequence.tracks
    assert tracks.dtype == np.int64 and tracks.ndim == 2 and tracks.shape[1] == 4
    labels, begin, end, parent = tracks.T
    frames = len(sequence.labels)
    assert (labels > 0).all() and len(set(labels.tolist())) == len(labels)
    assert ((0 <= begin) & (begin <= end) & (end < frames)).all()
    assert all(p == 0 or (p in labels and p != lab) for lab, p in zip(labels, parent, strict=True))


@FEW
@given(text=TRACK_FILES)
def test_ctc_track_file_reads_sanely_or_refuses(ctc_folder, text):
    _check_track_file(ctc_folder, text)


@pytest.mark.slow
@MANY
@given(text=TRACK_FILES)
def test_ctc_track_file_many(ctc_folder, text):
    _check_track_file(ctc_folder, text)


LABEL_DTYPES = ["u1", "u2", "u4", "u8", "i2", "i4", "f4"]


@st.composite
def label_frames(draw) -> list[np.ndarray]:
    """One to three small label frames (usually 3D) of random type, a few voxels set to random values."""
    dtype = np.dtype(draw(st.sampled_from(LABEL_DTYPES)))
    shape = draw(st.sampled_from([(2, 5, 5), (3, 4, 6), (5, 5), (1, 1, 1)]))
    frames = []
    for _ in range(draw(st.integers(1, 3))):
        frame = np.zeros(draw(st.sampled_from([shape, shape, (2, 4, 4)])), dtype)
        info = np.iinfo(dtype) if dtype.kind in "iu" else np.finfo(dtype)
        for _ in range(draw(st.integers(0, 4))):
            index = tuple(draw(st.integers(0, n - 1)) for n in frame.shape)
            frame[index] = draw(
                st.sampled_from([1, 2, 7, info.max, info.min, -1 if dtype.kind != "u" else 3])
            )
        frames.append(frame)
    return frames


def _check_label_folder(work: Path, frames: list[np.ndarray]) -> None:
    folder = work / "labels"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir()
    for t, frame in enumerate(frames):
        tifffile.imwrite(folder / f"man_track{t:03d}.tif", frame, photometric="minisblack")
    try:
        tracks = read_ctc_tracks(folder)
    except InputError:
        return
    assert len({t.name for t in tracks}) == len(tracks)
    for track in tracks:
        assert track.masks.dtype == bool and track.masks.ndim == 4
        assert len(track.masks) == len(track.frame_numbers) and all(m.any() for m in track.masks)


@FEW
@given(frames=label_frames())
def test_ctc_label_reader_reads_sanely_or_refuses(work, frames):
    _check_label_folder(work, frames)


@pytest.mark.slow
@MANY
@given(frames=label_frames())
def test_ctc_label_reader_many(work, frames):
    _check_label_folder(work, frames)


# ---------------------------------------------------------------------------------------------- OME-Zarr

JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**40), 2**40)
    | st.floats(allow_nan=False)
    | st.text(max_size=6),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=12,
)


def _paths(node, prefix=()):
    """Every path into a JSON tree (keys and list indices)."""
    yield prefix
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for key, child in items:
        yield from _paths(child, (*prefix, key))


@st.composite
def zarr_changes(draw) -> list[tuple[str, int, object]]:
    """Replacements in the label image's attributes or its array's metadata: (file, path choice, value)."""
    file = st.sampled_from(["labels/mask/zarr.json", "labels/mask/0/zarr.json"])
    value = JSON | st.lists(st.integers(0, 2**40), min_size=1, max_size=5)
    return draw(st.lists(st.tuples(file, st.integers(0, 10**6), value), min_size=1, max_size=3))


def _check_omezarr(work: Path, changes: list[tuple[str, int, object]]) -> None:
    root = work / "fuzz.ome.zarr"
    shutil.rmtree(root, ignore_errors=True)
    with omezarr_writer(root, (2, 3, 4, 4), spacing=(1.0, 0.5, 0.5), frame_interval=2.0) as add:
        add(np.ones((3, 4, 4), bool))
        add(np.zeros((3, 4, 4), bool))
    for name, choice, value in changes:
        meta_file = root / name
        meta = json.loads(meta_file.read_text())
        paths = list(_paths(meta))[1:]
        *parent, key = paths[choice % len(paths)]
        node = meta
        for step in parent:
            node = node[step]
        node[key] = value
        meta_file.write_text(json.dumps(meta))
    try:
        image = read_omezarr(root)
    except InputError:
        return
    assert image.data.ndim == 4 and image.data.size
    assert image.spacing is None or all(_plausible(s, "length") for s in image.spacing)
    assert image.frame_interval is None or _plausible(image.frame_interval, "time")


@FEW
@given(changes=zarr_changes())
def test_omezarr_reader_reads_sanely_or_refuses(work, changes):
    _check_omezarr(work, changes)


@pytest.mark.slow
@MANY
@given(changes=zarr_changes())
def test_omezarr_reader_many(work, changes):
    _check_omezarr(work, changes)
