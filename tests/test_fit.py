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
from cellsdf.model.fitting import fit_codes
from cellsdf.model.trained import load_trained
from cellsdf.reconstruct.outputs import OutputOptions, SequenceCode
from cellsdf.reconstruct.score import write_and_score

FIT = ["iterations=200", "points_per_step=2048", "resolution=32", "prepare.points_per_frame=4096"]
FIT += ["prepare.eval_size=32", "progress=false"]
FIXED = [*FIT, "scale=fixed"]  # today's behaviour: the data at the model's scale, cells at its size


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


def one_sequence(data, index):
    """Sequence ``index`` of a prepared dataset as fit_codes takes it: (N, 4) points, (N,) sdf and indices."""
    rows = data.frame_sequence == index
    xyz, sdf = torch.from_numpy(data.points[rows]), torch.from_numpy(data.sdf[rows])
    t = torch.from_numpy(data.frame_t[rows])[:, None, None].expand(-1, xyz.shape[1], 1)
    points = torch.cat([xyz, t], dim=-1).reshape(-1, 4)
    return points, sdf.reshape(-1), torch.zeros(len(points), dtype=torch.int64)


def test_fit_of_a_held_out_sequence_beats_a_random_code(model, held_out, tmp_path):
    out = tmp_path / "fit"
    main(["fit", f"ckpt={model}", f"input={held_out}", f"out={out}", *FIXED])
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
    assert latents["scales"].tolist() == [1.0] and latents["translations"].tolist() == [[0.0, 0.0, 0.0]]
    assert latents["losses"].shape == (1, 200)
    assert latents["losses"][0, -20:].mean() < latents["losses"][0, :20].mean()
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["command"] == "fit" and manifest["latents"] == "latents.npz"
    assert manifest["items"][0]["fitted_scale"] == pytest.approx(1.0)
    assert (out / "plat_002" / "mask.tif").is_file() and (out / "plat_002" / "mesh" / "t003.ply").is_file()


def test_fit_recovers_a_known_rotation(model):
    autodecoder = load_autodecoder(model)
    data = read_prepared(autodecoder.hparams.dataset["path"])
    # Sequence 0 is an elongated blob: principal radii about 2.3, 2.8 and 3.7 voxels.
    points, sdf, sequence = one_sequence(data, 0)
    axis = torch.tensor([1.0, 2.0, 3.0])
    q = axis_angle_matrix(axis / axis.norm() * math.radians(25.0))
    # The data are the training cell turned by Q: the sample at Q·x has the value the cell has at x.
    points = torch.cat([points[:, :3] @ q.T, points[:, 3:]], dim=1)
    before = {k: v.clone() for k, v in autodecoder.decoder.state_dict().items()}
    fitted = fit_codes(
        autodecoder.decoder, points, sdf, sequence, seeds=[0], iterations=200, points_per_step=2048
    )
    vector, losses = fitted.rotations[0], fitted.losses[0]
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
    args = one_sequence(data, 1)
    settings = {"iterations": 5, "points_per_step": 256, "rotation": False}
    first = fit_codes(autodecoder.decoder, *args, seeds=[3], **settings)
    again = fit_codes(autodecoder.decoder, *args, seeds=[3], **settings)
    other = fit_codes(autodecoder.decoder, *args, seeds=[4], **settings)
    assert torch.equal(first.rotations, torch.zeros(1, 3))
    assert torch.equal(first.scales, torch.ones(1)) and torch.equal(first.translations, torch.zeros(1, 3))
    assert torch.equal(first.latents, again.latents) and np.array_equal(first.losses, again.losses)
    assert not torch.equal(first.latents, other.latents)
    with pytest.raises(ValueError, match="expected points"):
        fit_codes(autodecoder.decoder, args[0], args[1][:2], args[2], seeds=[0])


