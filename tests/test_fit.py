import json
import math

import numpy as np
import pytest
import torch
from helpers import SMALL_TRAIN

from cellsdf.cli import main
from cellsdf.dataset.prepared import read_prepared
from cellsdf.geometry.rotation import axis_angle_matrix
from cellsdf.model.checkpoint import load_autodecoder
from cellsdf.model.fitting import fit_latent
from cellsdf.model.trained import load_trained
from cellsdf.reconstruct.outputs import OutputOptions, SequenceCode
from cellsdf.reconstruct.score import write_and_score

FIT = ["iterations=200", "points_per_step=2048", "resolution=32", "prepare.points_per_frame=4096"]
FIT += ["prepare.eval_size=32", "progress=false"]


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    run = tmp_path_factory.mktemp("run")
    main(["train", f"out={run}", *SMALL_TRAIN])
    return run / "model.pt"


@pytest.fixture(scope="module")
def held_out(tmp_path_factory):
    """Sequence 2 of the same simulation: the model never saw it (sequence i depends only on seed and i)."""
    folder = tmp_path_factory.mktemp("sim")
    main(["simulate", f"out={folder}", "sequences=3", "frames=4", "size=32", "progress=false"])
    return folder / "plat_002.tif"


def angle_deg(matrix: torch.Tensor) -> float:
    return math.degrees(math.acos(max(-1.0, min(1.0, (float(torch.trace(matrix)) - 1.0) / 2.0))))


def test_fit_of_a_held_out_sequence_beats_a_random_code(model, held_out, tmp_path):
    out = tmp_path / "fit"
    main(["fit", f"ckpt={model}", f"input={held_out}", f"out={out}", *FIT])
    metrics = json.loads((out / "metrics.json").read_text())
    autodecoder = load_autodecoder(model)
    data = read_prepared(out / "dataset.h5")
    assert data.scale == pytest.approx(autodecoder.hparams.dataset["scale"])  # the model's units
    assert [s.name for s in data.sequences] == ["plat_002"]
    # A code drawn as the model draws its initial ones, scored by the same function on the same data.
    generator = torch.Generator().manual_seed(0)
    random_code = torch.randn(16, generator=generator) * autodecoder.hparams.latent_std
    baseline, _ = write_and_score(
        load_trained(model),
        [SequenceCode("plat_002", 0, random_code, None)],
        out / "dataset.h5",
        tmp_path / "random",
        OutputOptions(resolution=32, formats=("tiff",)),
    )
    assert metrics["mean"]["iou"] > 0.6
    assert metrics["mean"]["iou"] > baseline["mean"]["iou"] + 0.07
    latents = np.load(out / "latents.npz")
    assert list(latents["names"]) == ["plat_002"]
    assert latents["latents"].shape == (1, 16) and latents["rotations"].shape == (1, 3)
    assert latents["losses"].shape == (1, 200)
    assert latents["losses"][0, -20:].mean() < latents["losses"][0, :20].mean()
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["command"] == "fit" and manifest["latents"] == "latents.npz"
    assert (out / "plat_002" / "mask.tif").is_file() and (out / "plat_002" / "mesh" / "t003.ply").is_file()


def test_fit_recovers_a_known_rotation(model):
    autodecoder = load_autodecoder(model)
    data = read_prepared(autodecoder.hparams.dataset["path"])
    rows = data.frame_sequence == 0  # an elongated blob: principal radii about 2.3, 2.8 and 3.7 voxels
    axis = torch.tensor([1.0, 2.0, 3.0])
    q = axis_angle_matrix(axis / axis.norm() * math.radians(25.0))
    # The data are the training cell turned by Q: the sample at Q·x has the value the cell has at x.
    xyz = torch.from_numpy(data.points[rows]) @ q.T
    t, sdf = torch.from_numpy(data.frame_t[rows]), torch.from_numpy(data.sdf[rows])
    before = {k: v.clone() for k, v in autodecoder.decoder.state_dict().items()}
    _, vector, losses = fit_latent(autodecoder.decoder, xyz, t, sdf, iterations=200, points_per_step=2048)
    # The model evaluates f(R·y); it learned f(R0·x) for this cell, so R·Q should equal R0.
    trained = axis_angle_matrix(autodecoder.rotations.weight[0].detach())
    assert angle_deg(axis_angle_matrix(vector) @ q @ trained.T) < 8.0
    assert 15.0 < math.degrees(float(vector.norm())) < 35.0
    assert losses[-1] < 0.02
    for key, value in autodecoder.decoder.state_dict().items():
        assert torch.equal(value, before[key])
    assert all(p.requires_grad for p in autodecoder.decoder.parameters())


