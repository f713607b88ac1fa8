import json

import numpy as np
import pytest
import tifffile
import torch

from cellsdf.cli import main
from cellsdf.geometry.overlap import iou
from cellsdf.lift.baselines import ellipsoid_baseline, extrusion_baseline
from cellsdf.lift.evaluation import EvalSettings, truth_cell
from cellsdf.lift.field import FieldOptions, FreeField, fit_field
from cellsdf.lift.latent import FitOptions, expected_scale, fit_hypotheses, model_scale
from cellsdf.lift.metrics import lift_metrics, roughness, surface_voxels
from cellsdf.lift.refine import RefineOptions, refine_hypothesis
from cellsdf.lift.render import decode_view, project_volume, visual_hull
from cellsdf.lift.views import View, rotation_from_degrees, spiral_rotations
from cellsdf.model.checkpoint import load_autodecoder, resolve_checkpoint
from cellsdf.model.placement import PlacedDecoder
from cellsdf.model.trained import load_trained
from cellsdf.simulate.lines import line_spacing

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
    return load_autodecoder("filo_whole")


@pytest.fixture(scope="module")
def training_lift(filo):
    """Two hypotheses lifted from the top view of a cell the filo model was trained on (seed 0)."""
    truth = truth_cell("filo", 0, 2, EvalSettings(size=SIZE))
    views = views_of(truth, 1)
    model = load_trained("filo_whole")
    fitted = fit_hypotheses(model, views, hypotheses=2, options=FitOptions(steps=80), seed=0)
    volumes = [h.decode(filo.decoder, np.eye(3), SIZE, 0.1) for h in fitted]
    return truth, views, fitted, volumes


def test_lifting_a_training_cell_beats_the_ellipsoid(training_lift):
    truth, views, fitted, volumes = training_lift
    assert [h.loss for h in fitted] == sorted(h.loss for h in fitted)
    assert fitted[0].dice[0] > 0.8
    ours = iou(volumes[0], truth)
    assert ours > iou(ellipsoid_baseline(views[0].mask), truth)
    assert ours > 0.5


def test_results_are_carved_to_the_views_hull(training_lift):
    _, views, _, volumes = training_lift
    for volume in volumes:
        assert volume.any() and not (volume.any(axis=0) & ~views[0].mask).any()


def test_refining_fits_the_views_better_and_leaves_the_model_alone(training_lift, filo):
    truth, top, _, _ = training_lift
    with pytest.raises(ValueError, match="two or more directions"):
        refine_hypothesis(filo.decoder, training_lift[2][0], top, options=RefineOptions(steps=1))
    views = views_of(truth, 2)
    fitted = fit_hypotheses(
        load_trained("filo_whole"), views, upright=False, hypotheses=1, options=FitOptions(steps=40), seed=0
    )
    before = [p.detach().clone() for p in filo.decoder.parameters()]
    refined = refine_hypothesis(filo.decoder, fitted[0], views, options=RefineOptions(steps=60), seed=0)
    assert refined.decoder is not None and fitted[0].decoder is None
    assert all(torch.equal(a, b) for a, b in zip(before, filo.decoder.parameters(), strict=True))
    assert not all(torch.equal(a, b) for a, b in zip(before, refined.decoder.parameters(), strict=True))
    assert np.mean(refined.dice) > np.mean(fitted[0].dice)


def test_known_pixel_size_keeps_the_trained_cell_size(filo):
    pixel = line_spacing("filo", SIZE)[0]
    scale = model_scale(load_trained("filo_whole"), pixel, SIZE)
    # 2 / (N - 1) world units per pixel of `pixel` µm, over the model's normalised units per µm:
    assert scale == pytest.approx(2.0 / (SIZE - 1) / pixel / filo.hparams["dataset"]["scale"])
    assert expected_scale(0.5, 2.0, 5) == pytest.approx(0.5)
    truth = truth_cell("filo", 1, 0, EvalSettings(size=SIZE))
    options = FitOptions(steps=40, scale=scale)
    (fitted,) = fit_hypotheses(
        load_trained("filo_whole"), views_of(truth, 1), upright=False, hypotheses=1, options=options, seed=0
    )
    assert fitted.scale == pytest.approx(scale, rel=0.1)


def test_hypotheses_differ(training_lift):
    _, _, fitted, volumes = training_lift
    for i in range(len(volumes)):
        for j in range(i + 1, len(volumes)):
            assert iou(volumes[i], volumes[j]) < 0.97
            assert not np.allclose(fitted[i].latent, fitted[j].latent)


