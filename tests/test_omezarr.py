import json

import numpy as np
import pytest
import zarr
from ome_zarr.format import FormatV04, FormatV05
from ome_zarr.io import parse_url
from ome_zarr.reader import Label, Reader
from ome_zarr.writer import write_image, write_labels

from cellsdf.cli import main
from cellsdf.errors import InputError
from cellsdf.io.omezarr import is_omezarr, omezarr_writer, read_omezarr

NM = {"z": "nanometer", "y": "nanometer", "x": "nanometer"}


def _labels(growing_blob):
    labels = growing_blob.astype(np.uint16)
    labels[:, :, :, 16:] *= 2  # two label values: values are kept as they are
    return labels


def _image_with_labels(path, labels, names=("cells",), fmt=None, axes="tzyx", scale=None, units=None):
    """An NGFF image with label images, written by ome-zarr's own writer (pyramids included)."""
    root = zarr.open_group(path, mode="w", zarr_format=(fmt or FormatV05()).zarr_format)
    options = {"fmt": fmt, "axes": axes, "scale": scale, "axes_units": units, "scaler": None}
    write_image(np.zeros(labels.shape, np.uint8), root, scale_factors=[2], **options)
    for name in names:
        write_labels(labels, root, name=name, scale_factors=[2], **options)
    return path


@pytest.mark.parametrize("fmt", [FormatV05(), FormatV04()], ids=["ngff0.5", "ngff0.4"])
def test_label_time_lapse_reads_with_sizes_in_micrometres_and_seconds(tmp_path, growing_blob, fmt):
    labels = _labels(growing_blob)
    scale = {"t": 1500.0, "z": 2000.0, "y": 500.0, "x": 250.0}
    root = _image_with_labels(
        tmp_path / "img.zarr", labels, fmt=fmt, scale=scale, units={"t": "millisecond", **NM}
    )
    for path in (root, root / "labels", root / "labels" / "cells"):
        image = read_omezarr(path)
        assert image.has_time and image.data.shape == labels.shape
        np.testing.assert_array_equal(image.data, labels)
        assert image.spacing == pytest.approx((2.0, 0.5, 0.25))
        assert image.frame_interval == pytest.approx(1.5)
    assert is_omezarr(root) and is_omezarr(root / "labels" / "cells")


def test_single_volume_with_a_channel_axis_reads_as_one_frame(tmp_path, growing_blob):
    volume = _labels(growing_blob)[2][None]  # (c=1, z, y, x)
    scale = {"c": 1.0, "z": 1.0, "y": 0.002, "x": 0.002}
    units = {"z": "micrometer", "y": "millimeter", "x": "millimeter"}
    root = _image_with_labels(tmp_path / "v.zarr", volume, axes="czyx", scale=scale, units=units)
    image = read_omezarr(root)
    assert not image.has_time and image.data.shape == (1, *volume.shape[1:])
    np.testing.assert_array_equal(image.data[0], volume[0])
    assert image.spacing == pytest.approx((1.0, 2.0, 2.0)) and image.frame_interval is None


def test_no_physical_size_gives_none(tmp_path, growing_blob):
    image = read_omezarr(_image_with_labels(tmp_path / "n.zarr", growing_blob.astype(np.uint8)))
    assert image.spacing is None and image.frame_interval is None and image.has_time


def _image_only(path, data, axes="tzyx"):
    write_image(data, zarr.open_group(path, mode="w"), axes=axes, scaler=None, scale_factors=[])
    return path


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p, blob: _image_only(p, blob.astype(np.uint8)), "image, not a label image"),
        (lambda p, blob: _image_with_labels(p, blob, names=("cells", "nuclei")), "labels/cells"),
        (lambda p, blob: _image_with_labels(p, blob[:2, :, :, :], axes="czyx"), "one channel"),
        (lambda p, blob: _image_with_labels(p, blob[0, 0], axes="yx"), "3D or 3D\\+t"),
        (lambda p, blob: p.mkdir(), "no readable Zarr group"),
        (lambda p, blob: (p.mkdir(), (p / "zarr.json").write_text("{not json")), "no readable Zarr"),
        (lambda p, blob: p.write_text("a file"), "is a folder"),
        (lambda p, blob: None, "not found"),
    ],
    ids=["image", "several", "channels", "2d", "empty", "garbage", "file", "missing"],
)
def test_bad_inputs_are_one_line_naming_the_path(tmp_path, growing_blob, make, message):
    path = tmp_path / "x.zarr"
    make(path, growing_blob.astype(np.uint8))
    with pytest.raises(InputError, match=message) as err:
        read_omezarr(path)
    assert err.value.source == str(path) and "\n" not in str(err.value)


