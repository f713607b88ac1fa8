"""CTC ground-truth writing, track tables and the SEG measure, checked against py-ctcmetrics."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import tifffile
from ctc_metrics.metrics import valid
from ctc_metrics.scripts.evaluate import evaluate_sequence
from ctc_metrics.scripts.validate import validate_sequence
from ctc_metrics.utils.filesystem import parse_masks, read_tracking_file
from ctc_metrics.utils.representations import match
from scipy import ndimage

from cellsdf.benchmark.seg import otsu_baseline, seg_jaccards, seg_measure
from cellsdf.benchmark.tracks import track_single_cell
from cellsdf.errors import InputError
from cellsdf.io.ctc import (
    frame_digits,
    read_ctc_sequence,
    sequence_name,
    track_table,
    write_ctc_result,
    write_ctc_sequence,
)

SIZE = 64
FRAMES = 8
DIVISION = 4


def _disk(cy: float, cx: float, ry: float, rx: float | None = None) -> np.ndarray:
    y, x = np.mgrid[:SIZE, :SIZE]
    rx = ry if rx is None else rx
    return ((y - cy) / ry) ** 2 + ((x - cx) / rx) ** 2 <= 1


def _dividing_cell() -> np.ndarray:
    """A disk that elongates along x, then splits into two disks at frame ``DIVISION`` that drift apart."""
    frames = []
    for t in range(FRAMES):
        if t < DIVISION:
            frames.append(_disk(32, 32, 8, 8 + 3 * t))
        else:
            d = 10 + 2 * (t - DIVISION)
            frames.append(_disk(32, 32 - d, 7) | _disk(32, 32 + d, 7))
    return np.stack(frames)


def _image(labels: np.ndarray, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    image = np.where(labels > 0, 1000.0, 100.0) + rng.normal(0, 20, labels.shape)
    return np.clip(image, 0, 65535).astype(np.uint16)


@pytest.fixture
def dividing():
    labels, tracks = track_single_cell(_dividing_cell())
    return labels, tracks


def _ctc_valid(folder, track_file) -> int:
    masks = parse_masks(str(folder))
    labels = [match(None, m)[1] for m in masks]
    return valid(masks, read_tracking_file(str(track_file)), labels)


def test_dividing_cell_gives_parent_and_two_daughters(dividing, tmp_path):
    labels, tracks = dividing
    expected = [[1, 0, DIVISION - 1, 0], [2, DIVISION, FRAMES - 1, 1], [3, DIVISION, FRAMES - 1, 1]]
    assert tracks.tolist() == expected
    recorded_labels, recorded = track_single_cell(_dividing_cell(), division_frame=DIVISION)
    assert recorded.tolist() == expected
    np.testing.assert_array_equal(recorded_labels, labels)
    write_ctc_sequence(tmp_path, 1, _image(labels), labels, tracks)
    assert read_tracking_file(str(tmp_path / "01_GT/TRA/man_track.txt")).tolist() == expected


def test_daughters_keep_their_labels_and_labels_are_unique(dividing):
    labels, _ = dividing
    # Larger-first then overlap: each daughter stays on its own side, one connected object per label.
    left = labels[DIVISION:, :, : SIZE // 2]
    right = labels[DIVISION:, :, SIZE // 2 :]
    assert set(np.unique(left)) == {0, 2} or set(np.unique(left)) == {0, 3}
    assert set(np.unique(right)) | set(np.unique(left)) == {0, 2, 3}
    for frame in labels:
        for label in np.unique(frame)[1:]:
            assert ndimage.label(frame == label)[1] == 1
    assert set(np.unique(labels[:DIVISION])) == {0, 1}


def test_a_speck_is_dropped_and_a_large_extra_piece_joins_nearest_daughter():
    masks = _dividing_cell()
    masks[DIVISION:, 32, 5] = True  # a one-pixel speck left of the left daughter: not a cell
    masks[DIVISION:, 2:7, 30:35] = True  # 25 pixels (over 10 % of a daughter) above them: a piece of a cell
    labels, tracks = track_single_cell(masks)
    assert tracks[:, 0].tolist() == [1, 2, 3]
    assert (labels[DIVISION:, 32, 5] == 0).all()
    assert labels[DIVISION, 4, 32] in (labels[DIVISION, 32, 32 - 10], labels[DIVISION, 32, 32 + 10])


def test_written_sequence_layout_passes_ctc_validation(dividing, tmp_path):
    labels, tracks = dividing
    images = _image(labels)
    gt = write_ctc_sequence(tmp_path, 1, images, labels, tracks)
    res = write_ctc_result(tmp_path, 1, labels, tracks)
    assert gt == tmp_path / "01_GT" and res == tmp_path / "01_RES"
    names = [f"{t:03d}.tif" for t in range(FRAMES)]
    assert sorted(p.name for p in (tmp_path / "01").iterdir()) == [f"t{n}" for n in names]
    assert sorted(p.name for p in (gt / "SEG").iterdir()) == [f"man_seg{n}" for n in names]
    tra = {p.name for p in (gt / "TRA").iterdir()}
    assert tra == {f"man_track{n}" for n in names} | {"man_track.txt"}
    frame = tifffile.imread(tmp_path / "01" / "t003.tif")
    assert frame.dtype == np.uint16
    np.testing.assert_array_equal(frame, images[3])
    np.testing.assert_array_equal(tifffile.imread(gt / "SEG" / "man_seg005.tif"), labels[5])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert _ctc_valid(gt / "TRA", gt / "TRA" / "man_track.txt") == 1
        assert validate_sequence(str(res), threads=1)["Valid"] == 1
    # The check has teeth: a parent that outlives its daughters' birth is rejected.
    (res / "res_track.txt").write_text(f"1 0 {DIVISION} 0\n2 {DIVISION} 7 1\n3 {DIVISION} 7 1\n")
    with pytest.warns(UserWarning):
        assert validate_sequence(str(res), threads=1)["Valid"] == 0


def test_seg_of_ground_truth_is_one_and_matches_ctcmetrics(dividing, tmp_path):
    labels, tracks = dividing
    gt = write_ctc_sequence(tmp_path, 1, _image(labels), labels, tracks)
    res = write_ctc_result(tmp_path, 1, labels, tracks)
    scores = evaluate_sequence(str(res), str(gt), metrics=["SEG", "DET", "TRA"], threads=1)
    assert seg_measure(labels, labels, timelapse=True) == 1.0
    assert scores["SEG"] == pytest.approx(1.0)
    assert scores["TRA"] == pytest.approx(1.0)


def test_seg_matches_ctcmetrics_on_an_imperfect_result(dividing, tmp_path):
    labels, tracks = dividing
    predicted = np.roll(labels, 3, axis=2)  # shifted cells: partial overlaps
    predicted[7][predicted[7] == 3] = 0  # a missed daughter in the last frame
    predicted[1] = 0
    predicted[1][labels[1] > 0] = 1
    predicted[1][:, :34] = 0  # a parent cut to less than half: Jaccard 0
    pred_tracks = track_table(predicted)
    pred_tracks[pred_tracks[:, 0] != 1, 3] = 1
    gt = write_ctc_sequence(tmp_path, 1, _image(labels), labels, tracks)
    res = write_ctc_result(tmp_path, 1, predicted, pred_tracks)
    ours = seg_measure(labels, predicted, timelapse=True)
    theirs = evaluate_sequence(str(res), str(gt), metrics=["SEG"], threads=1)["SEG"]
    assert 0.3 < ours < 0.95
    assert ours == pytest.approx(theirs, abs=1e-12)
    assert seg_jaccards(labels[1], predicted[1]).tolist() == [0.0]


def test_seg_counts_same_label_in_different_frames_separately():
    truth = np.zeros((2, 8, 8), dtype=np.uint16)
    truth[:, 2:6, 2:6] = 1
    predicted = truth.copy()
    predicted[1] = 0
    assert seg_measure(truth, predicted, timelapse=True) == 0.5
    with pytest.raises(ValueError, match="no labelled object"):
        seg_measure(np.zeros((4, 4), np.uint16), np.zeros((4, 4), np.uint16))


def test_otsu_baseline_recovers_clean_cells(dividing):
    labels, _ = dividing
    images = _image(labels, seed=1)
    predicted = np.stack([otsu_baseline(frame) for frame in images])
    assert predicted.dtype == np.uint16
    assert seg_measure(labels, predicted, timelapse=True) > 0.9
    assert not otsu_baseline(np.full((8, 8), 7, np.uint16)).any()


def test_track_table_with_known_division_and_errors():
    labels = np.zeros((4, 8, 8), dtype=np.uint16)
    labels[:2, 1, 1] = 5
    labels[2:, 1, 1] = 6
    labels[2:, 5, 5] = 7
    labels[:, 3, 6] = 9
    table = track_table(labels, [(2, 5, (6, 7))])
    assert table.tolist() == [[5, 0, 1, 0], [6, 2, 3, 5], [7, 2, 3, 5], [9, 0, 3, 0]]
    with pytest.raises(ValueError, match="must end at frame 2"):
        track_table(labels, [(3, 5, (6, 7))])
    gap = labels.copy()
    gap[1, 3, 6] = 0
    with pytest.raises(ValueError, match="label 9 disappears"):
        track_table(gap)


def test_writer_refuses_bad_input(dividing, tmp_path):
    labels, tracks = dividing
    images = _image(labels)
    with pytest.raises(ValueError, match="do not match"):
        write_ctc_sequence(tmp_path, 1, images, labels, tracks[:2])
    with pytest.raises(ValueError, match="uint16"):
        write_ctc_sequence(tmp_path, 1, images.astype(np.float32), labels, tracks)
    write_ctc_sequence(tmp_path, 2, images, labels, tracks)
    with pytest.raises(InputError, match="overwrite"):
        write_ctc_sequence(tmp_path, 2, images, labels, tracks)
    # Overwriting with a shorter sequence leaves no stale frame behind.
    short, short_tracks = track_single_cell(_dividing_cell()[:3])
    write_ctc_sequence(tmp_path, 2, images[:3], short, short_tracks, overwrite=True)
    assert len(list((tmp_path / "02_GT" / "SEG").iterdir())) == 3
    assert _ctc_valid(tmp_path / "02_GT" / "TRA", tmp_path / "02_GT" / "TRA" / "man_track.txt") == 1


def test_names_and_padding():
    assert sequence_name(1) == "01" and sequence_name(33) == "33" and sequence_name(100) == "100"
    assert frame_digits(1) == 3 and frame_digits(1000) == 3 and frame_digits(1001) == 4
    with pytest.raises(ValueError):
        sequence_name(0)


@pytest.mark.parametrize(
    "text, message",
    [
        ("\U000e10a2µ", "row 1: expected 4 columns"),  # made numpy 2.4's loadtxt crash the interpreter
        ("1 0 7 0\n2 4 7 1\nx 4 7 1", "row 3: expected 4 whole numbers"),
        ("1 0 7 0\n2 4 7", "row 2: expected 4 columns"),
        ("-1 0 7 0", "row 1: track label -1 must be 1 or more"),
        ("1 0 8 0", r"row 1: frames 0 .. 8 do not lie in order within 0 .. 7"),
        ("1 5 4 0", r"row 1: frames 5 .. 4"),
        ("1 0 7 1", "row 1: parent 1 is neither 0 nor another track's label"),
        ("1 0 7 0\n1 0 7 0", "a track label is listed on more than one row"),
        ("99999999999999999999 0 7 0", "row 1: expected 4 whole numbers"),
    ],
)
def test_reading_a_damaged_track_table_names_the_row(dividing, tmp_path, text, message):
    labels, tracks = dividing
    write_ctc_sequence(tmp_path, 1, _image(labels), labels, tracks)
    assert read_ctc_sequence(tmp_path, "01").tracks.tolist() == sorted(tracks.tolist())
    table = tmp_path / "01_GT" / "TRA" / "man_track.txt"
    table.write_text(text, encoding="utf-8")
    with pytest.raises(InputError, match=f"man_track.txt: {message}"):
        read_ctc_sequence(tmp_path, "01")