def test_each_sequence_fits_as_it_would_alone(model):
    """Batching sequences changes nothing for each: its seed, samples and gradient are its own."""
    autodecoder = load_autodecoder(model)
    data = read_prepared(autodecoder.hparams.dataset["path"])
    (p0, s0, i0), (p1, s1, _) = one_sequence(data, 0), one_sequence(data, 1)
    both = (torch.cat([p0, p1]), torch.cat([s0, s1]), torch.cat([i0, i0 + 1]))
    settings = {"iterations": 5, "points_per_step": 256, "placement": True}
    together = fit_codes(autodecoder.decoder, *both, seeds=[3, 4], **settings)
    alone = fit_codes(autodecoder.decoder, p1, s1, i0, seeds=[4], **settings)
    for name in ("latents", "rotations", "scales", "translations"):
        assert torch.allclose(getattr(together, name)[1], getattr(alone, name)[0], atol=1e-5), name
    assert together.losses.shape == (2, 5)
    assert np.allclose(together.losses[1], alone.losses[0], atol=1e-5)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_fit_runs_on_the_decoders_device(model):
    autodecoder = load_autodecoder(model).to("cuda")
    data = read_prepared(autodecoder.hparams.dataset["path"])
    args = one_sequence(data, 0)
    fitted = fit_codes(
        autodecoder.decoder, *args, seeds=[0], iterations=50, points_per_step=1024, placement=True
    )
    losses = fitted.losses[0]
    assert (
        fitted.latents.device.type == "cpu"
        and fitted.scales.device.type == "cpu"
        and np.isfinite(losses).all()
    )
    assert losses[-10:].mean() < losses[:10].mean()
    assert all(p.device.type == "cuda" and p.requires_grad for p in autodecoder.decoder.parameters())


def test_fixed_scale_refuses_data_in_other_units_and_missing_input(model, held_out, tmp_path, capsys):
    own_scale = tmp_path / "own.h5"
    main(["prepare", f"input={held_out}", f"out={own_scale}", "points_per_frame=256", "eval_size=16"])
    capsys.readouterr()  # prepare's progress lines; the refusal below is one line of its own
    with pytest.raises(SystemExit) as exit_info:
        main(["fit", f"ckpt={model}", f"input={own_scale}", f"out={tmp_path / 'a'}", *FIXED])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"error: {own_scale}: was prepared at" in err
    with pytest.raises(SystemExit) as exit_info:
        main(["fit", f"ckpt={model}", f"input={tmp_path / 'nothing.tif'}", f"out={tmp_path / 'b'}", *FIXED])
    assert exit_info.value.code == 2
    assert f"error: {tmp_path / 'nothing.tif'}: not found" in capsys.readouterr().err
    # The same cells at three times the voxel size are too large for the model's [-1, 1]³.
    large = tmp_path / "large"
    main(["simulate", f"out={large}", "sequences=1", "frames=2", "size=32", "spacing=[2.4,2.4,2.4]"])
    with pytest.raises(SystemExit) as exit_info:
        main(["fit", f"ckpt={model}", f"input={large}", f"out={tmp_path / 'c'}", *FIXED])
    assert exit_info.value.code == 2
    assert f"error: {large / 'plat_000.tif'}: at the given scale" in capsys.readouterr().err
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()
    assert not (tmp_path / "c" / "dataset.h5").exists()


def test_fit_in_the_datas_own_units_keeps_the_cells_size(model, held_out, tmp_path):
    out = tmp_path / "fit"
    main(["fit", f"ckpt={model}", f"input={held_out}", f"out={out}", *FIT])
    data = read_prepared(out / "dataset.h5")
    scale = load_autodecoder(model).hparams.dataset["scale"]
    assert data.scale != pytest.approx(scale)  # the data fitted into the cube, not at the model's scale
    item = json.loads((out / "manifest.json").read_text())["items"][0]
    # The held-out cell comes from the model's own line at its own voxel size: it keeps the trained size.
    assert item["fitted_scale"] == pytest.approx(1.0, abs=0.2)
    assert item["scale"] == pytest.approx(item["fitted_scale"] * data.scale / scale)
    latents = np.load(out / "latents.npz")
    assert latents["scales"].tolist() == pytest.approx([item["scale"]])
    assert latents["translations"].shape == (1, 3) and np.abs(latents["translations"]).max() < 0.3
    assert json.loads((out / "metrics.json").read_text())["mean"]["iou"] > 0.6


@pytest.mark.parametrize(
    ("option", "problem"),
    [
        ("scale=free", "scale: choose one of fit, fixed, got 'free'"),
        ("scale_prior=-1", "scale_prior: must be a number >= 0, got -1"),
        ("scale_prior=nan", "scale_prior: must be a finite number, got nan"),
    ],
)
def test_fit_refuses_bad_scale_options(option, problem, held_out, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["fit", "ckpt=plat", f"input={held_out}", f"out={tmp_path / 'out'}", option, "progress=false"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"error: {problem}" in err
    assert not (tmp_path / "out").exists()