def test_field_mode_with_eight_views_reaches_iou_target():
    truth = truth_cell("plat", 1, 0, EvalSettings(size=SIZE))
    fit = fit_field(views_of(truth, 8), options=FieldOptions(steps=200), seed=0)
    assert min(fit.dice) > 0.9
    assert iou(fit.decode(np.eye(3), SIZE), truth) >= 0.9


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
        assert iou(decoded.any(axis=0), project_volume(volume, rotation)) > 0.95
    hull = visual_hull([View(project_volume(volume, r), r, "") for r in spiral_rotations(8)], 33)
    assert iou(hull, volume) > 0.9
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
    unscaled = torch.load(resolve_checkpoint("plat"), map_location="cpu", weights_only=True)
    del unscaled["hyper_parameters"]["dataset"]["scale"]
    paths["unscaled"] = folder / "unscaled.pt"
    torch.save(unscaled, paths["unscaled"])
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
            "pixel_size=0.8",
            "progress=false",
        ]
    )
    summary = json.loads((out / "lift.json").read_text())
    assert summary["spacing_um"] == pytest.approx([0.8 * 31 / 63] * 3)
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


def test_lift_command_refines_hypotheses_from_two_views(mask_files, tmp_path):
    out = tmp_path / "refined"
    top, side = mask_files["top"], mask_files["side"]
    views = f"views=[{{mask: {top}, rotation: [0, 0, 0]}}, {{mask: {side}, rotation: [0, 90, 0]}}]"
    main(["lift", views, f"out={out}", "hypotheses=1", "steps=10", "refine=5", "progress=false"])
    refined = torch.load(out / "hypothesis_1" / "decoder.pt", weights_only=True)
    load_autodecoder("plat").decoder.load_state_dict(refined)
    volume = tifffile.imread(out / "hypothesis_1" / "mask.tif") > 0
    assert volume.any() and not (volume.any(axis=0) & ~(tifffile.imread(top) > 0)).any()


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
        (["mask={top}", "pixel_size=-1"], "pixel_size"),
        (["mask={top}", "refine=-2"], "refine"),
        (["mask={top}", "refine=5"], "two or more directions"),
        (["mask={top}", "resolution=100000"], "resolution: 100000³ needs about"),
        (["mask={top}", "ckpt={unscaled}", "pixel_size=0.5"], "does not record its training data's scale"),
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


@pytest.mark.parametrize(
    "arg, message",
    [
        ("seed=0", "seed 0 made"),
        ("known_pixel_size=maybe", "true or false"),
        ("refine_steps=-1", "refine_steps"),
    ],
)
def test_lift_eval_refuses_bad_options_and_writes_nothing(tmp_path, capsys, arg, message):
    out = tmp_path / "eval"
    with pytest.raises(SystemExit) as exit_info:
        main(["lift-eval", f"out={out}", arg, "progress=false"])
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
            "refine_steps=10",
            "size=32",
            "workers=1",
            "progress=false",
        ]
    )
    report = json.loads((out / "lift.json").read_text())["lines"]["cele"]
    latent = {"latent_best", "latent_mean"}
    assert set(report["mean"]["1"]) == {"ellipsoid", "extrusion"} | latent
    assert set(report["mean"]["2"]) == latent | {"latent_refined", "hull", "field"}
    assert 0.0 <= report["mean"]["2"]["field"]["iou"] <= 1.0
    assert "one_view_beats_baselines" in report["targets"]


@pytest.mark.slow
def test_refined_latent_lift_of_eight_views_beats_the_visual_hull():
    # filo's thin protrusions are where the shape space alone falls short and the hull keeps most excess.
    size = 64
    model = load_trained("filo_whole")
    truth = truth_cell("filo", 1, 1, EvalSettings(size=size))
    views = views_of(truth, 8)
    options = FitOptions(rays=32, scale=model_scale(model, line_spacing("filo", size)[0], size))
    best = fit_hypotheses(model, views, hypotheses=4, options=options, seed=1)[0]
    refined = refine_hypothesis(model.decoder, best, views, options=RefineOptions(), seed=1)
    refined_iou = iou(refined.decode(model.decoder, np.eye(3), size, 0.1), truth)
    assert refined_iou >= 0.9
    assert refined_iou > iou(visual_hull(views, size), truth)
