"""The segment command: scores against py-ctcmetrics, targets, reading CTC sets, training and scoring."""

import json
import shutil

import numpy as np
import pytest
import tifffile
from ctc_metrics.scripts.evaluate import evaluate_sequence

from cellsdf.cli import main
from cellsdf.errors import InputError
from cellsdf.io.ctc import track_table, write_ctc_result, write_ctc_sequence
from cellsdf.segment.experiment import summary, write_annotated
from cellsdf.segment.network import plan_unet
from cellsdf.segment.scores import segmentation_scores
from cellsdf.segment.sets import annotated_frames
from cellsdf.segment.targets import BOUNDARY, INTERIOR, class_targets


def _box(frame, label, y, x, h, w):
    frame[y : y + h, x : x + w] = label


def _hand_built():
    """Two frames: exact matches, a merge of two cells, a missed cell, a false one, a poor (IoU < 0.5) one."""
    truth = np.zeros((2, 40, 40), np.uint16)
    pred = np.zeros_like(truth)
    # Frame 0: cell 1 exact; cells 2 and 3 merged into one prediction; cell 4 missed; a false object.
    _box(truth[0], 1, 2, 2, 8, 8)
    _box(pred[0], 1, 2, 2, 8, 8)
    _box(truth[0], 2, 20, 2, 6, 6)
    _box(truth[0], 3, 20, 9, 6, 6)
    _box(pred[0], 2, 20, 2, 6, 13)
    _box(truth[0], 4, 30, 30, 5, 5)
    _box(pred[0], 3, 2, 30, 4, 4)
    # Frame 1: cell 5 inside a prediction twice its size (IoU 0.5 exactly: no AP match).
    _box(truth[1], 5, 10, 10, 6, 6)
    _box(pred[1], 4, 10, 10, 6, 12)
    _box(truth[1], 6, 25, 25, 6, 6)
    _box(pred[1], 5, 25, 26, 6, 6)
    return truth, pred


def test_seg_and_det_match_py_ctcmetrics_on_a_hand_built_case(tmp_path):
    truth, pred = _hand_built()
    write_ctc_sequence(tmp_path, 1, truth, truth, track_table(truth))
    write_ctc_result(tmp_path, 1, pred, track_table(pred))
    theirs = evaluate_sequence(
        str(tmp_path / "01_RES"), str(tmp_path / "01_GT"), metrics=["SEG", "DET"], threads=1
    )
    ours = segmentation_scores(zip(truth, pred, strict=True))
    assert ours["SEG"] == pytest.approx(theirs["SEG"]) and ours["DET"] == pytest.approx(theirs["DET"])
    # By hand: 6 cells; the merge is 1 split, cell 4 is missed, one object is false.
    assert (ours["objects"], ours["splits"], ours["missed"], ours["false"]) == (6, 1, 1, 1)
    assert ours["DET"] == pytest.approx(1 - (5 + 10 + 1) / 60)
    # AP at IoU 0.5: cells 1 and 6 (IoU 30/42) match; 5 predictions and 6 cells leave 3 + 4 unmatched.
    assert ours["matched"] == 2 and ours["AP50"] == pytest.approx(2 / (2 + 3 + 4))


def test_scores_are_perfect_on_the_truth_and_refuse_an_empty_truth():
    truth, _ = _hand_built()
    scores = segmentation_scores(zip(truth, truth, strict=True))
    assert scores["SEG"] == scores["DET"] == scores["AP50"] == 1.0
    with pytest.raises(ValueError, match="no labelled object"):
        segmentation_scores([(np.zeros((4, 4), int), np.ones((4, 4), int))])


def test_boundary_targets_stay_in_the_plane_of_a_coarse_stack():
    labels = np.zeros((5, 12, 12), int)
    labels[1:4, 2:10, 2:10] = 1
    fine = class_targets(labels, spacing=(1.0, 0.2, 0.2))
    # The cell's top and bottom slices are interior (z is 5x coarser); an isotropic stack makes them boundary.
    assert fine[1, 5, 5] == INTERIOR and fine[2, 2, 5] == BOUNDARY
    assert class_targets(labels)[1, 5, 5] == BOUNDARY
    assert plan_unet((5, 64, 64), (1.0, 0.2, 0.2)).divisor == (1, 16, 16)


