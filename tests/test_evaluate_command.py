import json
import tracemalloc

import numpy as np
import pytest
import tifffile

from cellsdf.cli import main
from cellsdf.dataset.prepare import prepare_dataset
from cellsdf.dataset.sources import find_sequences
from cellsdf.evaluate.pipeline import evaluate_folders
from cellsdf.io.tiff import read_timelapse, write_timelapse

SHAPE_DESCRIPTORS = ("volume", "area", "sphericity", "flatness", "solidity", "mean_curvature")


@pytest.fixture(scope="module")
def simulated(tmp_path_factory):
    root = tmp_path_factory.mktemp("simulated")
    for name, line, seed in (("plat1", "plat", 1), ("plat2", "plat", 2), ("filo1", "filo", 1)):
        main(
            ["simulate", f"cellline={line}", "sequences=4", "frames=3", "size=40", f"out={root / name}"]
            + ["progress=false", f"seed={seed}"]
        )
    return root


def evaluate(real, generated, out, *options):
    main(
        [
            "evaluate",
            f"real={real}",
            f"generated={generated}",
            f"out={out}",
            "progress=false",
            "workers=1",
            *options,
        ]
    )
    return json.loads((out / "metrics.json").read_text())


def mean_distance(metrics):
    return np.mean([metrics["distributions"][n]["wasserstein_normalised"] for n in SHAPE_DESCRIPTORS])


def test_plat_vs_filo_far_apart_two_plat_seeds_close(simulated, tmp_path, capsys):
    same = evaluate(simulated / "plat1", simulated / "plat2", tmp_path / "same")
    assert capsys.readouterr().err == ""
    far = evaluate(simulated / "plat1", simulated / "filo1", tmp_path / "far", "workers=2")
    assert mean_distance(far) > 3 * mean_distance(same)
    assert mean_distance(same) < 2.0
    assert far["shapes"]["summary"]["1nna"] >= 0.9 > same["shapes"]["summary"]["1nna"]
    assert far["shapes"]["summary"]["mmd"] > same["shapes"]["summary"]["mmd"]
    # One sample per sequence, not per frame (frames of one cell are each other's nearest neighbours).
    assert far["shapes"]["summary"]["n_real"] == 4 and far["shapes"]["floor"]["n_real"] == 2
    far_sets, same_sets = far["sequence_sets"], same["sequence_sets"]
    assert far_sets["real_vs_generated"]["n_reference"] == 4 and far_sets["frames"] == 3
    assert far_sets["real_vs_generated"]["one_nna"]["value"] == 1.0
    low, high = same_sets["real_vs_generated"]["one_nna"]["interval"]
    assert low <= 0.5 <= high
    assert far_sets["floor"]["n_reference"] == 2 and far_sets["floor"]["one_nna"]["value"] <= 0.75
    # The cell lines have different voxel sizes at the same grid size: said, and compared in µm.
    assert (
        "voxel spacing differs: real (0.64, 0.64, 0.64) µm, generated (1.28, 1.28, 1.28) µm"
        in capsys.readouterr().err
    )
    assert far["spacing"]["match"] is False and same["spacing"]["match"] is True
    assert far["inputs"]["real"]["frames"] == 12 and far["inputs"]["real"]["sequences"] == 4
    assert len(far["inputs"]["generated"]["sha256"]) == 64
    sequence = far["sequences"]["real"][0]
    assert len(sequence["descriptors"]) == 3 and sequence["temporal_iou"][0] is None


