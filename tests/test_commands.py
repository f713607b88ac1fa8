import json

import numpy as np
import pytest
import torch
from scipy import ndimage

from cellsdf.cli import main
from cellsdf.dataset.prepared import read_prepared
from cellsdf.decode.dense import bf16_fast
from cellsdf.io.tiff import read_timelapse

SMALL = ["frames=6", "size=32", "progress=false"]


def simulate(out, *args):
    main(["simulate", f"out={out}", *SMALL, *args])


def test_simulate_writes_timelapses_and_manifest(tmp_path):
    simulate(tmp_path / "cele", "cellline=cele", "sequences=2")
    manifest = json.loads((tmp_path / "cele" / "manifest.json").read_text())
    assert manifest["command"] == "simulate" and manifest["seed"] == 0
    for item in manifest["items"]:
        stack = read_timelapse(tmp_path / "cele" / item["file"])
        assert stack.data.shape == (6, 32, 32, 32)
        assert stack.spacing == pytest.approx((0.8, 0.8, 0.8))  # 0.1 µm at 256³, same field of view
        full = np.ones((3, 3, 3), bool)
        components = [ndimage.label(frame, full)[1] for frame in stack.data]
        assert components == item["components"]
        division = item["division_frame"]
        assert 0 < division < 6
        assert components[:division] == [1] * division and components[division:] == [2] * (6 - division)
        assert [int((f > 0).sum()) for f in stack.data] == item["voxels"]


def test_same_seed_same_files_and_other_seed_differs(tmp_path):
    for name, seed in (("a", 3), ("b", 3), ("c", 4)):
        simulate(tmp_path / name, "cellline=filo", "sequences=2", f"seed={seed}")
    for i in range(2):
        a, b, c = (read_timelapse(tmp_path / n / f"filo_00{i}.tif").data for n in "abc")
        assert (tmp_path / "a" / f"filo_00{i}.tif").read_bytes() == (
            tmp_path / "b" / f"filo_00{i}.tif"
        ).read_bytes()
        np.testing.assert_array_equal(a, b)
        assert not np.array_equal(a, c)
    first, second = (read_timelapse(tmp_path / "a" / f"filo_00{i}.tif").data for i in range(2))
    assert not np.array_equal(first, second)  # sequences differ from each other


def test_simulate_refuses_existing_output(tmp_path, capsys):
    simulate(tmp_path / "p", "sequences=1")
    before = (tmp_path / "p" / "plat_000.tif").read_bytes()
    with pytest.raises(SystemExit) as exit_info:
        simulate(tmp_path / "p", "sequences=1", "seed=9")
    assert exit_info.value.code == 2
    assert "plat_000.tif: output already exists" in capsys.readouterr().err
    assert (tmp_path / "p" / "plat_000.tif").read_bytes() == before
    simulate(tmp_path / "p", "sequences=1", "seed=9", "overwrite=true")
    assert (tmp_path / "p" / "plat_000.tif").read_bytes() != before


def test_prepare_reads_division_frames_of_simulated_folder(tmp_path):
    simulate(tmp_path / "cele", "cellline=cele", "sequences=2")
    main(
        [
            "prepare",
            f"input={tmp_path / 'cele'}",
            f"out={tmp_path / 'c.h5'}",
            "points_per_frame=256",
            "eval_size=16",
        ]
    )
    manifest = json.loads((tmp_path / "cele" / "manifest.json").read_text())
    data = read_prepared(tmp_path / "c.h5")
    assert [s.division_frame for s in data.sequences] == [i["division_frame"] for i in manifest["items"]]
    assert [s.spacing for s in data.sequences] == [pytest.approx((0.8, 0.8, 0.8))] * 2


def test_demo_runs_end_to_end(tmp_path, capsys):
    main(["demo", f"out={tmp_path / 'demo'}", "sequences=1", "frames=3", "size=24", "progress=false"])
    printed = capsys.readouterr().out
    assert str((tmp_path / "demo" / "preview.png").resolve()) in printed
    assert (tmp_path / "demo" / "preview.png").stat().st_size > 10_000
    for line in ("plat", "cele", "filo"):
        assert read_prepared(tmp_path / "demo" / "prepared" / f"{line}.h5").points.shape[0] == 3
        generated = json.loads((tmp_path / "demo" / "generated" / line / "manifest.json").read_text())
        assert [item["name"] for item in generated["items"]] == ["gen_000", "gen_001", "gen_002"]
        assert read_timelapse(tmp_path / "demo" / "generated" / line / "gen_000" / "mask.tif").data.shape == (
            3,
            24,
            24,
            24,
        )
    report = json.loads((tmp_path / "demo" / "report" / "metrics.json").read_text())
    assert report["inputs"]["generated"]["sequences"] == 3
    benchmark = json.loads((tmp_path / "demo" / "benchmark" / "benchmark.json").read_text())
    # The three generated cele cells drift in one GAN-textured field.
    assert benchmark["texture"] == "gan" and list(benchmark["sequences"]) == ["01"]
    field = benchmark["sequences"]["01"]
    assert len(field["placements"]) == 3 and field["shape"] == [192, 192]
    assert set(benchmark["realism"]) >= {"gan", "procedural"}
    assert (tmp_path / "demo" / "benchmark" / "01_GT" / "TRA" / "man_track.txt").is_file()