def _blobs(rng, shape, count):
    """Bright discs (or cylinders through a stack) on a noisy background, with their labels."""
    labels = np.zeros(shape[-2:], np.uint16)
    yy, xx = np.mgrid[: shape[-2], : shape[-1]]
    for k in range(1, count + 1):
        y, x = rng.integers(6, np.array(shape[-2:]) - 6)
        disc = ((yy - y) ** 2 + (xx - x) ** 2 <= rng.integers(9, 25)) & (labels == 0)
        labels[disc] = k
    labels = np.broadcast_to(labels, shape).copy()
    image = (20 + 80 * (labels > 0) + rng.normal(0, 5, shape)).clip(0, 255).astype(np.uint16)
    return image, labels


@pytest.fixture(scope="module")
def sets(tmp_path_factory):
    root = tmp_path_factory.mktemp("sets")
    rng = np.random.default_rng(0)
    made = {}
    for name, n in (("train", 3), ("test", 1)):
        pairs = [_blobs(rng, (48, 48), 6) for _ in range(n)]
        made[name] = write_annotated(root / name, *zip(*pairs, strict=True))
    pairs = [_blobs(rng, (5, 32, 32), 3) for _ in range(2)]
    made["train3d"] = write_annotated(root / "train3d", *zip(*pairs, strict=True), spacing=(1.0, 0.2, 0.2))
    return made


def test_segment_trains_scores_writes_ctc_results_and_a_model_that_scores_again(sets, tmp_path, capsys):
    out = tmp_path / "run"
    args = [f"train=[{sets['train']}]", f"test={sets['test']}", "steps=6", "batch=2", "patch=32", "width=4"]
    main(["segment", *args, f"out={out}", "progress=false", "precision=32-true"])
    scores = json.loads((out / "scores.json").read_text())
    assert set(scores["scores"]) >= {"SEG", "DET", "AP50"} and scores["otsu"]["SEG"] > 0.5
    assert (out / "test" / "01_RES" / "mask000.tif").is_file() and (out / "manifest.json").is_file()
    assert "Otsu threshold (the floor)" in capsys.readouterr().out
    again = tmp_path / "again"
    main(["segment", f"ckpt={out / 'model.pt'}", f"test={sets['test']}", f"out={again}", "progress=false"])
    assert json.loads((again / "scores.json").read_text())["scores"] == scores["scores"]


def test_segment_trains_on_3d_stacks_with_their_voxel_size(sets, tmp_path):
    out = tmp_path / "run3d"
    frames = annotated_frames(sets["train3d"])
    assert frames[0].spacing == pytest.approx((1.0, 0.2, 0.2)) and frames[0].image.shape == (5, 32, 32)
    args = [
        f"train={sets['train3d']}",
        f"test={sets['train3d']}",
        "steps=3",
        "batch=1",
        "patch=32",
        "width=4",
    ]
    main(["segment", *args, f"out={out}", "progress=false"])
    predicted = tifffile.imread(out / "test" / "01_RES" / "mask000.tif")
    assert predicted.shape == (5, 32, 32)


def test_a_set_without_seg_masks_uses_its_tra_masks_and_bad_sets_are_refused(sets, tmp_path):
    copy = tmp_path / "tra_only"
    shutil.copytree(sets["test"], copy)
    (copy / "01_GT" / "TRA").mkdir()
    (copy / "01_GT" / "SEG" / "man_seg000.tif").rename(copy / "01_GT" / "TRA" / "man_track000.tif")
    assert len(annotated_frames(copy)) == 1
    (copy / "01" / "t000.tif").unlink()
    with pytest.raises(InputError, match="has no image t000.tif"):
        annotated_frames(copy)
    with pytest.raises(InputError, match="holds no annotated frame"):
        annotated_frames(tmp_path)
    bad = tmp_path / "float"
    write_annotated(bad, [np.zeros((8, 8), np.uint16)], [np.zeros((8, 8), np.float32)])
    with pytest.raises(InputError, match="non-negative integers"):
        annotated_frames(bad)


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["train=[/nonexistent/set]"], "is not a folder"),
        ([], "needs either train="),
        (["ckpt=README.md", "test=TEST"], "cannot read the segmenter model (truncated or not a torch file)"),
        (["train=[TRAIN]", "steps=0"], "steps: must be an integer >= 1"),
        (["train=[TRAIN]", "precision=fast"], "precision"),
    ],
)
def test_bad_segment_runs_stop_with_one_line(sets, tmp_path, capsys, args, words):
    args = [a.replace("TRAIN", str(sets["train"])).replace("TEST", str(sets["test"])) for a in args]
    with pytest.raises(SystemExit) as stop:
        main(["segment", *args, f"out={tmp_path / 'o'}", "progress=false"])
    assert stop.value.code == 2
    err = capsys.readouterr().err.strip()
    assert words in err and len(err.splitlines()) == 1
    assert not (tmp_path / "o" / "model.pt").exists()


