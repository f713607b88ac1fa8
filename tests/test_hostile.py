"""Files from others are input like options: hostile fixtures, each built here, each refused with one line.

Each case is a file someone could hand over (a checkpoint, a dataset, an image). None may run code, touch a
file outside the command's output, or allocate what its content does not justify.
"""

import os
import shutil
import subprocess
import sys
import zipfile

import h5py
import numpy as np
import pytest
import tifffile
import torch
import zarr

from cellsdf.cli import main
from cellsdf.dataset.prepared import read_index
from cellsdf.io.omezarr import omezarr_writer
from cellsdf.io.tiff import read_timelapse
from cellsdf.model.checkpoint import resolve_checkpoint

SMALL_TRAIN = [
    "progress=false",
    "cellline=plat",
    "data.simulate.sequences=2",
    "data.simulate.frames=3",
    "data.simulate.size=24",
    "data.prepare.points_per_frame=512",
    "data.prepare.eval_size=16",
    "data.loader.batch_size=4",
    "data.loader.points_per_item=128",
    "model.decoder.widths=[32,32]",
    "model.decoder.latent_size=8",
    "model.decoder.inject=[1]",
]


def test_a_resumed_checkpoint_cannot_delete_a_file_outside_the_run(tmp_path, capsys):
    out = tmp_path / "run"
    main(["train", f"out={out}", *SMALL_TRAIN, "trainer.max_epochs=1"])
    precious = tmp_path / "precious.txt"
    precious.write_text("mine")
    crafted = tmp_path / "crafted.ckpt"
    checkpoint = torch.load(out / "checkpoints" / "last.ckpt", weights_only=True)
    outside = str(out / "checkpoints" / ".." / ".." / "precious.txt")
    for state in checkpoint["callbacks"].values():
        state.update(best_model_path=outside, kth_best_model_path=outside, last_model_path=outside)
        if "best_k_models" in state:
            state["best_k_models"] = {outside: torch.tensor(0.0)}
    torch.save(checkpoint, crafted)
    main(["train", f"out={out}", f"ckpt_path={crafted}", *SMALL_TRAIN, "trainer.max_epochs=3"])
    assert precious.read_text() == "mine"
    assert "dropped callback paths outside the run's folder" in capsys.readouterr().err
    assert (out / "model.pt").is_file()


def crafted_model(tmp_path, name, change):
    """The shipped plat model with ``change(checkpoint)`` applied, saved as ``name``."""
    checkpoint = torch.load(resolve_checkpoint("plat"), weights_only=True)
    change(checkpoint)
    torch.save(checkpoint, tmp_path / name)
    return tmp_path / name


def refused(capsys, args):
    """Run a command that must refuse: return its one line on stderr."""
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    err = capsys.readouterr().err.strip()
    assert exit_info.value.code == 2 and len(err.splitlines()) == 1, err
    return err


def _dataset(key, value):
    return lambda c: c["hyper_parameters"]["dataset"].__setitem__(key, value)


def _recipe(part, key, value):
    return lambda c: c["hyper_parameters"]["dataset"]["recipe"][part].__setitem__(key, value)


def _hparam(key, value):
    return lambda c: c["hyper_parameters"].__setitem__(key, value)


def _sampler(value):
    return lambda c: c.__setitem__("sampler", value)


@pytest.mark.parametrize(
    ("command", "change", "says"),
    [
        (
            "generate",
            _dataset("frame_interval", [float("nan")] * 33),
            "dataset.frame_interval[0]: must be a finite",
        ),
        ("generate", _dataset("scale", float("inf")), "dataset.scale: must be a finite number"),
        ("generate", _dataset("frames", [0] * 33), "dataset.frames[0]: must be an integer >= 1"),
        (
            "reconstruct",
            _recipe("prepare", "points_per_frame", 400_000_000),
            "prepare.points_per_frame: 400000000 points per frame would need",
        ),
        (
            "reconstruct",
            _recipe("prepare", "eval_size", 3000),
            "dataset.recipe.prepare.eval_size: 3000³ needs about",
        ),
        ("reconstruct", _recipe("simulate", "frames", -1), "dataset.recipe.simulate.frames: must be"),
        ("generate", _hparam("clamp", -1.0), "hyper_parameters.clamp: must be a number > 0"),
        ("generate", _hparam("latent_std", float("nan")), "hyper_parameters.latent_std: must be a finite"),
        ("generate", _sampler({"name": "bogus"}), "bogus"),
        ("generate", _sampler({"name": "around", "std": -5}), "std"),
        ("generate", _sampler(["around"]), "sampler"),
    ],
)
def test_settings_read_from_a_model_file_pass_the_option_rules(tmp_path, capsys, command, change, says):
    model = crafted_model(tmp_path, "model.pt", change)
    out = tmp_path / "out"
    line = refused(capsys, [command, f"ckpt={model}", f"out={out}", "progress=false"])
    assert line.startswith(f"cellsdf {command}: error: {model}: ") and says in line, line
    assert not out.exists()


