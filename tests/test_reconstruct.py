import json

import numpy as np
import pytest
import torch
import trimesh
from helpers import SMALL_TRAIN

from cellsdf.cli import main
from cellsdf.dataset.prepared import read_eval_masks, read_prepared
from cellsdf.geometry.overlap import iou
from cellsdf.io.hashing import file_sha256
from cellsdf.io.tiff import read_timelapse


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    run = tmp_path_factory.mktemp("run")
    main(["train", f"out={run}", *SMALL_TRAIN])
    return run / "model.pt"


def reconstruct(model, out, *args):
    main(["reconstruct", f"ckpt={model}", f"out={out}", "progress=false", *args])
    return json.loads((out / "metrics.json").read_text())


def test_reconstruct_writes_timelapses_meshes_and_scores(model, tmp_path):
    out = tmp_path / "rec"
    metrics = reconstruct(model, out, "resolution=24")
    data = read_prepared(model.parent / "dataset.h5")
    voxel = 2.0 / 23 / data.scale
    for name in ("plat_000", "plat_001"):
        stack = read_timelapse(out / name / "mask.tif")
        assert stack.data.shape == (4, 24, 24, 24) and stack.data.dtype == np.uint8
        assert set(np.unique(stack.data)) == {0, 255}
        assert stack.spacing == pytest.approx((voxel,) * 3)
        # The simulated line's life course (29 intervals of 60 s) over the 4 simulated frames.
        assert stack.frame_interval == pytest.approx(580.0)
        for k in range(4):
            mesh = trimesh.load(out / name / "mesh" / f"t{k:03d}.ply")
            assert mesh.is_watertight and mesh.volume > 0  # outward normals after the (x, y, z) flip
            volume = np.count_nonzero(stack.data[k]) * voxel**3
            assert mesh.volume == pytest.approx(volume, rel=0.15)
            # The file is in (x, y, z) µm, the mask in (z, y, x) voxels: both put the cell in the same place.
            centre = np.argwhere(stack.data[k]).mean(axis=0) * voxel
            np.testing.assert_allclose(mesh.center_mass[::-1], centre, atol=0.5 * voxel)
        frames = metrics["sequences"][name]["frames"]
        assert [f["frame"] for f in frames] == [0, 1, 2, 3]
        assert all(f["iou"] > 0.5 and f["dice"] > 0.6 and 0 < f["chamfer"] < f["hausdorff95"] for f in frames)
    assert metrics["mean"]["iou"] > 0.5
    assert metrics["scored_on"]["grid"] == 32 and "evaluation grid" in metrics["scored_on"]["note"]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["command"] == "reconstruct"
    assert manifest["checkpoint_sha256"] == file_sha256(model)
    assert [item["name"] for item in manifest["items"]] == ["plat_000", "plat_001"]


def test_scores_do_not_depend_on_output_resolution(model, tmp_path):
    # At the evaluation grid size the written masks are scored directly; at 24 they are decoded again at 32.
    at_32 = reconstruct(model, tmp_path / "a", "resolution=32", "formats=[tiff]")
    at_24 = reconstruct(model, tmp_path / "b", "resolution=24", "formats=[tiff]")
    for name, sequence in at_32["sequences"].items():
        for a, b in zip(sequence["frames"], at_24["sequences"][name]["frames"], strict=True):
            assert a == pytest.approx(b)
    # The written frames are the scored ones: their IoU with the evaluation masks is the reported IoU.
    data = read_prepared(model.parent / "dataset.h5")
    rows = np.flatnonzero(data.frame_sequence == 1)
    stack = read_timelapse(tmp_path / "a" / "plat_001" / "mask.tif")
    targets = read_eval_masks(model.parent / "dataset.h5", frames=rows)
    reported = [f["iou"] for f in at_32["sequences"]["plat_001"]["frames"]]
    assert [iou(s > 0, t) for s, t in zip(stack.data, targets, strict=True)] == reported
    assert not (tmp_path / "a" / "plat_001" / "mesh").exists()


def test_frames_and_sequences_choose_what_is_written(model, tmp_path):
    out = tmp_path / "rec"
    metrics = reconstruct(model, out, "frames=3", "resolution=16", "sequences=[plat_001]", "mesh_format=obj")
    assert sorted(p.name for p in out.iterdir()) == ["manifest.json", "metrics.json", "plat_001"]
    stack = read_timelapse(out / "plat_001" / "mask.tif")
    assert stack.data.shape == (3, 16, 16, 16)
    assert stack.frame_interval == pytest.approx(870.0)  # 3 frames over the life course's 1740 s
    assert sorted(p.name for p in (out / "plat_001" / "mesh").iterdir()) == [
        "t000.obj",
        "t001.obj",
        "t002.obj",
        "timelapse.glb",
        "timelapse_napari.npz",
    ]
    assert len(metrics["sequences"]["plat_001"]["frames"]) == 4  # scored at the data's 4 frame times
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["items"][0]["times"] == pytest.approx([-1.0, 0.0, 1.0])


