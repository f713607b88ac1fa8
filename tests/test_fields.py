"""Multi-cell fields: cells placed without overlap, drifting, with merged labels and CTC track tables."""

from __future__ import annotations

import numpy as np
import pytest
from ctc_metrics.metrics import valid
from ctc_metrics.utils.filesystem import parse_masks, read_tracking_file
from ctc_metrics.utils.representations import match
from scipy import ndimage

from cellsdf.benchmark.build import project_components
from cellsdf.benchmark.fields import compose_field, field_groups
from cellsdf.benchmark.tracks import track_single_cell, track_table
from cellsdf.errors import InputError
from cellsdf.io.ctc import write_ctc_sequence
from cellsdf.simulate import simulate_frames

FRAMES = 8
DIVISION = 4


def _disk(size: int, cy: float, cx: float, ry: float, rx: float | None = None) -> np.ndarray:
    y, x = np.mgrid[:size, :size]
    rx = ry if rx is None else rx
    return ((y - cy) / ry) ** 2 + ((x - cx) / rx) ** 2 <= 1


def _dividing_cell() -> tuple[np.ndarray, np.ndarray]:
    """A disk that stretches along x, then splits at frame ``DIVISION`` into two disks that move apart."""
    frames = []
    for t in range(FRAMES):
        if t < DIVISION:
            frames.append(_disk(48, 24, 24, 6, 6 + 2 * t))
        else:
            d = 8 + 2 * (t - DIVISION)
            frames.append(_disk(48, 24, 24 - d, 5) | _disk(48, 24, 24 + d, 5))
    return track_single_cell(np.stack(frames))


def _still_cell(radius: float, frames: int = FRAMES) -> tuple[np.ndarray, np.ndarray]:
    """A disk that does not change, off-centre in its own frame so that cropping matters."""
    size = int(2 * radius) + 12
    return track_single_cell(np.repeat(_disk(size, radius + 3, radius + 5, radius)[None], frames, axis=0))


def _cells() -> list[tuple[np.ndarray, np.ndarray]]:
    return [_dividing_cell(), _still_cell(6), _still_cell(9), _dividing_cell(), _still_cell(4)]


def _placed_masks(cells, placements, size: int) -> np.ndarray:
    """Rebuild each cell's (T, size, size) mask from its source and the recorded start and velocity."""
    n_frames = min(labels.shape[0] for labels, _ in cells)
    masks = np.zeros((len(cells), n_frames, size, size), dtype=bool)
    for k, placed in enumerate(placements):
        y0, x0, y1, x1 = placed["crop"]
        crop = cells[placed["source"]][0][:n_frames, y0:y1, x0:x1] > 0
        drift = np.rint(np.arange(n_frames)[:, None] * np.array(placed["velocity"])[None]).astype(int)
        corners = drift - drift[0] + placed["start"]
        for t, (y, x) in enumerate(corners):
            assert 0 <= y and 0 <= x and y + crop.shape[1] <= size and x + crop.shape[2] <= size
            masks[k, t, y : y + crop.shape[1], x : x + crop.shape[2]] = crop[t]
        assert corners[-1].tolist() == placed["end"]
    return masks


@pytest.fixture(scope="module")
def field():
    cells = _cells()
    labels, tracks, placements = compose_field(cells, 96, np.random.default_rng(3), drift=0.5, gap=2)
    return cells, labels, tracks, placements


def test_cells_never_overlap_or_come_closer_than_the_gap(field):
    cells, labels, _, placements = field
    masks = _placed_masks(cells, placements, 96)
    assert masks.sum(axis=0).max() == 1
    np.testing.assert_array_equal(masks.sum(axis=0) > 0, labels > 0)
    for k, mask in enumerate(masks):
        near = ndimage.maximum_filter(mask, size=(1, 5, 5))  # within 2 pixels (chessboard)
        assert not (near & np.delete(masks, k, axis=0).any(axis=0)).any()


def test_cells_stay_whole_and_inside_the_field(field):
    cells, labels, _, placements = field
    assert labels.shape == (FRAMES, 96, 96) and labels.dtype == np.uint16
    for placed in placements:
        source = cells[placed["source"]][0]
        # Every source pixel lands in the field: nothing is cut off at the border.
        per_frame = [np.isin(frame, placed["labels"]).sum() for frame in labels]
        assert per_frame == (source > 0).sum(axis=(1, 2)).tolist()
    # Cells also keep the gap to the border.
    assert not labels[:, :2].any() and not labels[:, -2:].any()
    assert not labels[:, :, :2].any() and not labels[:, :, -2:].any()


def test_labels_are_offset_unique_and_match_the_track_table(field):
    cells, labels, tracks, placements = field
    assert [p["source"] for p in placements] == list(range(len(cells)))
    expected = []
    for placed, (source, table) in zip(placements, cells, strict=True):
        offset = placed["label_offset"]
        assert placed["labels"] == (np.unique(source)[1:].astype(int) + offset).tolist()
        for label, begin, end, parent in table.tolist():
            expected.append([label + offset, begin, end, parent + offset if parent else 0])
        # Per frame, the cell's field labels less the offset cover as many pixels as its own labels do.
        for frame, own in zip(labels, source, strict=True):
            moved = frame[np.isin(frame, placed["labels"])].astype(int) - offset
            np.testing.assert_array_equal(
                np.bincount(moved, minlength=4), np.bincount(own[own > 0], minlength=4)
            )
    assert tracks.tolist() == sorted(expected)
    all_labels = sum((p["labels"] for p in placements), [])
    assert len(all_labels) == len(set(all_labels))
    np.testing.assert_array_equal(track_table(labels)[:, :3], tracks[:, :3])
    for frame in labels:
        for label in np.unique(frame)[1:]:
            assert ndimage.label(frame == label, structure=np.ones((3, 3)))[1] == 1


