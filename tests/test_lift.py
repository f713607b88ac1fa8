import json

import numpy as np
import pytest
import tifffile
import torch

from cellsdf.cli import main
from cellsdf.evaluate.reconstruction import overlap
from cellsdf.lift.baselines import ellipsoid_baseline, extrusion_baseline
from cellsdf.lift.evaluation import EvalSettings, truth_cell
from cellsdf.lift.field import FieldOptions, FreeField, fit_field
from cellsdf.lift.latent import FitOptions, fit_hypotheses
from cellsdf.lift.metrics import lift_metrics, roughness, surface_voxels
from cellsdf.lift.render import PlacedDecoder, decode_view, project_volume, visual_hull
from cellsdf.lift.views import View, rotation_from_degrees, spiral_rotations
from cellsdf.model.checkpoint import load_autodecoder

SIZE = 48


# Fits decode a few thousand points per step, too few to gain from a second thread on a busy machine.
pytestmark = pytest.mark.usefixtures("one_thread")


def ball(size, centre, radius):
    axis = np.linspace(-1.0, 1.0, size)
    grid = np.stack(np.meshgrid(axis, axis, axis, indexing="ij"), axis=-1)
    return np.linalg.norm(grid - np.asarray(centre), axis=-1) <= radius


def views_of(volume, count):
    return [View(project_volume(volume, r), r, f"view {k}") for k, r in enumerate(spiral_rotations(count))]


@pytest.fixture(scope="module")
def filo():
    return load_autodecoder("filo")


@pytest.fixture(scope="module")
def training_lift(filo):
    """Two hypotheses lifted from the top view of a cell the filo model was trained on (seed 0)."""
    truth = truth_cell("filo", 0, 2, EvalSettings(size=SIZE))
    views = views_of(truth, 1)
    fitted = fit_hypotheses(
        filo.decoder,
        filo.latents.weight.detach().numpy(),
        views,
        filo.rotations.weight.detach().numpy(),
        hypotheses=2,
        options=FitOptions(steps=80),
        seed=0,
    )
    volumes = [h.decode(filo.decoder, np.eye(3), SIZE, 0.1) for h in fitted]
    return truth, views, fitted, volumes


def test_lifting_a_training_cell_beats_the_ellipsoid(training_lift):
    truth, views, fitted, volumes = training_lift
    assert [h.loss for h in fitted] == sorted(h.loss for h in fitted)
    assert fitted[0].dice[0] > 0.8
    ours = overlap(volumes[0], truth)["iou"]
    assert ours > overlap(ellipsoid_baseline(views[0].mask), truth)["iou"]
    assert ours > 0.5


def test_hypotheses_differ(training_lift):
    _, _, fitted, volumes = training_lift
    for i in range(len(volumes)):
        for j in range(i + 1, len(volumes)):
            assert overlap(volumes[i], volumes[j])["iou"] < 0.97
            assert not np.allclose(fitted[i].latent, fitted[j].latent)


def test_field_mode_with_eight_views_reaches_iou_target():
    truth = truth_cell("plat", 1, 0, EvalSettings(size=SIZE))
    fit = fit_field(views_of(truth, 8), FieldOptions(steps=200), seed=0)
    assert min(fit.dice) > 0.9
    assert overlap(fit.decode(np.eye(3), SIZE), truth)["iou"] >= 0.9


def test_views_projections_and_placed_decoders_share_one_convention():
    # A ball off-centre in x: turned 90° about y, it must appear off-centre in the view's depth, not in-plane.
    volume = ball(33, (0.0, 0.0, 0.5), 0.3)
    side = rotation_from_degrees([0, 90, 0])
    assert project_volume(volume, np.eye(3))[16, 16 + 8]
    assert project_volume(volume, side)[16, 16]
    field = FreeField((0.0, 0.0, 0.5), 0.3, widths=(8,))
    with torch.no_grad():
        field.output.weight.zero_()  # only the ball remains
    for rotation in (np.eye(3), side, spiral_rotations(4)[2]):
        decoded = decode_view(
            field,
            np.zeros(0, np.float32),
            0.0,
            PlacedDecoder(field, rotation, np.eye(3), 1.0, np.zeros(3)),
            33,
            0.1,
        )
        assert overlap(decoded.any(axis=0), project_volume(volume, rotation))["iou"] > 0.95
    hull = visual_hull([View(project_volume(volume, r), r, "") for r in spiral_rotations(8)], 33)
    assert overlap(hull, volume)["iou"] > 0.9
    for rotation in spiral_rotations(5):
        assert np.allclose(rotation @ rotation.T, np.eye(3))


def test_baselines_and_metrics_on_known_shapes():
    axis = np.linspace(-1.0, 1.0, 41)
    yy, xx = np.meshgrid(axis, axis, indexing="ij")
    disk = yy**2 + xx**2 <= 0.5**2
    sphere = ellipsoid_baseline(disk)
    assert sphere.sum() == pytest.approx(4 / 3 * np.pi * 10**3, rel=0.05)  # radius 10 voxels
    cylinder = extrusion_baseline(disk)
    assert (cylinder.any(axis=0) == disk).all() and cylinder.sum() == pytest.approx(disk.sum() * 21, rel=0.05)
    scores = lift_metrics(sphere, sphere)
    assert scores["iou"] == 1.0 and all(scores[k] == 0.0 for k in scores if k != "iou")
    cube = np.zeros((10, 10, 10), bool)
    cube[2:8, 2:8, 2:8] = True
    assert surface_voxels(cube) == 6**3 - 4**3
    noisy = sphere.copy()
    noisy[::3, ::3, ::3] ^= True
    assert roughness(noisy) > roughness(sphere)
    assert lift_metrics(cylinder, sphere)["volume_error"] == pytest.approx(cylinder.sum() / sphere.sum() - 1)