def run_measured(args):
    """Run the command line in a fresh process; return its exit code, stderr and peak resident MiB."""
    code = (
        "import sys\n"
        "from cellsdf.cli import main\n"
        "try:\n"
        "    main(sys.argv[1:])\n"
        "except SystemExit as exit_:\n"
        "    code = exit_.code or 0\n"
        "else:\n"
        "    code = 0\n"
        # VmHWM is this process's own peak; ru_maxrss would carry the test runner's over from the fork.
        "peak = [line.split()[1] for line in open('/proc/self/status') if line.startswith('VmHWM')][0]\n"
        "print(int(peak) / 1024)\n"
        "sys.exit(code)\n"
    )
    done = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True)
    return done.returncode, done.stderr.strip(), float(done.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def masks(tmp_path_factory):
    folder = tmp_path_factory.mktemp("hostile") / "sim"
    main(
        ["simulate", "cellline=plat", "sequences=2", "frames=2", "size=24", f"out={folder}", "progress=false"]
    )
    return folder


@pytest.mark.parametrize(
    ("option", "says"),
    [
        ("points_per_frame=400000000", "points_per_frame: 400000000 points per frame would need"),
        ("eval_size=3000", "eval_size: 3000³ needs about"),
    ],
)
def test_sizes_that_would_not_fit_are_refused_before_anything_is_allocated(masks, tmp_path, option, says):
    out = tmp_path / "d.h5"
    code, err, peak_mib = run_measured(["prepare", f"input={masks}", f"out={out}", option, "progress=false"])
    assert code == 2 and says in err.splitlines()[-1] and not out.exists()
    assert peak_mib < 1024, peak_mib


def test_a_compressed_checkpoint_is_refused_before_it_inflates(tmp_path, capsys):
    # torch stores its archive's entries uncompressed; 180 kB of deflated zeros would inflate to 191 MiB.
    torch.save({"state_dict": {"w": torch.zeros(50_000_000)}}, tmp_path / "plain.pt")
    bomb = tmp_path / "bomb.pt"
    with (
        zipfile.ZipFile(tmp_path / "plain.pt") as plain,
        zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as out,
    ):
        for entry in plain.infolist():
            out.writestr(entry.filename, plain.read(entry.filename))
    assert bomb.stat().st_size < 1_000_000
    code, err, peak_mib = run_measured(
        ["generate", f"ckpt={bomb}", f"out={tmp_path / 'g'}", "progress=false"]
    )
    assert code == 2 and "entries are compressed (191 MiB once inflated" in err
    assert peak_mib < 1024


@pytest.fixture(scope="module")
def prepared(masks, tmp_path_factory):
    out = tmp_path_factory.mktemp("prepared") / "cells.h5"
    main(["prepare", f"input={masks}", f"out={out}", "points_per_frame=256", "eval_size=8", "progress=false"])
    return out


def _frame_t_from(make):
    """Replace the prepared file's ``frame_t`` by what ``make(file, shape, dtype)`` creates."""

    def change(f):
        shape, dtype = f["frame_t"].shape, f["frame_t"].dtype
        del f["frame_t"]
        make(f, shape, dtype)

    return change


def _virtual(f, shape, dtype):
    layout = h5py.VirtualLayout(shape=shape, dtype=dtype)
    layout[:] = h5py.VirtualSource("missing.h5", "frame_t", shape=shape)
    f.create_virtual_dataset("frame_t", layout, fillvalue=0)


@pytest.mark.parametrize(
    ("change", "says"),
    [
        (
            lambda f: f.__setitem__("extra", h5py.ExternalLink("/etc/passwd", "/")),
            "/extra is a link to another file",
        ),
        (
            _frame_t_from(
                lambda f, s, d: f.create_dataset("frame_t", s, d, external=[("/etc/passwd", 0, 8 * s[0])])
            ),
            "/frame_t stores its values in other files (/etc/passwd)",
        ),
        (_frame_t_from(_virtual), "/frame_t is a virtual dataset"),
        (
            lambda f: f.create_dataset("bomb", (2**30,), "u1", chunks=(2**30,)),
            "/bomb declares chunks of 1,024 MiB",
        ),
    ],
)
def test_hdf5_that_reads_other_files_or_declares_huge_chunks_is_refused(prepared, tmp_path, change, says):
    crafted = tmp_path / "crafted.h5"
    shutil.copy(prepared, crafted)
    with h5py.File(crafted, "a") as f:
        change(f)
    assert crafted.stat().st_size < 2**20
    out = tmp_path / "run"
    code, err, peak_mib = run_measured(["train", f"data.path={crafted}", f"out={out}", "progress=false"])
    assert code == 2 and len(err.splitlines()) == 1 and err.startswith(f"cellsdf train: error: {crafted}: ")
    assert says in err and peak_mib < 1024
    assert not out.exists()


def test_negative_labels_are_refused_naming_the_file(tmp_path, capsys):
    labels = np.zeros((2, 16, 16, 16), np.int16)
    labels[:, 4:10, 4:10, 4:10] = -3
    labels[:, 11:15, 11:15, 11:15] = 2
    tifffile.imwrite(tmp_path / "neg.tif", labels, imagej=True, metadata={"axes": "TZYX"})
    line = refused(
        capsys, ["prepare", f"input={tmp_path / 'neg.tif'}", f"out={tmp_path / 'd.h5'}", "progress=false"]
    )
    says = "holds negative labels (down to -3); 0 is background, cells > 0"
    assert line == f"cellsdf prepare: error: {tmp_path / 'neg.tif'}: {says}"


def test_a_file_name_that_is_not_utf8_is_prepared_and_recorded_readably(masks, tmp_path):
    folder = os.fsencode(tmp_path) + b"/bad\xff"
    os.mkdir(folder)
    shutil.copy(masks / "plat_000.tif", os.fsdecode(folder + b"/cell.tif"))
    out = tmp_path / "d.h5"
    # Hydra reads only ASCII unquoted; quoted, as its error advises, the name reaches prepare intact.
    argv = [
        b"prepare",
        b"input='" + folder + b"/cell.tif'",
        f"out={out}".encode(),
        b"points_per_frame=64",
        b"eval_size=8",
    ]
    done = subprocess.run(
        [sys.executable.encode(), b"-m", b"cellsdf.cli", *argv, b"progress=false"], capture_output=True
    )
    assert done.returncode == 0, done.stderr
    with h5py.File(out) as f:
        assert f["sequences/source"].asstr()[0].endswith("bad\\xff/cell.tif")


def test_overwrite_through_a_linked_out_never_deletes_a_users_file(tmp_path, capsys):
    real, link = tmp_path / "real", tmp_path / "link"
    args = ["generate", "ckpt=plat", "n=1", "frames=2", "resolution=16", "progress=false"]
    main([*args, f"out={real}", "formats=[tiff,mesh,sdf,omezarr]"])
    link.symlink_to(real, target_is_directory=True)
    notes = real / "gen_000" / "notes.txt"
    notes.write_text("mine")
    line = refused(capsys, [*args, f"out={link}", "overwrite=true"])
    assert "gen_000: holds files generate did not write (notes.txt)" in line and notes.read_text() == "mine"
    notes.unlink()
    main([*args, f"out={link}", "overwrite=true", "formats=[tiff,mesh,sdf,omezarr]"])  # its own files may go
    assert (real / "gen_000" / "mask.tif").is_file()


@pytest.fixture
def store(tmp_path):
    """A valid OME-Zarr label image of 2 frames, written by cellsdf."""
    masks = np.zeros((2, 16, 16, 16), bool)
    masks[:, 4:12, 4:12, 4:12] = True
    path = tmp_path / "cells.ome.zarr"
    with omezarr_writer(path, masks.shape, spacing=(1.0, 1.0, 1.0), frame_interval=60.0) as add:
        for mask in masks:
            add(mask)
    return path


def _set_ome(group, change):
    attrs = dict(group.attrs["ome"])
    change(attrs)
    group.attrs["ome"] = attrs


@pytest.mark.parametrize(
    ("change", "says"),
    [
        (
            lambda root: _set_ome(
                zarr.open_group(root / "labels", mode="r+"), lambda a: a.update(labels=["/srv/x.zarr"])
            ),
            "the metadata names '/srv/x.zarr', outside this OME-Zarr",
        ),
        (
            lambda root: _set_ome(
                zarr.open_group(root / "labels" / "mask", mode="r+"),
                lambda a: a["multiscales"][0]["datasets"][0].update(path="../../../other"),
            ),
            "the metadata names '../../../other', outside this OME-Zarr",
        ),
        (
            lambda root: zarr.open_group(root / "labels" / "mask", mode="r+").create_array(
                "0", shape=(1, 1024, 1024, 1024), chunks=(1, 1024, 1024, 1024), dtype="u1", overwrite=True
            ),
            "declares chunks of 1,024 MiB",
        ),
    ],
)
def test_omezarr_metadata_cannot_point_elsewhere_nor_declare_huge_chunks(store, tmp_path, change, says):
    change(store)
    out = tmp_path / "d.h5"
    code, err, peak_mib = run_measured(["prepare", f"input={store}", f"out={out}", "progress=false"])
    assert code == 2 and len(err.splitlines()) == 1 and says in err, err
    assert peak_mib < 1024 and not out.exists()


@pytest.fixture
def moving_cell():
    """A cell that moves along y over 3 frames of 32 slices: (T, Z, Y, X) uint8."""
    frames = np.zeros((3, 32, 24, 24), np.uint8)
    for t in range(3):
        frames[t, 8:20, 6 + t : 14 + t, 6:14] = 255
    return frames


def test_an_ome_tiff_stored_ztyx_is_read_in_its_own_order(moving_cell, tmp_path, capsys):
    path = tmp_path / "ztyx.ome.tif"
    sizes = {"PhysicalSizeZ": 1.0, "PhysicalSizeY": 0.2, "PhysicalSizeX": 0.2}
    tifffile.imwrite(path, moving_cell.transpose(1, 0, 2, 3), ome=True, metadata={"axes": "ZTYX", **sizes})
    stack = read_timelapse(path)
    assert stack.data.shape == (3, 32, 24, 24) and (stack.data == moving_cell).all()
    out = tmp_path / "d.h5"
    main(["prepare", f"input={path}", f"out={out}", "points_per_frame=64", "eval_size=8", "progress=false"])
    assert "(axes ZTYX, voxel 1 x 0.2 x 0.2 µm)" in capsys.readouterr().out
    assert len(read_index(out).frame_t) == 3  # 3 frames, not 32


def test_axes_override_what_an_imagej_file_says(moving_cell, tmp_path, capsys):
    # Stored slice-first (Z, T, Y, X) but tagged ZCYX, as public files often are: read as TZYX by default.
    path = tmp_path / "zcyx.tif"
    stored = moving_cell.transpose(1, 0, 2, 3).copy()
    stored[:, :, 6:14, 6:14] = 255  # every slice holds the cell, so the misread file is still usable
    tifffile.imwrite(path, stored, imagej=True, metadata={"axes": "ZCYX"})
    out = tmp_path / "d.h5"
    args = ["prepare", f"input={path}", f"out={out}", "points_per_frame=64", "eval_size=8", "border=keep"]
    main([*args, "progress=false"])
    assert "axes TZYX assumed (the file says ZCYX)" in capsys.readouterr().out
    assert len(read_index(out).frame_t) == 32  # slices taken for frames
    main([*args, "axes=ZTYX", "overwrite=true", "progress=false"])
    assert "(axes ZTYX, voxel not stated)" in capsys.readouterr().out and len(read_index(out).frame_t) == 3
    line = refused(capsys, [*args, "axes=TZY", "overwrite=true", "progress=false"])
    assert "axes: must name each of T, Z, Y, X (or Z, Y, X) once" in line
