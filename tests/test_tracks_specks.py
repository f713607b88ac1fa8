"""Divisions are decided from cells, not specks: a fragment never becomes a track (3D masks, projected)."""

import numpy as np
import pytest
from scipy import ndimage

from cellsdf.benchmark.tracks import drop_specks, track_single_cell

SIZE, FRAMES, DIVISION = 32, 6, 3


def _ball(centre: tuple[float, float, float], radius: float) -> np.ndarray:
    z, y, x = np.mgrid[:SIZE, :SIZE, :SIZE]
    return (z - centre[0]) ** 2 + (y - centre[1]) ** 2 + (x - centre[2]) ** 2 <= radius**2


def _speck(frame: np.ndarray) -> None:
    frame[2, 2:4, 2:5] = True  # 6 voxels, far from the cell


def _project(masks: np.ndarray) -> np.ndarray:
    """Projected 3D components along z, as ``cellsdf benchmark`` makes them: the first object on each ray."""
    out = []
    for mask in masks:
        ids, _ = ndimage.label(mask, structure=np.ones((3, 3, 3)))
        first = (ids > 0).argmax(axis=0)[None]
        out.append(np.take_along_axis(ids, first, axis=0)[0])
    return np.stack(out)


def _track(masks: np.ndarray, division_frame: int | None = None):
    ids = _project(masks)
    return ids, *track_single_cell(ids > 0, division_frame, components=ids)


def test_a_speck_in_one_frame_is_not_a_division():
    masks = np.stack([_ball((16, 16, 16), 7)] * FRAMES)
    _speck(masks[2])
    ids, labels, tracks = _track(masks)
    assert tracks.tolist() == [[1, 0, FRAMES - 1, 0]]
    assert labels[2, 2:4, 2:5].max() == 0  # the speck is background in the label image
    assert set(np.unique(labels)) == {0, 1}
    assert (labels[2] > 0).sum() == (ids[2] > 0).sum() - 6


def _dividing() -> np.ndarray:
    frames = []
    for t in range(FRAMES):
        if t < DIVISION:
            frames.append(_ball((16, 16, 16), 7))
        else:
            d = 5 + t
            frames.append(_ball((16, 16, 16 - d), 5) | _ball((16, 16, 16 + d), 5))
    return np.stack(frames)


@pytest.mark.parametrize("recorded", [None, DIVISION])
def test_a_real_division_with_specks_gives_two_daughters(recorded):
    masks = _dividing()
    _speck(masks[1])  # before the division
    _speck(masks[DIVISION + 1])  # after it
    _, labels, tracks = _track(masks, recorded)
    assert tracks.tolist() == [
        [1, 0, DIVISION - 1, 0],
        [2, DIVISION, FRAMES - 1, 1],
        [3, DIVISION, FRAMES - 1, 1],
    ]
    for t in range(DIVISION, FRAMES):  # each daughter has its own label, the speck none
        left, right = labels[t, 16, 16 - (5 + t)], labels[t, 16, 16 + (5 + t)]
        assert {int(left), int(right)} == {2, 3}
        assert labels[t, 2:4, 2:5].max() == 0


def test_a_speck_at_the_recorded_division_frame_waits_for_the_daughters():
    # The case: in the recorded division frame the daughters still touch, and a speck is apart.
    masks = _dividing()
    masks[DIVISION] = _ball((16, 16, 12), 6) | _ball((16, 16, 20), 6)  # one dumbbell
    _speck(masks[DIVISION])
    _, labels, tracks = _track(masks, DIVISION)
    assert tracks.tolist() == [
        [1, 0, DIVISION, 0],
        [2, DIVISION + 1, FRAMES - 1, 1],
        [3, DIVISION + 1, FRAMES - 1, 1],
    ]
    assert labels[DIVISION, 2:4, 2:5].max() == 0
    sizes = [int((labels[-1] == label).sum()) for label in (2, 3)]
    assert min(sizes) > 0.5 * max(sizes)  # two real daughters, not a daughter and a speck


def test_min_fraction_zero_keeps_every_piece_and_bad_values_are_refused():
    ids = np.array([[1] * 20 + [0, 2]])
    assert drop_specks(ids, min_fraction=0)[1] == 2
    assert drop_specks(ids)[1] == 1
    with pytest.raises(ValueError, match="min_fraction"):
        track_single_cell(np.zeros((1, 4, 4), bool), min_fraction=1.5)
