"""Fidelity measurements on known cases: a simulated line vs itself and another, copies, topology."""

import numpy as np
import pytest

from cellsdf.evaluate.fidelity import describe_masks, score_generation, scorecard_table
from cellsdf.evaluate.topology import topology_summary
from cellsdf.evaluate.twosample import descriptor_scale, sequence_matrix, two_sample
from cellsdf.geometry.topology import check_rule, component_counts, fragments_per_frame
from cellsdf.simulate import sequence_rng, simulate_sequence

SPACING = (1.0, 1.0, 1.0)
SEQUENCES, FRAMES, SIZE = 12, 6, 32


def _draw(cell_line: str, seed: int) -> list[np.ndarray]:
    return [simulate_sequence(cell_line, FRAMES, SIZE, sequence_rng(seed, i)).masks for i in range(SEQUENCES)]


@pytest.fixture(scope="module")
def described():
    """Per-frame descriptors of disjoint simulator draws (seeds) of plat and filo."""
    draws = {("plat", 0), ("plat", 1), ("plat", 2), ("plat", 3), ("filo", 2)}
    return {key: describe_masks(_draw(*key), spacing=SPACING) for key in draws}


def _figure(scorecard: dict, key: str) -> dict:
    return next(row for row in scorecard["figures"] if row["key"] == key)


def test_two_draws_of_one_line_score_near_the_floor(described):
    card = score_generation(
        described[("plat", 2)], described[("plat", 0)], described[("plat", 1)], spacing=SPACING, rule="single"
    )
    nna = _figure(card, "one_nna")
    low, high = nna["interval"]
    assert low <= 50 <= high
    assert 25 <= nna["value"] <= 75
    assert nna["floor_interval"][0] <= nna["value"] <= nna["floor_interval"][1]
    assert abs(_figure(card, "mmd")["value"]) < 0.1
    assert _figure(card, "topology_kept")["value"] == 100
    assert card["counts"] == {"generated": SEQUENCES, "reference": SEQUENCES, "reference_b": SEQUENCES}


def test_two_lines_score_far_from_the_floor(described):
    card = score_generation(
        described[("filo", 2)], described[("plat", 0)], described[("plat", 1)], spacing=SPACING, rule="single"
    )
    nna = _figure(card, "one_nna")
    assert nna["value"] >= 95
    assert nna["interval"][0] > nna["floor_interval"][1]
    assert nna["meets"] is False
    assert _figure(card, "mmd")["value"] > 0.3 > _figure(card, "mmd")["floor"]
    assert _figure(card, "w1/solidity")["value"] > 3 * _figure(card, "w1/solidity")["floor"]


def test_filo_has_more_protrusions_than_plat(described):
    card = score_generation(
        described[("filo", 2)], described[("plat", 0)], described[("plat", 1)], spacing=SPACING, rule="single"
    )
    ratio = _figure(card, "end_points_ratio")
    assert ratio["value"] > 1.5
    assert ratio["meets"] is False
    assert 0.5 < ratio["floor"] < 2


def test_a_generator_that_returns_training_cells_is_flagged(described):
    training = described[("plat", 3)]
    copies = score_generation(
        training,
        described[("plat", 0)],
        described[("plat", 1)],
        training=training,
        spacing=SPACING,
        rule="single",
    )
    fresh = score_generation(
        described[("plat", 2)], described[("plat", 0)], described[("plat", 1)], training=training,
        spacing=SPACING, rule="single",
    )  # fmt: skip
    assert _figure(copies, "copies")["value"] == 100
    assert _figure(copies, "novelty_ratio")["value"] == 0
    assert _figure(fresh, "novelty_ratio")["value"] > 0.5
    assert _figure(fresh, "copies")["value"] < 50
    assert _figure(fresh, "novelty_ratio")["floor"] > 0.5


def test_scorecard_from_masks_and_its_table():
    masks = {seed: _draw("plat", seed)[:4] for seed in (0, 1, 2)}
    card = score_generation(
        masks[2], masks[0], masks[1], spacing=(0.5, 0.5, 0.5), rule="single", resamples=50
    )
    keys = [row["key"] for row in card["figures"]]
    assert keys[:3] == ["one_nna", "coverage", "mmd"]
    assert {"w1/volume", "topology_kept", "fragments_per_frame", "end_points_ratio"} <= set(keys)
    assert all({"value", "floor", "unit", "good"} <= set(row) for row in card["figures"])
    table = scorecard_table(card)
    assert table.splitlines()[0] == "| figure | value | floor | unit | good | target |"
    assert "50 % ideal, 100 % fully separable" in table
    assert scorecard_table(card, markup="html").startswith("<table>")
    import json

    json.dumps(card, allow_nan=True)