def test_several_labels_name_them_all(tmp_path, growing_blob):
    root = _image_with_labels(tmp_path / "img.zarr", growing_blob.astype(np.uint8), names=("cells", "nuclei"))
    with pytest.raises(InputError, match="cells, nuclei.*pass the path of one"):
        read_omezarr(root)
    assert read_omezarr(root / "labels" / "nuclei").data.shape == growing_blob.shape


def test_negative_scale_and_unknown_unit_are_refused(tmp_path, growing_blob):
    root = _image_with_labels(
        tmp_path / "img.zarr", growing_blob.astype(np.uint8), scale={"t": 1.0, "z": 1.0, "y": 1.0, "x": 1.0}
    )
    meta_file = root / "labels" / "cells" / "zarr.json"
    meta = json.loads(meta_file.read_text())
    multiscale = meta["attributes"]["ome"]["multiscales"][0]
    multiscale["datasets"][0]["coordinateTransformations"][0]["scale"][1] = -1.0
    meta_file.write_text(json.dumps(meta))
    with pytest.raises(InputError, match="positive"):
        read_omezarr(root)
    multiscale["datasets"][0]["coordinateTransformations"][0]["scale"][1] = 1.0
    multiscale["axes"][1]["unit"] = "furlong"
    meta_file.write_text(json.dumps(meta))
    with pytest.raises(InputError, match="furlong"):
        read_omezarr(root)


def test_is_omezarr(tmp_path):
    (tmp_path / "plain").mkdir()
    (tmp_path / "a.tif").write_bytes(b"")
    assert not is_omezarr(tmp_path / "plain") and not is_omezarr(tmp_path / "a.tif")
    (tmp_path / "x.zarr").mkdir()
    assert is_omezarr(tmp_path / "x.zarr")


def _write(path, masks, **options):
    with omezarr_writer(path, masks.shape, spacing=(2.0, 0.5, 0.25), frame_interval=30.0, **options) as add:
        for frame in masks:
            add(frame)
    return path


def test_written_mask_reads_back_with_ome_zarrs_reader(tmp_path, growing_blob):
    path = _write(tmp_path / "mask.ome.zarr", growing_blob)
    nodes = list(Reader(parse_url(path))())
    (label,) = [n for n in nodes if n.load(Label)]
    assert label.metadata["name"] == "mask" and len(label.data) == 1  # one resolution level
    data = label.data[0]
    assert data.shape == growing_blob.shape and data.dtype == np.uint8
    assert data.chunksize == (1, *growing_blob.shape[1:])
    np.testing.assert_array_equal(data.compute(), growing_blob.astype(np.uint8))
    axes = label.metadata["axes"]
    assert [a["name"] for a in axes] == ["t", "z", "y", "x"]
    assert [a.get("unit") for a in axes] == ["second", "micrometer", "micrometer", "micrometer"]
    (transforms,) = label.metadata["coordinateTransformations"]
    assert transforms == [{"type": "scale", "scale": [30.0, 2.0, 0.5, 0.25]}]
    image = nodes[0]  # the image shows the same mask as 0/255 for viewers without label support
    np.testing.assert_array_equal(image.data[0].compute(), growing_blob.astype(np.uint8) * 255)

    again = read_omezarr(path)
    np.testing.assert_array_equal(again.data, growing_blob.astype(np.uint8))
    assert again.spacing == (2.0, 0.5, 0.25) and again.frame_interval == 30.0 and again.has_time