@pytest.fixture(scope="module")
def mask_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("masks")
    truth = truth_cell("plat", 1, 1, EvalSettings(size=32))
    paths = {}
    for name, rotation in (("top", np.eye(3)), ("side", rotation_from_degrees([0, 90, 0]))):
        paths[name] = folder / f"{name}.tif"
        tifffile.imwrite(paths[name], project_volume(truth, rotation).astype(np.uint8) * 255)
    paths["empty"] = folder / "empty.tif"
    tifffile.imwrite(paths["empty"], np.zeros((32, 32), np.uint8))
    paths["full"] = folder / "full.tif"
    tifffile.imwrite(paths["full"], np.ones((32, 32), np.uint8))
    paths["volume"] = folder / "volume.tif"
    tifffile.imwrite(paths["volume"], truth.astype(np.uint8))
    paths["small"] = folder / "small.tif"
    tifffile.imwrite(paths["small"], np.pad(np.ones((10, 10), np.uint8), 7))
    paths["foreign"] = folder / "foreign.pt"
    torch.save({"weights": torch.zeros(3)}, paths["foreign"])
    return paths


def test_lift_command_writes_ranked_hypotheses(mask_files, tmp_path):
    out = tmp_path / "out"
    main(
        [
            "lift",
            "ckpt=plat",
            f"mask={mask_files['top']}",
            f"out={out}",
            "hypotheses=2",
            "steps=20",
            "resolution=64",
            "novel_views=[[0,90,0]]",
            "progress=false",
        ]
    )
    summary = json.loads((out / "lift.json").read_text())
    assert [h["rank"] for h in summary["hypotheses"]] == [1, 2]
    assert summary["hypotheses"][0]["loss"] <= summary["hypotheses"][1]["loss"]
    for rank in (1, 2):
        folder = out / f"hypothesis_{rank}"
        assert tifffile.imread(folder / "mask.tif").shape == (64, 64, 64)  # zoomed from the 32² mask
        assert (folder / "mesh" / "t000.ply").is_file()
        assert tifffile.imread(folder / "novel_views.tif").shape == (1, 64, 64)
    assert (out / "lift.png").stat().st_size > 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["command"] == "lift" and len(manifest["items"]) == 2


def test_lift_command_field_mode_from_two_views(mask_files, tmp_path):
    out = tmp_path / "field"
    top, side = mask_files["top"], mask_files["side"]
    views = f"views=[{{mask: {top}, rotation: [0, 0, 0]}}, {{mask: {side}, rotation: [0, 90, 0]}}]"
    main(["lift", "mode=field", views, f"out={out}", "steps=100", "progress=false"])
    summary = json.loads((out / "lift.json").read_text())
    assert min(summary["hypotheses"][0]["dice"]) > 0.85
    saved = torch.load(out / "hypothesis_1" / "field.pt", weights_only=True)
    field = FreeField(**saved["arguments"])
    field.load_state_dict(saved["state_dict"])


@pytest.mark.parametrize(
    "args, message",
    [
        (["mask={empty}"], "empty"),
        (["mask={full}"], "entirely foreground"),
        (["mask={volume}"], "2D mask"),
        (["views=[{{mask: {top}, rotation: [0, 0, 0]}}, {{mask: {side}}}]"], "2 masks and 1 rotations"),
        (
            ["views=[{{mask: {top}, rotation: [0, 0, 0]}}, {{mask: {small}, rotation: [0, 90, 0]}}]"],
            "same shape",
        ),
        (["mask={top}", "ckpt={foreign}"], "not a cellsdf auto-decoder"),
        (["mask={top}", "mode=field"], "2+"),
        (["mask={top}", "hypotheses=0"], "hypotheses"),
    ],
)
def test_lift_refuses_bad_input_and_writes_nothing(mask_files, tmp_path, capsys, args, message):
    out = tmp_path / "out"
    args = [a.format(**{k: str(v) for k, v in mask_files.items()}) for a in args]
    with pytest.raises(SystemExit) as exit_info:
        main(["lift", f"out={out}", "steps=2", "progress=false", *args])
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err
    assert not out.exists()


@pytest.mark.slow
def test_lift_eval_small_run(tmp_path):
    out = tmp_path / "eval"
    main(
        [
            "lift-eval",
            f"out={out}",
            "lines=[cele]",
            "cells=1",
            "views=[1,2]",
            "hypotheses=2",
            "latent_steps=20",
            "field_steps=30",
            "size=32",
            "workers=1",
            "progress=false",
        ]
    )
    report = json.loads((out / "lift.json").read_text())["lines"]["cele"]
    assert set(report["mean"]["1"]) == {"ellipsoid", "extrusion", "latent_best", "latent_mean"}
    assert set(report["mean"]["2"]) == {"latent_best", "latent_mean", "field"}
    assert 0.0 <= report["mean"]["2"]["field"]["iou"] <= 1.0
    assert "one_view_beats_baselines" in report["targets"]
    with pytest.raises(SystemExit) as exit_info:
        main(["lift-eval", f"out={tmp_path / 'other'}", "seed=0", "progress=false"])
    assert exit_info.value.code == 2
