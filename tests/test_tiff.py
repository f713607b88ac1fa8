import numpy as np
import pytest
import tifffile

from cellsdf.errors import InputError
from cellsdf.io.tiff import iter_frames, read_header, read_timelapse, write_timelapse


def test_round_trip_keeps_masks_spacing_and_interval(tmp_path, growing_blob):
    path = write_timelapse(tmp_path / "a.tif", growing_blob, spacing=(2.0, 0.5, 0.25), frame_interval=30.0)
    stack = read_timelapse(path)
    assert stack.has_time
    assert stack.data.dtype == np.uint8 and set(np.unique(stack.data)) == {0, 255}
    np.testing.assert_array_equal(stack.data > 0, growing_blob)
    assert stack.spacing == pytest.approx((2.0, 0.5, 0.25))
    assert stack.frame_interval == 30.0
    with tifffile.TiffFile(path) as tif:
        assert tif.is_imagej and tif.series[0].axes == "TZYX"
        assert tif.imagej_metadata["unit"] == "um"
        assert tif.pages.first.compression != 1  # lossless compression, not raw


def test_frames_can_be_streamed(tmp_path, growing_blob):
    path = write_timelapse(tmp_path / "a.tif", iter(growing_blob), shape=growing_blob.shape)
    np.testing.assert_array_equal(read_timelapse(path).data > 0, growing_blob)


def test_single_volume_reads_as_one_frame(tmp_path, growing_blob):
    tifffile.imwrite(tmp_path / "v.tif", growing_blob[0].astype(np.uint16))
    stack = read_timelapse(tmp_path / "v.tif")
    assert not stack.has_time and stack.data.shape == (1, *growing_blob.shape[1:])


def test_existing_output_is_refused_and_kept(tmp_path, growing_blob):
    path = write_timelapse(tmp_path / "a.tif", growing_blob)
    before = path.read_bytes()
    with pytest.raises(InputError, match="already exists"):
        write_timelapse(path, growing_blob[:2])
    assert path.read_bytes() == before
    write_timelapse(path, growing_blob[:2], overwrite=True)
    assert read_timelapse(path).data.shape[0] == 2


def test_failed_write_leaves_old_file_intact(tmp_path, growing_blob):
    path = write_timelapse(tmp_path / "a.tif", growing_blob)
    before = path.read_bytes()
    bad = [growing_blob[0], growing_blob[0][:-1]]  # second frame has the wrong shape
    with pytest.raises(ValueError, match="differs"):
        write_timelapse(path, iter(bad), shape=(2, *growing_blob.shape[1:]), overwrite=True)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["a.tif"]


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: None, "not found"),
        (lambda p: p.write_bytes(b"hello, not a tiff"), "unreadable"),
        (lambda p: tifffile.imwrite(p, np.zeros((16, 16), np.uint8)), "2D image"),
    ],
)
def test_bad_files_name_the_file(tmp_path, make, message):
    path = tmp_path / "bad.tif"
    make(path)
    with pytest.raises(InputError, match=message) as err:
        read_timelapse(path)
    assert str(path) in str(err.value)


def test_truncated_file_is_reported(tmp_path, growing_blob):
    path = write_timelapse(tmp_path / "a.tif", growing_blob)
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(InputError, match="truncated"):
        read_timelapse(path)


def test_frames_stream_one_at_a_time(tmp_path, growing_blob):
    path = write_timelapse(tmp_path / "a.tif", growing_blob)
    frames = list(iter_frames(path))
    assert len(frames) == 5
    np.testing.assert_array_equal(np.stack(frames) > 0, growing_blob)
    tifffile.imwrite(tmp_path / "v.tif", growing_blob[0].astype(np.uint8))
    (single,) = iter_frames(tmp_path / "v.tif")
    np.testing.assert_array_equal(single > 0, growing_blob[0])


def _ome(path, data, axes="TZYX", **sizes):
    tifffile.imwrite(path, data.astype(np.uint8), ome=True, metadata={"axes": axes, **sizes})