def test_dividing_cell_keeps_parent_and_daughters_with_offset_labels(field):
    _, _, tracks, placements = field
    for k in (0, 3):
        off = placements[k]["label_offset"]
        rows = tracks[np.isin(tracks[:, 0], placements[k]["labels"])].tolist()
        assert rows == [
            [1 + off, 0, DIVISION - 1, 0],
            [2 + off, DIVISION, FRAMES - 1, 1 + off],
            [3 + off, DIVISION, FRAMES - 1, 1 + off],
        ]
    assert placements[3]["label_offset"] == 3 + 1 + 1


def test_drift_moves_cells_by_speed_times_frames():
    cells = [_still_cell(5, frames=21) for _ in range(3)]
    labels, _, placements = compose_field(cells, 128, np.random.default_rng(0), drift=1.0)
    for placed in placements:
        (label,) = placed["labels"]
        first = np.array(ndimage.center_of_mass(labels[0] == label))
        last = np.array(ndimage.center_of_mass(labels[-1] == label))
        assert np.linalg.norm(last - first) == pytest.approx(20.0, abs=1.0)
        assert np.hypot(*placed["velocity"]) == pytest.approx(1.0)
    directions = {tuple(np.round(p["velocity"], 6)) for p in placements}
    assert len(directions) == 3
    still, _, _ = compose_field(cells, 128, np.random.default_rng(0), drift=0.0)
    np.testing.assert_array_equal(still[0], still[-1])


def test_same_seed_same_field_other_seed_other_field():
    cells = _cells()
    first = compose_field(cells, 96, np.random.default_rng(7))
    again = compose_field(cells, 96, np.random.default_rng(7))
    other = compose_field(cells, 96, np.random.default_rng(8))
    np.testing.assert_array_equal(first[0], again[0])
    assert first[2] == again[2]
    assert not np.array_equal(first[0], other[0])


def test_cells_are_cut_to_the_shortest_sequence_dropping_later_divisions():
    short = _still_cell(5, frames=DIVISION)
    labels, tracks, placements = compose_field([_dividing_cell(), short], 64, np.random.default_rng(1))
    assert labels.shape[0] == DIVISION
    assert tracks.tolist() == [[1, 0, DIVISION - 1, 0], [2, 0, DIVISION - 1, 0]]
    assert placements[0]["labels"] == [1] and placements[1]["label_offset"] == 1


def test_impossible_fields_raise_input_errors():
    with pytest.raises(InputError, match="field.*cell 1 is 19x19 pixels.*larger field="):
        compose_field([_still_cell(3), _still_cell(9)], 20, np.random.default_rng(0))
    crowded = [_still_cell(9) for _ in range(8)]
    with pytest.raises(
        InputError, match=r"cells_per_field.*could not place cell \d of 8 .*64x64 field after 20"
    ):
        compose_field(crowded, 64, np.random.default_rng(0), max_tries=20)
    # A drift longer than the field leaves no path inside it.
    with pytest.raises(InputError, match="slower drift="):
        compose_field([_still_cell(3)], 64, np.random.default_rng(0), drift=15.0, max_tries=5)
    with pytest.raises(InputError, match="gap"):
        compose_field([_still_cell(3)], 64, np.random.default_rng(0), gap=-1)


def test_simulated_dividing_cells_make_a_valid_ctc_sequence(tmp_path):
    cells = []
    for seed in range(3):
        frames, division, _ = simulate_frames("cele", 10, 40, np.random.default_rng(seed))
        ids = np.stack([project_components(mask, 0) for mask in frames])
        cells.append(track_single_cell(ids > 0, division, components=ids))
    labels, tracks, _ = compose_field(cells, 128, np.random.default_rng(0))
    assert len(tracks) == sum(len(table) for _, table in cells)
    assert (tracks[:, 3] > 0).sum() == sum((table[:, 3] > 0).sum() for _, table in cells) > 0
    images = np.where(labels > 0, 1000, 100).astype(np.uint16)
    gt = write_ctc_sequence(tmp_path, 1, images, labels, tracks)
    masks = parse_masks(str(gt / "TRA"))
    assert valid(
        masks, read_tracking_file(str(gt / "TRA" / "man_track.txt")), [match(None, m)[1] for m in masks]
    )
    assert read_tracking_file(str(gt / "TRA" / "man_track.txt")).tolist() == tracks.tolist()


def test_field_groups_cycle_through_the_inputs():
    assert field_groups(5, 2) == [[0, 1], [2, 3], [4, 0]]
    assert field_groups(4, 2) == [[0, 1], [2, 3]]
    assert field_groups(3, 8) == [[0, 1, 2, 0, 1, 2, 0, 1]]
    assert field_groups(2, 1) == [[0], [1]]
    with pytest.raises(InputError, match="cells_per_field"):
        field_groups(3, 0)