def test_report_files_manifest_and_overwrite(simulated, tmp_path, capsys):
    out = tmp_path / "report"
    evaluate(
        simulated / "plat1", simulated / "plat2", out, "metrics=[volume,temporal_iou,1nna]", "per_frame=true"
    )
    metrics = json.loads((out / "metrics.json").read_text())
    assert list(metrics["distributions"]) == ["volume", "temporal_iou"]
    assert [e["frame"] for e in metrics["shapes"]["per_frame"]] == [0, 1, 2]
    assert set(metrics["shapes"]["summary"]) == {"1nna"}
    assert metrics["sequence_sets"]["descriptors"] == ["volume"]
    page = (out / "report.html").read_text()
    # 1-NNA in %, in the page and on the console, as every other figure of cellsdf.
    one_nna = 100 * metrics["shapes"]["summary"]["1nna"]
    assert "<th>1-NNA (%)</th>" in page and f"1-NNA {one_nna:.1f} %" in capsys.readouterr().out
    for png in ("distributions.png", "over_time.png", "montage.png"):
        assert f'src="{png}"' in page and (out / png).stat().st_size > 5_000
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["command"] == "evaluate" and manifest["config"]["per_frame"] is True
    assert manifest["inputs"]["real"]["sha256"] == metrics["inputs"]["real"]["sha256"]
    with pytest.raises(SystemExit) as exc:
        evaluate(simulated / "plat1", simulated / "plat2", out)
    assert exc.value.code == 2 and "already exists" in capsys.readouterr().err


def test_empty_frame_is_reported_not_fatal(simulated, tmp_path, capsys):
    masks = read_timelapse(simulated / "plat2" / "plat_000.tif").data > 0
    masks[1] = False
    folder = tmp_path / "with_gap"
    write_timelapse(folder / "gap.tif", masks, spacing=(0.64, 0.64, 0.64))
    metrics = evaluate(simulated / "plat1", folder, tmp_path / "out", "metrics=[volume,volume_growth]")
    problem = metrics["problems"][0]
    assert (problem["input"], problem["sequence"], problem["frame"]) == ("generated", "gap", 1)
    assert "empty" in problem["problem"]
    assert metrics["sequences"]["generated"][0]["descriptors"][1] is None
    assert metrics["distributions"]["volume"]["n_generated"] == 2
    assert "1 frame(s) skipped" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("option", "message"),
    [
        ("metrics=[volume,bogus]", "unknown metric(s) bogus; valid: all, volume, area"),
        ("spacing_real=[1,0,1]", "spacing_real: needs three positive numbers"),
        ("points=3", "points: must be an integer >= 16"),
    ],
)
def test_bad_options(simulated, tmp_path, capsys, option, message):
    with pytest.raises(SystemExit) as exc:
        evaluate(simulated / "plat1", simulated / "plat2", tmp_path / "out", option)
    assert exc.value.code == 2
    assert message in capsys.readouterr().err


def test_folders_without_masks(simulated, tmp_path, capsys):
    (tmp_path / "nothing").mkdir()
    (tmp_path / "nothing" / "notes.txt").write_text("no masks here")
    with pytest.raises(SystemExit) as exc:
        evaluate(simulated / "plat1", tmp_path / "nothing", tmp_path / "out")
    assert exc.value.code == 2 and "holds no masks" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        evaluate(tmp_path / "missing", simulated / "plat1", tmp_path / "out")
    assert "not found" in capsys.readouterr().err
    blank = tmp_path / "blank"
    write_timelapse(blank / "blank.tif", np.zeros((2, 8, 8, 8), bool))
    with pytest.raises(SystemExit):
        evaluate(simulated / "plat1", blank, tmp_path / "out")
    assert "every frame is empty" in capsys.readouterr().err


def test_bad_files_are_refused_also_from_worker_processes(simulated, tmp_path, capsys):
    noisy = tmp_path / "noisy"
    noisy.mkdir()
    rng = np.random.default_rng(0)
    for i in range(2):
        tifffile.imwrite(noisy / f"n{i}.tif", rng.integers(1, 60000, (8, 8, 8), dtype=np.uint16))
    with pytest.raises(SystemExit) as exc:
        evaluate(simulated / "plat1", noisy, tmp_path / "out", "workers=2")
    assert exc.value.code == 2 and "looks like an intensity image" in capsys.readouterr().err
    broken = tmp_path / "broken.h5"
    broken.write_bytes(b"not an HDF5 file")
    with pytest.raises(SystemExit):
        evaluate(broken, simulated / "plat1", tmp_path / "out")
    assert "broken.h5: unreadable HDF5 file" in capsys.readouterr().err