def test_ome_tiff_sizes_are_read_and_converted_to_micrometres_and_seconds(tmp_path, growing_blob):
    sizes = {
        "PhysicalSizeX": 0.2,
        "PhysicalSizeXUnit": "µm",
        "PhysicalSizeY": 250,
        "PhysicalSizeYUnit": "nm",
        "PhysicalSizeZ": 0.001,
        "PhysicalSizeZUnit": "mm",
        "TimeIncrement": 2,
        "TimeIncrementUnit": "min",
    }
    _ome(tmp_path / "a.ome.tif", growing_blob, **sizes)
    stack = read_timelapse(tmp_path / "a.ome.tif")
    assert stack.has_time and stack.data.shape == growing_blob.shape
    assert stack.spacing == pytest.approx((1.0, 0.25, 0.2))
    assert stack.frame_interval == pytest.approx(120.0)
    assert read_header(tmp_path / "a.ome.tif").spacing == pytest.approx((1.0, 0.25, 0.2))


def test_ome_tiff_volume_with_a_singleton_channel_and_no_sizes(tmp_path, growing_blob):
    _ome(tmp_path / "v.ome.tif", growing_blob[0][:, None], axes="ZCYX")
    header = read_header(tmp_path / "v.ome.tif")
    assert header.shape == (1, *growing_blob.shape[1:]) and not header.has_time
    assert header.spacing is None and header.frame_interval == 1.0


@pytest.mark.parametrize(
    ("sizes", "field"),
    [
        ({"PhysicalSizeX": float("nan"), "PhysicalSizeY": 1.0, "PhysicalSizeZ": 1.0}, "PhysicalSizeX"),
        ({"PhysicalSizeX": 1.0, "PhysicalSizeY": 1.0, "PhysicalSizeZ": -2.0}, "PhysicalSizeZ"),
        ({"TimeIncrement": 0}, "TimeIncrement"),
    ],
)
def test_ome_tiff_bad_sizes_name_the_file_and_field(tmp_path, growing_blob, sizes, field):
    _ome(tmp_path / "bad.ome.tif", growing_blob, **sizes)
    with pytest.raises(InputError, match=field) as err:
        read_timelapse(tmp_path / "bad.ome.tif")
    assert str(tmp_path / "bad.ome.tif") in str(err.value)


@pytest.mark.parametrize(
    ("metadata", "field"),
    [
        ({"spacing": float("nan")}, "spacing"),
        ({"spacing": -1.0}, "spacing"),
        ({"finterval": 0.0}, "finterval"),
        ({"spacing": 1.0, "unit": "furlong"}, "ImageJ unit 'furlong'"),
    ],
)
def test_imagej_bad_sizes_name_the_file_and_field(tmp_path, growing_blob, metadata, field):
    path = tmp_path / "bad.tif"
    tifffile.imwrite(path, growing_blob.astype(np.uint8), imagej=True, metadata={"axes": "TZYX", **metadata})
    with pytest.raises(InputError, match=field) as err:
        read_timelapse(path)
    assert str(path) in str(err.value)


@pytest.mark.parametrize(
    ("unit", "expected"),
    [
        ("nm", (200e-3, 50e-3, 50e-3)),
        ("\\u00B5m", (0.2 * 1000, 0.05 * 1000, 0.05 * 1000)),  # how ImageJ itself writes µm
        ("micron", (200.0, 50.0, 50.0)),
        ("pixel", None),  # ImageJ's word for an uncalibrated image
    ],
)
def test_imagej_sizes_are_read_in_the_unit_the_file_states(tmp_path, growing_blob, unit, expected):
    path = tmp_path / "calibrated.tif"
    metadata = {"axes": "TZYX", "spacing": 200.0, "unit": unit}
    tifffile.imwrite(
        path, growing_blob.astype(np.uint8), imagej=True, resolution=(1 / 50, 1 / 50), metadata=metadata
    )
    spacing = read_header(path).spacing  # None where the file states no voxel size
    assert spacing == (None if expected is None else pytest.approx(expected))