def test_refuses_a_folder_with_files_unless_overwrite(model, tmp_path, capsys):
    out = tmp_path / "rec"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    args = ["resolution=16", "sequences=[plat_000]"]
    with pytest.raises(SystemExit) as exit_info:
        reconstruct(model, out, *args, "frames=3")
    assert exit_info.value.code == 2
    assert f"{out}: output already exists; pass overwrite=true" in capsys.readouterr().err
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]
    reconstruct(model, out, *args, "frames=3", "overwrite=true")
    reconstruct(model, out, *args, "frames=2", "overwrite=true")
    assert read_timelapse(out / "plat_000" / "mask.tif").data.shape[0] == 2
    assert sorted(p.name for p in (out / "plat_000" / "mesh").glob("t0*")) == ["t000.ply", "t001.ply"]
    assert (out / "notes.txt").read_text() == "mine"


def _truncated(model, tmp_path):
    path = tmp_path / "half.pt"
    content = model.read_bytes()
    path.write_bytes(content[: len(content) // 2])
    return path, path, "cannot read the checkpoint"


def _other_kind(model, tmp_path):
    path = tmp_path / "other.pt"
    torch.save({"weights": torch.zeros(3), "epoch": 4}, path)
    return path, path, "not a cellsdf auto-decoder checkpoint"


def _dataset_gone(model, tmp_path):
    checkpoint = torch.load(model, weights_only=True)
    # A model of the user's own data (no recipe to make them again) whose data file has moved.
    checkpoint["hyper_parameters"]["dataset"].update(path=str(tmp_path / "moved.h5"), recipe=None)
    path = tmp_path / "moved_data.pt"
    torch.save(checkpoint, path)
    return path, tmp_path / "moved.h5", "training dataset not found; pass data.path="


@pytest.mark.parametrize(
    "make",
    [
        lambda model, tmp_path: (tmp_path / "missing.pt", tmp_path / "missing.pt", "checkpoint not found"),
        _truncated,
        _other_kind,
        _dataset_gone,
    ],
    ids=["missing", "truncated", "other-kind", "dataset-gone"],
)
def test_bad_checkpoints_and_data_stop_with_one_line(model, tmp_path, capsys, make):
    ckpt, named, problem = make(model, tmp_path)
    with pytest.raises(SystemExit) as exit_info:
        reconstruct(ckpt, tmp_path / "rec")
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"cellsdf reconstruct: error: {named}: {problem}")
    assert not (tmp_path / "rec").exists()


def test_data_path_override_and_unknown_sequence(model, tmp_path, capsys):
    with pytest.raises(SystemExit):
        reconstruct(model, tmp_path / "a", f"data.path={tmp_path / 'nowhere.h5'}")
    assert f"{tmp_path / 'nowhere.h5'}: training dataset not found" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        reconstruct(model, tmp_path / "b", "sequences=[plat_007]")
    assert (
        "sequences: unknown sequence(s) plat_007; the model has plat_000, plat_001" in capsys.readouterr().err
    )


def test_decoding_uses_the_models_own_clamp(tmp_path, monkeypatch):
    run = tmp_path / "run"
    main(["train", f"out={run}", *SMALL_TRAIN, "model.clamp=0.05"])
    import cellsdf.model.trained as trained

    seen = []

    def spy(*args, **kwargs):
        seen.append(kwargs["clamp"])
        return decode(*args, **kwargs)

    decode = trained.decode_masks
    monkeypatch.setattr(trained, "decode_masks", spy)
    reconstruct(run / "model.pt", tmp_path / "rec", "resolution=24", "formats=tiff")
    assert trained.load_trained(run / "model.pt").clamp == 0.05
    assert seen and set(seen) == {0.05}  # not the default 0.1


def test_training_data_are_made_again_from_the_recipe(model, tmp_path):
    before = reconstruct(model, tmp_path / "a", "resolution=24", "formats=tiff")
    moved = tmp_path / "moved"
    moved.mkdir()
    copy = moved / "model.pt"
    copy.write_bytes(model.read_bytes())
    # The recorded dataset path stays valid for the original; hide it by pointing the record elsewhere.
    checkpoint = torch.load(copy, weights_only=True)
    checkpoint["hyper_parameters"]["dataset"]["path"] = str(tmp_path / "gone" / "dataset.h5")
    torch.save(checkpoint, copy)
    after = reconstruct(
        copy, tmp_path / "b", "resolution=24", "formats=tiff", f"data.remake_in={tmp_path / 'cache'}"
    )
    assert list((tmp_path / "cache").glob("*/dataset.h5"))
    assert after["mean"]["iou"] == pytest.approx(before["mean"]["iou"])
