"""Files with wrong values (implausible sizes, NaN, unsafe objects, damaged tables) stop with one line."""

import json
import os

import numpy as np
import pytest
import tifffile
import torch
from helpers import blob

from cellsdf.cli import main
from cellsdf.dataset.prepared import SequenceInfo, create_prepared, read_index, read_prepared, write_frame
from cellsdf.decode.volumes import TIMELAPSE_GLB, TIMELAPSE_NAPARI, write_volumes
from cellsdf.errors import InputError
from cellsdf.io.omezarr import omezarr_writer, read_omezarr
from cellsdf.io.tiff import read_header
from cellsdf.io.units import check_size
from cellsdf.model.checkpoint import read_checkpoint, resolve_checkpoint
from cellsdf.model.trained import load_trained
from cellsdf.texture.gan import export_texture_model, load_texture_model, shipped_texture_model
from cellsdf.texture.gan_module import TextureGAN


def refused(capsys, command, *args) -> str:
    """Run a command that must stop with exit code 2 and one line; return that line."""
    with pytest.raises(SystemExit) as exit_info:
        main([command, *args])
    assert exit_info.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"cellsdf {command}: error: "), lines
    return lines[0]


@pytest.mark.parametrize(
    "value, kind, factor, ok",
    [
        (0.2, "length", 1.0, True),
        (200, "length", 1e-3, True),
        (1e30, "length", 1.0, False),
        (1e-9, "length", 1.0, False),
        (3600, "time", 1.0, True),
        (1e30, "time", 1.0, False),
        (1e30, None, 1.0, True),
    ],
)
def test_check_size_keeps_to_plausible_microscopy_sizes(value, kind, factor, ok):
    if ok:
        assert check_size("a.tif", "spacing", value, kind=kind, factor=factor) == value * factor
    else:
        with pytest.raises(
            InputError, match="^a.tif: spacing in the metadata gives .* outside the plausible"
        ):
            check_size("a.tif", "spacing", value, kind=kind, factor=factor)


@pytest.mark.parametrize(
    "options, field",
    [
        ({"imagej": True, "metadata": {"axes": "ZYX", "spacing": 1e30}}, "spacing"),
        ({"imagej": True, "metadata": {"axes": "TZYX", "finterval": 1e30}}, "finterval"),
        (
            {"imagej": True, "resolution": (1e-6, 1.0), "metadata": {"axes": "ZYX", "spacing": 1.0}},
            "XResolution",
        ),
        (
            {
                "ome": True,
                "metadata": {
                    "axes": "ZYX",
                    "PhysicalSizeX": 1e30,
                    "PhysicalSizeY": 1.0,
                    "PhysicalSizeZ": 1.0,
                },
            },
            "PhysicalSizeX",
        ),
    ],
)
def test_tiffs_stating_implausible_sizes_are_refused(tmp_path, options, field):
    shape = (2, 3, 8, 8) if options["metadata"]["axes"] == "TZYX" else (3, 8, 8)
    tifffile.imwrite(tmp_path / "a.tif", np.zeros(shape, np.uint8), **options)
    with pytest.raises(InputError, match=f"{field}.*outside the plausible"):
        read_header(tmp_path / "a.tif")


def test_omezarr_stating_an_implausible_voxel_size_is_refused(tmp_path):
    path = tmp_path / "a.ome.zarr"
    with omezarr_writer(path, (1, 4, 4, 4), spacing=(1.0, 1.0, 1e9), frame_interval=1.0) as add:
        add(np.ones((4, 4, 4), bool))
    with pytest.raises(InputError, match="scale of axis x in the metadata gives 1e\\+09 µm"):
        read_omezarr(path)


def test_checkpoint_with_nan_weights_is_refused_as_broken(tmp_path, capsys):
    content = read_checkpoint(resolve_checkpoint("plat"))
    content["state_dict"]["decoder.output.weight"][0, 0] = float("nan")
    torch.save(content, tmp_path / "nan.pt")
    line = refused(capsys, "generate", f"ckpt={tmp_path / 'nan.pt'}", f"out={tmp_path / 'g'}", "n=1")
    assert f"{tmp_path / 'nan.pt'}: broken checkpoint: weights decoder.output.weight hold NaN" in line
    assert not (tmp_path / "g").exists()


class _Unsafe:
    def __reduce__(self):
        return (os.getcwd, ())