def _result(seg, sd_seed):
    return [{"scores": {"SEG": seg + d, "DET": 0.9, "AP50": 0.8}, "training_seconds": 10.0} for d in sd_seed]


def test_the_summary_gives_mean_sd_and_the_targets_verdicts():
    runs = {
        "real": _result(0.80, (-0.01, 0.0, 0.01)),
        "synthetic": _result(0.74, (-0.01, 0.0, 0.01)),
        "ellipsoids": _result(0.70, (-0.05, 0.0, 0.05)),
        "few real": _result(0.70, (0.0, 0.0, 0.0)),
        "few real + synthetic": _result(0.75, (0.0, 0.01, 0.02)),
    }
    table = summary(runs, {"SEG": 0.6, "DET": 0.7, "AP50": 0.3})
    assert table["rows"]["real"]["SEG"] == {"mean": pytest.approx(0.8), "sd": pytest.approx(0.01)}
    targets = table["targets"]
    assert (
        targets["synthetic / real SEG"]["value"] == pytest.approx(0.925)
        and targets["synthetic / real SEG"]["met"]
    )
    # 0.04 apart with an sd of 0.05: not more than the spread.
    assert not targets["synthetic - ellipsoids SEG"]["met"]
    assert targets["few real + synthetic - few real SEG"]["met"]


def test_segment_eval_trains_five_ways_on_the_shipped_nuclei_and_writes_the_table(tmp_path, capsys):
    out = tmp_path / "eval"
    sizes = ["cells=4", "frames=1", "resolution=20", "cells_per_field=4", "seeds=1"]
    segment = ["segment.steps=2", "segment.batch=1", "segment.patch=32", "segment.width=4"]
    main(["segment-eval", f"out={out}", *sizes, *segment, "progress=false"])
    table = json.loads((out / "table.json").read_text())
    assert list(table["rows"]) == [
        "real",
        "synthetic",
        "real masks, synthetic texture",
        "ellipsoids",
        "few real",
        "few real + synthetic",
    ]
    # The held-out quarter of data/real: 29 nuclei; the floor is Otsu's on it.
    assert table["test_cells"] == 29 and table["floor"]["SEG"] == pytest.approx(0.633, abs=0.01)
    assert table["training_frames"] == {"real": 3, "few": 1, "textured": 3, "synthetic": 1, "ellipsoids": 1}
    # One seed has no spread, so the comparisons are not judged.
    assert table["targets"]["synthetic - ellipsoids SEG"]["met"] is None
    assert (out / "preview.png").stat().st_size > 10_000
    recipe = (out / "recipe.sh").read_text()
    assert "shapes=ellipsoids" in recipe and recipe.count("cellsdf segment ") == 6
    assert "| few real + synthetic | 1 |" in capsys.readouterr().out
    synthetic = tifffile.imread(out / "data" / "synthetic" / "01_GT" / "SEG" / "man_seg000.tif")
    ellipsoids = tifffile.imread(out / "data" / "ellipsoids" / "01_GT" / "SEG" / "man_seg000.tif")
    assert np.unique(synthetic).size == np.unique(ellipsoids).size == 5
    assert not np.array_equal(synthetic > 0, ellipsoids > 0)
    # resume=true reuses the finished data and runs: nothing is trained again.
    before = (out / "runs" / "real" / "seed0" / "model.pt").stat().st_mtime_ns
    main(["segment-eval", f"out={out}", *sizes, *segment, "progress=false", "resume=true"])
    assert (out / "runs" / "real" / "seed0" / "model.pt").stat().st_mtime_ns == before
    assert json.loads((out / "table.json").read_text())["rows"] == table["rows"]


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["image=README.md"], "needs both image= and labels="),
        (["image=/nonexistent/a.tif", "labels=/nonexistent/b.tif"], "a.tif: file not found"),
        (["seeds=0"], "seeds: must be an integer >= 1"),
        (["texture=fancy"], "texture"),
    ],
)
def test_bad_segment_eval_runs_stop_with_one_line(tmp_path, capsys, args, words):
    with pytest.raises(SystemExit) as stop:
        main(["segment-eval", *args, f"out={tmp_path / 'o'}", "progress=false"])
    assert stop.value.code == 2
    err = capsys.readouterr().err.strip()
    assert words in err and len(err.splitlines()) == 1
    assert not (tmp_path / "o" / "data").exists()