def test_fit_without_rotation_and_repeatability(model):
    autodecoder = load_autodecoder(model)
    data = read_prepared(autodecoder.hparams.dataset["path"])
    rows = data.frame_sequence == 1
    args = [torch.from_numpy(a[rows]) for a in (data.points, data.frame_t, data.sdf)]
    first = fit_latent(autodecoder.decoder, *args, iterations=5, points_per_step=256, rotation=False, seed=3)
    again = fit_latent(autodecoder.decoder, *args, iterations=5, points_per_step=256, rotation=False, seed=3)
    other = fit_latent(autodecoder.decoder, *args, iterations=5, points_per_step=256, rotation=False, seed=4)
    assert torch.equal(first[1], torch.zeros(3))
    assert torch.equal(first[0], again[0]) and np.array_equal(first[2], again[2])
    assert not torch.equal(first[0], other[0])
    with pytest.raises(ValueError, match="expected xyz"):
        fit_latent(autodecoder.decoder, args[0], args[1][:2], args[2])


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_fit_runs_on_the_decoders_device(model):
    autodecoder = load_autodecoder(model).to("cuda")
    data = read_prepared(autodecoder.hparams.dataset["path"])
    rows = data.frame_sequence == 0
    args = [torch.from_numpy(a[rows]) for a in (data.points, data.frame_t, data.sdf)]
    latent, vector, losses = fit_latent(autodecoder.decoder, *args, iterations=50, points_per_step=1024)
    assert latent.device.type == "cpu" and vector.shape == (3,) and np.isfinite(losses).all()
    assert losses[-10:].mean() < losses[:10].mean()
    assert all(p.device.type == "cuda" and p.requires_grad for p in autodecoder.decoder.parameters())


def test_fit_refuses_data_in_other_units_and_missing_input(model, held_out, tmp_path, capsys):
    own_scale = tmp_path / "own.h5"
    main(["prepare", f"input={held_out}", f"out={own_scale}", "points_per_frame=256", "eval_size=16"])
    with pytest.raises(SystemExit) as exit_info:
        main(["fit", f"ckpt={model}", f"input={own_scale}", f"out={tmp_path / 'a'}", *FIT])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"error: {own_scale}: was prepared at" in err
    with pytest.raises(SystemExit) as exit_info:
        main(["fit", f"ckpt={model}", f"input={tmp_path / 'nothing.tif'}", f"out={tmp_path / 'b'}", *FIT])
    assert exit_info.value.code == 2
    assert f"error: {tmp_path / 'nothing.tif'}: not found" in capsys.readouterr().err
    # The same cells at three times the voxel size are too large for the model's [-1, 1]³.
    large = tmp_path / "large"
    main(["simulate", f"out={large}", "sequences=1", "frames=2", "size=32", "spacing=[2.4,2.4,2.4]"])
    with pytest.raises(SystemExit) as exit_info:
        main(["fit", f"ckpt={model}", f"input={large}", f"out={tmp_path / 'c'}", *FIT])
    assert exit_info.value.code == 2
    assert f"error: {large / 'plat_000.tif'}: at the given scale" in capsys.readouterr().err
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()
    assert not (tmp_path / "c" / "dataset.h5").exists()