def test_checkpoint_with_objects_is_refused_as_not_plain_and_truncated_keeps_its_message(tmp_path):
    torch.save({"hyper_parameters": {"n_sequences": 1}, "state_dict": {}, "x": _Unsafe()}, tmp_path / "a.pt")
    with pytest.raises(
        InputError, match="not a plain cellsdf checkpoint: it contains objects that are not weights"
    ):
        load_trained(tmp_path / "a.pt")
    data = resolve_checkpoint("plat").read_bytes()
    (tmp_path / "b.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError, match="truncated or not a torch file"):
        load_trained(tmp_path / "b.pt")


def test_a_dataset_or_an_image_passed_as_a_model_is_named_and_no_unsafe_advice_is_given(tmp_path, capsys):
    tiny_prepared(tmp_path / "cells.h5")
    tifffile.imwrite(tmp_path / "masks.tif", np.zeros((2, 4, 4), np.uint8))
    (tmp_path / "noise.pt").write_bytes(os.urandom(200))
    for name, says in [
        ("cells.h5", "not a checkpoint: it is an HDF5 file (a prepared dataset is passed as data.path="),
        ("masks.tif", "not a checkpoint: it is a TIFF image"),
        ("noise.pt", "cannot read the checkpoint (truncated or not a torch file)"),
    ]:
        with pytest.raises(SystemExit) as exit_info:
            main(["generate", f"ckpt={tmp_path / name}", f"out={tmp_path / 'g'}", "n=1"])
        err = capsys.readouterr().err
        assert exit_info.value.code == 2 and says in err
        # torch's own message suggests weights_only=False, which would run code from the file.
        assert "weights_only" not in err and len(err.strip().splitlines()) == 1


def tiny_prepared(path, change=None):
    """A valid prepared dataset of 2 sequences (3 and 2 frames), then ``change(file)`` applied to it."""
    infos = [
        SequenceInfo("a", "test", (1.0, 1.0, 1.0), 3, 1.0, None),
        SequenceInfo("b", "t", (1.0,) * 3, 2, 1.0, 1),
    ]
    with create_prepared(
        path, 5, 16, 4, {"scale": 0.1, "margin": 0.1, "centre": "bbox", "config": "{}"}, infos
    ) as f:
        for row, (sequence, t) in enumerate([(0, -1.0), (0, 0.0), (0, 1.0), (1, -1.0), (1, 1.0)]):
            points = np.random.default_rng(row).uniform(-1, 1, (16, 3))
            write_frame(
                f, row, sequence, t, row, np.zeros(3), points, points[:, 0], np.ones((4, 4, 4), np.uint8)
            )
        if change is not None:
            change(f)
    return path


def _replace(name, data):
    def change(f):
        del f[name]
        f[name] = data

    return change


def _set(name, index, value):
    def change(f):
        f[name][index] = value

    return change


BROKEN_PREPARED = {
    "points of 2 axes": (
        _replace("points", np.zeros((5, 16, 2), np.float32)),
        r"'points' has shape \(5, 16, 2\)",
    ),
    "sdf as integers": (_replace("sdf", np.zeros((5, 16), np.int32)), "'sdf' holds int32"),
    "NaN in sdf": (_set("sdf", (2, 3), np.nan), "'sdf' holds NaN"),
    "fewer frame times": (_replace("frame_t", np.zeros(4, np.float32)), r"'frame_t' has shape \(4,\)"),
    "frame counts": (_set("sequences/frames", 0, 4), "'sequences/frames' differs"),
    "unknown sequence": (_set("frame_sequence", 4, 7), "names sequences outside 0 .. 1"),
    "huge spacing": (_set("sequences/spacing", (0, 1), 1e30), "spacing of sequence 'a'.*plausible"),
    "scale": (lambda f: f.attrs.__setitem__("scale", -1.0), "'scale' must be a positive number"),
    "missing group": (lambda f: f.__delitem__("sequences"), "no dataset 'sequences/name'"),
}


@pytest.mark.parametrize("case", BROKEN_PREPARED)
def test_prepared_dataset_with_wrong_content_is_refused(tmp_path, case):
    change, message = BROKEN_PREPARED[case]
    path = tiny_prepared(tmp_path / "d.h5", change)
    with pytest.raises(InputError, match=message):
        read_prepared(path)


def test_valid_tiny_prepared_dataset_reads(tmp_path):
    data = read_prepared(tiny_prepared(tmp_path / "d.h5"))
    assert data.points.shape == (5, 16, 3) and [s.frames for s in data.sequences] == [3, 2]
    assert read_index(tmp_path / "d.h5").eval_size == 4


@pytest.mark.parametrize(
    "command, args",
    [
        ("train", ["data.path={data}", "out={out}"]),
        ("fit", ["ckpt=plat", "input={data}", "out={out}", "scale=fit"]),
        ("reconstruct", ["ckpt=plat", "data.path={data}", "out={out}"]),
    ],
)
def test_commands_refuse_a_broken_prepared_dataset_in_one_line(tmp_path, capsys, command, args):
    data = tiny_prepared(tmp_path / "d.h5", _set("sdf", (0, 0), np.inf))
    args = [a.format(data=data, out=tmp_path / "out") for a in args]
    line = refused(capsys, command, *args, "progress=false")
    assert f"{data}: 'sdf' holds NaN or infinite values" in line


def test_texture_model_with_nan_weights_is_neither_written_nor_loaded(tmp_path):
    model = TextureGAN(ngf=4, n_downsample=1, n_blocks=1, ndf=4, n_layers_d=1, n_scales_d=1, crop=16)
    next(model.generator.parameters()).data[0] = float("nan")
    with pytest.raises(InputError, match="not written: generator weights .* NaN or infinite"):
        export_texture_model(model, tmp_path / "model.pt")
    assert not (tmp_path / "model.pt").exists()
    content = torch.load(shipped_texture_model(), weights_only=True)
    key = next(iter(content["state_dict"]))
    content["state_dict"][key].view(-1)[0] = float("inf")
    torch.save(content, tmp_path / "inf.pt")
    with pytest.raises(InputError, match=f"broken texture model: weights {key} are NaN or infinite"):
        load_texture_model(tmp_path / "inf.pt")


def test_fit_refuses_masks_with_nan_values(tmp_path, capsys):
    masks = np.stack([blob(shape=(16, 16, 16), radii=(4, 5, 5))] * 2).astype(np.float32)
    masks[1, 0, 0, 0] = np.nan
    tifffile.imwrite(tmp_path / "m.tif", masks, imagej=True, metadata={"axes": "TZYX"})
    line = refused(capsys, "fit", "ckpt=plat", f"input={tmp_path / 'm.tif'}", f"out={tmp_path / 'o'}")
    assert f"{tmp_path / 'm.tif'}: frame 1 holds NaN or infinite values" in line


def test_all_empty_frames_write_no_meshes_and_say_so(tmp_path):
    folder = tmp_path / "seq"
    (folder / "mesh").mkdir(parents=True)
    (folder / TIMELAPSE_GLB).write_bytes(b"from an earlier run")
    frames = write_volumes([np.zeros((8, 8, 8), bool)] * 2, folder, 2, 8, (1.0, 1.0, 1.0), 1.0)
    assert [f["voxels"] for f in frames] == [0, 0] and [f["mesh"] for f in frames] == [None, None]
    assert (folder / "mask.tif").is_file()
    assert not (folder / TIMELAPSE_GLB).exists() and not (folder / TIMELAPSE_NAPARI).exists()


def test_corrupt_run_record_of_a_generate_folder_is_named(tmp_path, capsys):
    out = tmp_path / "g"
    out.mkdir()
    (out / "run.json").write_text("{not json")
    line = refused(capsys, "generate", "ckpt=plat", f"out={out}", "n=1", "resolution=16", "frames=1")
    assert f"{out / 'run.json'}: unreadable run record" in line
    (out / "run.json").write_text(json.dumps([1, 2]))
    line = refused(capsys, "generate", "ckpt=plat", f"out={out}", "n=1", "resolution=16", "frames=1")
    assert f"{out / 'run.json'}: not a generate run record" in line


@pytest.fixture
def empty_model_and_masks(tmp_path):
    """The plat model shifted to decode nothing (positive everywhere), and a two-frame mask time-lapse."""
    content = read_checkpoint(resolve_checkpoint("plat"))
    content["state_dict"]["decoder.output.bias"] += 10.0
    torch.save(content, tmp_path / "empty.pt")
    masks = np.stack([blob(shape=(16, 16, 16), radii=(4, 5, 5))] * 2).astype(np.uint8)
    tifffile.imwrite(tmp_path / "m.tif", masks, imagej=True, metadata={"axes": "TZYX"})
    return [f"ckpt={tmp_path / 'empty.pt'}", f"input={tmp_path / 'm.tif'}", "iterations=2", "resolution=16"]


def test_fit_writes_an_empty_reconstruction_without_meshes(tmp_path, empty_model_and_masks):
    # At the model's own scale an empty reconstruction is a result: no meshes, the empty frames recorded.
    main(["fit", *empty_model_and_masks, f"out={tmp_path / 'b'}", "scale=fixed", "progress=false"])
    (item,) = json.loads((tmp_path / "b" / "manifest.json").read_text())["items"]
    assert item["empty_frames"] == [0, 1] and item["meshes"] == []
    assert (tmp_path / "b" / "m" / "mask.tif").is_file()


@pytest.mark.slow
def test_fit_with_scale_fit_refuses_a_model_that_decodes_nothing(tmp_path, capsys, empty_model_and_masks):
    line = refused(capsys, "fit", *empty_model_and_masks, f"out={tmp_path / 'a'}", "progress=false")
    assert "empty.pt: its learned codes decode to no cell at all" in line