def test_unknown_spacing_is_assumed_then_overridden(simulated, tmp_path, capsys):
    masks = read_timelapse(simulated / "plat2" / "plat_001.tif").data
    folder = tmp_path / "plain"
    folder.mkdir()
    tifffile.imwrite(folder / "cell.tif", masks)  # no ImageJ metadata: the file states no voxel size
    evaluate(simulated / "plat1", folder, tmp_path / "a", "metrics=[volume]")
    err = capsys.readouterr().err
    assert (
        "some generated files state no voxel size; taken as (0.64, 0.64, 0.64) µm from the other input" in err
    )
    assert "differs" not in err
    metrics = evaluate(
        simulated / "plat1", folder, tmp_path / "b", "metrics=[volume]", "spacing_generated=[1.28,1.28,1.28]"
    )
    err = capsys.readouterr().err
    assert "state no voxel size" not in err and "voxel spacing differs" in err
    assert metrics["spacing"]["generated"] == {"spacing": [[1.28, 1.28, 1.28]], "assumed": False}
    # Twice the voxel size is eight times the volume in µm³.
    plain = evaluate(
        simulated / "plat2", folder, tmp_path / "c", "metrics=[volume]", "spacing_generated=[0.64,0.64,0.64]"
    )
    ratio = (
        metrics["distributions"]["volume"]["mean_generated"]
        / plain["distributions"]["volume"]["mean_generated"]
    )
    assert ratio == pytest.approx(8.0)


def test_prepared_dataset_and_generator_folders(simulated, tmp_path):
    prepared = prepare_dataset(
        find_sequences(simulated / "plat1"), tmp_path / "plat1.h5", points_per_frame=64, eval_size=40
    )
    generated = tmp_path / "generated"
    for i, file in enumerate(sorted((simulated / "plat1").glob("*.tif"))):
        stack = read_timelapse(file)
        write_timelapse(generated / f"gen_{i:03d}" / "mask.tif", stack.data > 0, spacing=stack.spacing)
    result = evaluate_folders(prepared, generated, tmp_path / "out", metrics=["volume", "area"], workers=1)
    metrics = result["metrics"]
    assert [s["name"] for s in metrics["sequences"]["generated"]] == [f"gen_{i:03d}" for i in range(4)]
    # Evaluation masks live on their own grid; in µm the cells measure the same as in the source TIFFs.
    volume = metrics["distributions"]["volume"]
    assert volume["mean_real"] == pytest.approx(volume["mean_generated"], rel=0.15)
    assert metrics["spacing"]["match"] is False and result["notes"]


def test_evaluate_config_defaults(compose_cfg):
    cfg = compose_cfg("evaluate", ["real=a", "generated=b"])
    assert (cfg.metrics, cfg.per_frame, cfg.workers, cfg.out) == ("all", False, 2, None)


def test_evaluate_without_out_is_refused_like_prepare(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exit_info:
        main(["evaluate", "real=a.tif", "generated=b"])
    assert exit_info.value.code == 2
    assert "and out=<folder>" in capsys.readouterr().err and not (tmp_path / "report").exists()


def test_memory_does_not_grow_with_frames(tmp_path):
    from cellsdf.evaluate.inputs import list_sequences
    from cellsdf.evaluate.sequence import describe_sequence

    z, y, x = np.meshgrid(*[np.arange(96) - 48] * 3, indexing="ij", sparse=True)
    peaks = []
    for frames in (2, 12):
        masks = np.stack([z**2 + y**2 + (x - t) ** 2 <= 20**2 for t in range(frames)])
        file = write_timelapse(tmp_path / f"{frames}.tif", masks)
        spec = list_sequences(file)[0]
        del masks
        tracemalloc.start()
        describe_sequence(spec, names=("volume", "area", "end_points"), points=256)
        peaks.append(tracemalloc.get_traced_memory()[1] / 2**20)
        tracemalloc.stop()
    # Ten more 96³ frames would add 8.4 MiB as bool masks alone if they were read at once.
    assert peaks[1] < peaks[0] + 2.0