def test_bench_writes_rows(tmp_path, capsys):
    out = tmp_path / "bench.json"
    main(
        [
            "bench",
            "size=24",
            "simulate_frames=2",
            "prepare_frames=3",
            "evaluate_frames=2",
            "points_per_frame=200",
            "compile_limit_s=null",
            "generate_frames=2",
            "generate_cells=2",
            "memory_frames=1",
            "benchmark_sequences=3",
            "benchmark_frames=2",
            "benchmark_distinct=2",
            "volume_frames=3",
            "threads_commands=[]",
            f"out={out}",
        ]
    )
    rows = json.loads(out.read_text())["rows"]
    # Each row is printed as it is measured, before the table.
    printed = capsys.readouterr().out
    assert printed.index(f"{rows[-1]['row']}: ours") < printed.index("cellsdf bench (size 24)")
    expected = ["simulate"] * 3 + ["signed", "prepare", "evaluate", "train", "train"] + ["decode"] * 13
    assert [r["row"].split()[0] for r in rows] == [
        *expected,
        "mesh",
        "generate",
        "generate",
        "generate",
        "benchmark",
        "benchmark",
        "benchmark",
        "lift",
    ]
    lift_row = rows.pop()
    volume_memory, volume_speed = rows.pop(), rows.pop()
    assert volume_speed["row"].startswith("benchmark dims=3: 1 cele cell, 3 frames of 24³")
    assert volume_memory["reference"] > 0 and volume_memory["passed"] is None
    assert "16² mask" in lift_row["row"] and lift_row["ours"] > 0 and lift_row["passed"] is None
    benchmark_row = rows.pop()
    assert benchmark_row["row"] == "benchmark gan: 3 x 2 frames at 24² (s)" and benchmark_row["ours"] > 0
    assert benchmark_row["passed"] is None
    memory_row = rows.pop()
    assert "peak memory at 24³" in memory_row["row"] and memory_row["ratio"] > 0
    assert memory_row["passed"] is None
    cells_row = rows.pop()
    assert "2 cells x 2 frames at 24³" in cells_row["row"] and "projected to 33 cells" in cells_row["row"]
    assert cells_row["ours"] > 0 and cells_row["passed"] is None
    generate_row = rows.pop()
    assert "2 frames at 24³" in generate_row["row"] and generate_row["ours"] > 0
    assert generate_row["passed"] is None
    mesh_row = rows.pop()
    assert "at 24³" in mesh_row["row"] and 0 < mesh_row["ours"] < mesh_row["reference"]
    assert mesh_row["passed"] is None
    gpu = rows.pop()
    assert "on CUDA" in gpu["row"] and (gpu["ours"] is None) == (not torch.cuda.is_available())
    untrained = rows.pop()
    assert untrained["points"] >= untrained["reference_points"] == 8**3 and untrained["ratio"] > 0
    tracked_agreement, tracked_speed, tracked_points = rows[-3:]
    del rows[-3:]
    assert tracked_agreement["ours"] >= 99.9 and tracked_speed["ours"] > 0 and tracked_points["ratio"] > 0
    # Decode rows, per size (12³, 24³): agreement with dense, bf16 agreement with float32; then at 24³ speed
    # against dense, bf16 speed against float32, points against the surface's voxels, memory.
    decode = rows[-8:]
    bf16 = bf16_fast("cpu")
    assert all((r["ours"] is not None) == bf16 for r in (decode[1], decode[3], decode[5]))
    # The last decode row is a memory rise in a fresh process, which may be 0 MiB on so small a grid.
    assert all(r["ours"] > 0 for r in rows[:-1] if r["ours"] is not None) and all(
        r["peak_mib"] >= 0 for r in rows if r["peak_mib"] is not None
    )
    assert all(r["ratio"] > 0 for r in rows[3:8] + [decode[4], decode[6]])
    # Decode rows at grids scaled down from 128³ and 256³: not judged, but the masks must still agree.
    agreement = [decode[0], decode[2]] + ([decode[1], decode[3]] if bf16 else [])
    assert ["12³" in decode[0]["row"], "24³" in decode[2]["row"]] == [True, True]
    assert all(r["ours"] >= 99.9 and r["passed"] is None for r in agreement)
    assert decode[4]["points"] > 0 and decode[4]["reference_points"] == 24**3
    assert (
        decode[6]["reference_points"] > 0
        and decode[6]["ratio"] == decode[4]["points"] / decode[6]["reference_points"]
    )


@pytest.mark.parametrize("command", ["simulate", "prepare"])
def test_bad_spacing_is_refused(tmp_path, capsys, command):
    if command == "prepare":
        simulate(tmp_path / "p", "sequences=1")
    args = (
        [f"input={tmp_path / 'p'}", f"out={tmp_path / 'd.h5'}"]
        if command == "prepare"
        else [f"out={tmp_path / 'p'}", *SMALL]
    )
    with pytest.raises(SystemExit) as exit_info:
        main([command, "spacing=[1.0,-0.5,0.5]", *args])
    assert exit_info.value.code == 2
    assert (
        "spacing: needs three positive numbers (z, y, x) in µm, got [1.0, -0.5, 0.5]"
        in capsys.readouterr().err
    )
    assert not (tmp_path / "d.h5").exists()