def test_damaged_chunk_is_reported(tmp_path, growing_blob):
    path = _write(tmp_path / "mask.ome.zarr", growing_blob)
    chunk = next(
        p for p in (path / "labels" / "mask" / "0").rglob("*") if p.is_file() and p.name != "zarr.json"
    )
    chunk.write_bytes(b"\x00garbage")
    with pytest.raises(InputError, match="damaged chunks"):
        read_omezarr(path)


def test_failed_write_leaves_the_old_folder(tmp_path, growing_blob):
    path = _write(tmp_path / "mask.ome.zarr", growing_blob)
    with pytest.raises(InputError, match="already exists"):
        _write(path, growing_blob)

    def broken():
        yield growing_blob[0]
        raise RuntimeError("decoder failed")

    with (
        pytest.raises(RuntimeError),
        omezarr_writer(path, growing_blob.shape, spacing=(1, 1, 1), frame_interval=1, overwrite=True) as add,
    ):
        for frame in broken():
            add(frame)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mask.ome.zarr"]
    assert read_omezarr(path).spacing == (2.0, 0.5, 0.25)
    _write(path, growing_blob[:2], overwrite=True)
    assert read_omezarr(path).data.shape[0] == 2


def test_generate_writes_omezarr_only(tmp_path):
    out = tmp_path / "gen"
    main(
        [
            "generate",
            "ckpt=plat",
            "n=1",
            "frames=2",
            "resolution=32",
            "formats=[omezarr]",
            "progress=false",
            f"out={out}",
        ]
    )
    cell = out / "gen_000"
    assert not (cell / "mask.tif").exists() and not (cell / "mesh").exists()
    nodes = list(Reader(parse_url(cell / "mask.ome.zarr"))())
    (label,) = [n for n in nodes if n.load(Label)]
    data = label.data[0].compute()
    assert data.shape == (2, 32, 32, 32) and set(np.unique(data)) == {0, 1}
    record = json.loads((cell / "cell.json").read_text())
    scale = label.metadata["coordinateTransformations"][0][0]["scale"]
    assert scale == pytest.approx([record["frame_interval_s"], *record["spacing_um"]])


def test_prepare_reads_an_omezarr_label_image_one_cell_per_label(tmp_path, capsys):
    from helpers import blob

    from cellsdf.dataset.prepared import read_prepared

    shape = (20, 30, 60)
    labels = np.zeros((2, *shape), np.uint16)
    for t in range(2):
        labels[t][blob(shape, centre=(10, 15, 15 + t), radii=(5, 6, 6))] = 4
        labels[t][blob(shape, centre=(10, 15, 42), radii=(5, 7, 6))] = 11
    scale = {"t": 60.0, "z": 1.0, "y": 0.25, "x": 0.25}
    units = {"t": "second", "z": "micrometer", "y": "micrometer", "x": "micrometer"}
    root = _image_with_labels(tmp_path / "nuclei.ome.zarr", labels, scale=scale, units=units)
    main(["prepare", f"input={root}", f"out={tmp_path / 'd.h5'}", "points_per_frame=64", "eval_size=16"])
    assert "found 2 cells" in capsys.readouterr().out
    data = read_prepared(tmp_path / "d.h5")
    assert [s.name for s in data.sequences] == ["nuclei_label4", "nuclei_label11"]
    assert data.sequences[0].spacing == pytest.approx((1.0, 0.25, 0.25))
    assert data.sequences[0].frame_interval == pytest.approx(60.0)
    # Without physical sizes: one line that names the file and the option.
    bare = _image_with_labels(tmp_path / "bare.zarr", labels)
    with pytest.raises(SystemExit) as exit_info:
        main(["prepare", f"input={bare}", f"out={tmp_path / 'e.h5'}"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "bare.zarr" in err[0] and "spacing=" in err[0]
    main(["prepare", f"input={bare}", f"out={tmp_path / 'e.h5'}", "spacing=[1,0.5,0.5]", "eval_size=16"])
    assert read_prepared(tmp_path / "e.h5").sequences[0].spacing == (1.0, 0.5, 0.5)
