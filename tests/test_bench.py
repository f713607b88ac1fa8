"""``cellsdf bench`` rows at tiny sizes: the Row type, its JSON entry, and the row functions."""

import json

import pytest

from cellsdf.bench import Row
from cellsdf.bench.measure import fastest, measure

pytestmark = pytest.mark.usefixtures("one_thread")

CORE = ["row", "ours", "reference", "ratio", "target", "passed", "peak_mib"]


def test_row_entry_keeps_the_bench_json_format():
    row = Row("prepare plat 3x24³ (s)", 0.5, 2.0, 4.0, ">= 3x vs full-grid scipy EDT", None, 12.5)
    entry = row.to_dict()
    assert list(entry) == CORE and entry["row"] == "prepare plat 3x24³ (s)" and entry["ratio"] == 4.0
    assert json.loads(json.dumps(entry)) == entry
    # Optional fields appear only when set, after the core ones.
    decode = Row(
        "decode", 99.95, None, None, ">= 99.9 % of voxels", True, 3.0, points=10, reference_points=80
    )
    assert list(decode.to_dict()) == [*CORE, "points", "reference_points"]
    with pytest.raises(TypeError):
        Row("x", 1.0, None, None, "t", None, 0.0, 5)  # the optional fields are keyword-only


@pytest.mark.parametrize(
    ("passed", "target", "verdict"),
    [
        (True, "<= 2 s", "yes"),
        (False, "<= 2 s", "NO"),
        (None, "<= 2 s", "- (judged at 256³)"),
        (None, "(x)", "-"),
    ],
)
def test_row_cells(passed, target, verdict):
    row = Row("r", 1234.5, 0.25, 2.0, target, passed, None)
    assert row.cells() == ("r", "1234", "0.250", "2.0x", target, "-", verdict)


def test_measure_and_fastest():
    seconds, peak = measure(lambda: bytearray(2**21))
    assert seconds > 0 and peak >= 2.0
    calls = []
    best = fastest(
        {"a": lambda: calls.append("a"), "b": lambda: calls.append("b")}, warmup=1, timed=2, rounds=2
    )
    assert set(best) == {"a", "b"} and all(s > 0 for s, _ in best.values())
    assert calls == ["a", "b"] + ["a", "a", "b", "b"] * 2  # warm-up, then variants take turns
