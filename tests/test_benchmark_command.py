import json
from pathlib import Path

import numpy as np
import pytest
import tifffile
from ctc_metrics.metrics import valid
from ctc_metrics.utils.filesystem import parse_masks, read_tracking_file
from ctc_metrics.utils.representations import match
from scipy import ndimage

from cellsdf.benchmark.seg import seg_measure
from cellsdf.cli import main

PLAT = Path(__file__).resolve().parents[1] / "data" / "models" / "plat" / "model.pt"


@pytest.fixture(scope="module")
def cele(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cele")
    args = ["cellline=cele", f"out={folder}", "sequences=2", "frames=8", "size=48", "progress=false"]
    main(["simulate", *args])
    return folder


def test_benchmark_writes_a_valid_ctc_dataset_with_divisions(cele, tmp_path):
    out = tmp_path / "bench"
    main(["benchmark", f"source={cele}", f"out={out}", "progress=false"])
    recorded = json.loads((cele / "manifest.json").read_text())["items"]
    result = json.loads((out / "benchmark.json").read_text())
    assert sorted(result["sequences"]) == ["01", "02"]
    for number, item in zip(("01", "02"), recorded, strict=True):
        images = [tifffile.imread(out / number / f"t{k:03d}.tif") for k in range(8)]
        seg = out / f"{number}_GT" / "SEG"
        truth = np.stack([tifffile.imread(seg / f"man_seg{k:03d}.tif") for k in range(8)])
        assert all(i.dtype == np.uint16 and i.shape == (48, 48) for i in images) and truth.dtype == np.uint16
        assert seg_measure(truth, truth, timelapse=True) == 1.0
        # The simulator's recorded division: the parent ends the frame before, two daughters start with it,
        # also where the daughters overlap in the projection (3D components are projected, not 2D ones).
        division = item["division_frame"]
        tracks = read_tracking_file(str(out / f"{number}_GT" / "TRA" / "man_track.txt")).tolist()
        assert tracks == [[1, 0, division - 1, 0], [2, division, 7, 1], [3, division, 7, 1]]
        masks = parse_masks(str(out / f"{number}_GT" / "TRA"))
        assert valid(masks, np.array(tracks), [match(None, m)[1] for m in masks]) == 1
        # Cells stay visible in the textured images: the Otsu baseline finds them.
        assert result["sequences"][number]["baseline_seg"] > 0.5
    assert 0.5 < result["baseline_seg"] <= 1.0
    assert json.loads((out / "manifest.json").read_text())["command"] == "benchmark"


def test_benchmark_of_generated_cells(tmp_path):
    generated = tmp_path / "gen"
    main(["generate", "ckpt=plat", "n=1", "frames=3", "resolution=32", f"out={generated}", "progress=false"])
    main(["benchmark", f"source={generated}", f"out={tmp_path / 'bench'}", "progress=false", "axis=1"])
    result = json.loads((tmp_path / "bench" / "benchmark.json").read_text())
    assert result["projection_axis"] == "y" and result["sequences"]["01"]["tracks"] == 1
    # A plat cell does not divide: one track, label 1, over all frames.
    tracks = read_tracking_file(str(tmp_path / "bench" / "01_GT" / "TRA" / "man_track.txt")).tolist()
    assert tracks == [[1, 0, 2, 0]]


def _refused(capsys, *args):
    with pytest.raises(SystemExit) as err:
        main(["benchmark", "progress=false", *args])
    assert err.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1
    return lines[0]


def test_bad_inputs(cele, tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    assert "holds no masks" in _refused(capsys, f"source={empty}", f"out={tmp_path / 'a'}")
    intensity = tmp_path / "intensity"
    intensity.mkdir()
    noise = np.random.default_rng(0).integers(0, 4000, (3, 8, 16, 16)).astype(np.uint16)
    tifffile.imwrite(intensity / "cell.tif", noise, imagej=True, metadata={"axes": "TZYX"})
    assert "intensity image" in _refused(capsys, f"source={intensity}", f"out={tmp_path / 'b'}")
    occupied = tmp_path / "occupied"
    occupied.mkdir()
    (occupied / "notes.txt").write_text("mine")
    assert "overwrite=true" in _refused(capsys, f"source={cele}", f"out={occupied}")
    assert sorted(p.name for p in occupied.iterdir()) == ["notes.txt"]
    assert "Could not find 'texture/watercolour'; available: gan, procedural" in _refused(
        capsys, f"source={cele}", f"out={tmp_path / 'c'}", "texture=watercolour"
    )
    for name, options in [
        ("realism_seeds", ["realism_seeds=-1"]),
        ("cells_per_field", ["cells_per_field=0"]),
        ("field", ["cells_per_field=2", "field=16"]),  # 48² cells cannot fit a 16² field
    ]:
        line = _refused(capsys, f"source={cele}", f"out={tmp_path / name}", *options)
        assert line.startswith(f"cellsdf benchmark: error: {name}")
        assert not (tmp_path / name).exists() or not any((tmp_path / name).iterdir())
    frames = tmp_path / "frames"  # a folder of single 3D frames is one sequence
    frames.mkdir()
    tifffile.imwrite(frames / "t000.tif", np.full((8, 16, 16), 255, np.uint8))
    tifffile.imwrite(frames / "t001.tif", np.full((8, 20, 16), 255, np.uint8))
    assert "must share their shape" in _refused(capsys, f"source={frames}", f"out={tmp_path / 'd'}")


def test_gan_texture_multi_cell_fields_and_realism(cele, tmp_path):
    out = tmp_path / "fields"
    args = ["texture=gan", "cells_per_field=2", "field=96", "realism_seeds=2", f"source={cele}", f"out={out}"]
    main(["benchmark", "progress=false", *args])
    result = json.loads((out / "benchmark.json").read_text())
    assert result["texture"] == "gan" and result["cells_per_field"] == 2
    # Two input cells cycle into one field: both dividing cele cells give parent + 2 daughters each.
    assert list(result["sequences"]) == ["01"]
    entry = result["sequences"]["01"]
    assert entry["shape"] == [96, 96] and entry["divisions"] == 2 and len(entry["placements"]) == 2
    truth = np.stack([tifffile.imread(out / "01_GT" / "SEG" / f"man_seg{k:03d}.tif") for k in range(8)])
    tracks = read_tracking_file(str(out / "01_GT" / "TRA" / "man_track.txt"))
    assert len(tracks) == 6 and sorted(tracks[tracks[:, 3] > 0, 3].tolist()) == [1, 1, 4, 4]
    masks = parse_masks(str(out / "01_GT" / "TRA"))
    assert valid(masks, tracks, [match(None, m)[1] for m in masks]) == 1
    # The two cells never touch (sister daughters may): a label grown by one pixel meets only its own cell.
    cell = {int(label): int(parent or label) for label, _, _, parent in tracks}
    for frame in truth:
        for label in np.unique(frame[frame > 0]):
            grown = ndimage.binary_dilation(frame == label)
            assert {cell[int(v)] for v in np.unique(frame[grown]) if v} == {cell[int(label)]}
    images = np.stack([tifffile.imread(out / "01" / f"t{k:03d}.tif") for k in range(8)])
    assert images.dtype == np.uint16 and images[truth > 0].mean() > 1.5 * images[truth == 0].mean()
    realism = result["realism"]
    assert realism["seeds"] == 2 and set(realism) >= {"gan", "procedural"}
    for name in ("gan", "procedural"):
        figures = realism[name]
        assert all(np.isfinite(v) and v >= 0 for v in figures.values())


def test_texture_checkpoint_missing_or_for_other_frames(cele, tmp_path, capsys):
    missing = tmp_path / "nowhere" / "model.pt"
    line = _refused(
        capsys, f"source={cele}", f"out={tmp_path / 'a'}", "texture=gan", f"texture.checkpoint={missing}"
    )
    assert str(missing) in line and "not found" in line
    foreign = _refused(
        capsys,
        f"source={cele}",
        f"out={tmp_path / 'b'}",
        "texture=gan",
        f"texture.checkpoint={PLAT}",
    )
    assert "not a cellsdf texture model" in foreign
    odd = tmp_path / "odd"  # 20 x 20 frames: the shipped GAN needs sides that are multiples of 8
    odd.mkdir()
    tifffile.imwrite(
        odd / "cell.tif", np.pad(np.full((2, 4, 8, 8), 255, np.uint8), ((0, 0), (2, 2), (6, 6), (6, 6)))
    )
    line = _refused(capsys, f"source={odd}", f"out={tmp_path / 'c'}", "texture=gan")
    assert "(20, 20)" in line and "multiples of 8" in line
    assert not (tmp_path / "c").exists() or not any((tmp_path / "c").iterdir())