def _blob(size: int = 24) -> np.ndarray:
    z, y, x = np.mgrid[:size, :size, :size]
    return (z - 8) ** 2 + (y - 12) ** 2 + (x - 12) ** 2 <= 25


def test_a_fragment_breaks_the_single_rule():
    frames = np.stack([_blob()] * 4)
    frames[2, 20, 20, 20] = True  # a far speck in one frame
    counts = component_counts(frames)
    assert counts.tolist() == [1, 1, 2, 1]
    assert check_rule(counts, "single") == {"keeps": False, "first_break": 2, "reason": "fragments"}
    assert fragments_per_frame(counts, "single").tolist() == [0, 0, 1, 0]
    summary = topology_summary([counts, [1, 1, 1, 1]], "single")
    assert summary["kept"] == 0.5
    assert summary["fragments_per_frame"] == 1 / 8


def test_divide_once_rule():
    assert check_rule([1, 1, 2, 2], "divide_once")["keeps"]
    merged = check_rule([1, 2, 2, 1], "divide_once")
    assert merged == {"keeps": False, "first_break": 3, "reason": "merges back"}
    assert check_rule([1, 1, 1, 1], "divide_once")["reason"] == "never divides"
    assert check_rule([1, 2, 3, 2], "divide_once")["first_break"] == 2
    assert check_rule([2, 2], "divide_once")["keeps"] is False
    assert check_rule([1, 0], "single")["reason"] == "empty"
    with pytest.raises(ValueError, match="unknown topology rule"):
        check_rule([1], "twice")


def test_simulated_cele_divides_once_and_a_merge_back_fails():
    cele = simulate_sequence("cele", FRAMES, SIZE, sequence_rng(0, 0)).masks
    assert check_rule(component_counts(cele), "divide_once")["keeps"]
    merged = cele.copy()
    merged[-1] = cele[0]  # the daughters become one cell again
    result = check_rule(component_counts(merged), "divide_once")
    assert result["keeps"] is False and result["reason"] == "merges back"
    assert result["first_break"] == FRAMES - 1


def test_sequence_matrix_aligns_by_frame_index_and_two_sample_separates():
    short = [{"v": 0.0}, {"v": 1.0}]
    long = [{"v": 0.0}, {"v": 0.5}, {"v": 1.0}]
    assert np.allclose(sequence_matrix(short, ["v"], 3), sequence_matrix(long, ["v"], 3))
    rng = np.random.default_rng(1)
    a = [rng.normal(size=(3, 2)) for _ in range(16)]
    b = [rng.normal(size=(3, 2)) for _ in range(16)]
    scale = descriptor_scale(a)
    same = two_sample(a, b, scale=scale, resamples=200, seed=0)
    assert same["one_nna"]["interval"][0] <= 0.5 <= same["one_nna"]["interval"][1]
    assert same == two_sample(a, b, scale=scale, resamples=200, seed=0)  # seeded
    # Copies in a set are not their own neighbours: a set against itself is not separable.
    assert two_sample(a, a, scale=scale, resamples=0)["one_nna"]["value"] <= 0.5


def test_sequences_without_measured_frames_are_told_apart():
    rng = np.random.default_rng(2)
    reference = [rng.normal(size=(3, 2)) for _ in range(4)]
    empty = sequence_matrix([None, None], ["v", "w"], 3)
    assert np.isnan(empty).all()
    result = two_sample(reference, [empty, empty], scale=np.ones(2), resamples=0)
    assert result["one_nna"]["value"] == 1.0 and result["coverage"]["value"] == 0.0


def test_a_missed_target_is_never_printed_as_its_own_bound():
    row = {"name": "end points", "value": 0.7496, "interval": None, "floor": 1.02, "floor_interval": None}
    row |= {"unit": "× reference", "good": "1 ideal", "target": "0.75–1.33", "meets": False}
    line = scorecard_table({"figures": [row]}).splitlines()[-1]
    assert line == "| end points | 0.7496 | 1.02 | × reference | 1 ideal | 0.75–1.33 (not met) |"
    met = scorecard_table({"figures": [row | {"value": 0.7512, "meets": True}]}).splitlines()[-1]
    assert "| 0.751 |" in met and "(met)" in met
