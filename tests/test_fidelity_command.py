import json

import pytest

from cellsdf.cli import main
from cellsdf.simulate.lines import get_line, line_spacing


def test_fidelity_scores_a_shipped_model_with_floors(tmp_path):
    out = tmp_path / "fid"
    args = ["ckpt=plat", "cellline=plat", "n=4", "frames=3", "size=32", "resamples=50", "progress=false"]
    main(["fidelity", f"out={out}", *args])
    card = json.loads((out / "fidelity.json").read_text())
    keys = {row["key"] for row in card["figures"]}
    assert {"one_nna", "coverage", "mmd", "topology_kept", "end_points_ratio"} <= keys
    for row in card["figures"]:
        assert "floor" in row and "unit" in row and "good" in row
    # The shipped model's recipe makes all 33 of its training cells again, for the novelty figures.
    assert card["counts"] == {"generated": 4, "reference": 4, "reference_b": 4, "training": 33}
    assert {"novelty_ratio", "copies"} <= keys
    # Generated cells are decoded at the references' voxel size, so descriptors compare in the same µm.
    assert card["generated_spacing"][0] == pytest.approx(card["spacing"][0], rel=0.05)
    assert card["grid"] == 32
    assert "| 1-NNA |" in (out / "scorecard.md").read_text()
    for name in ("scorecard.html", "preview.png", "manifest.json"):
        assert (out / name).is_file()


def test_each_line_is_scored_on_its_own_grid_by_default(tmp_path):
    # filo's filopodia are 1 voxel across at 64³, so it is scored at 128³ (0.4 µm voxels); plat at 64³.
    assert line_spacing("filo", get_line("filo").score_size) == (0.4, 0.4, 0.4)
    out = tmp_path / "fid"
    main(["fidelity", f"out={out}", "ckpt=plat", "n=2", "frames=1", "resamples=10", "progress=false"])
    card = json.loads((out / "fidelity.json").read_text())
    assert card["grid"] == 64 and card["spacing"] == pytest.approx([0.4, 0.4, 0.4])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["reference=somewhere"], "needs both reference=<folder> and reference_b=<folder>"),
        (["n=1"], "n: must be an integer >= 2"),
        (["topology=twice", "cellline=plat"], "topology"),
    ],
)
def test_bad_options_are_refused_in_one_line(tmp_path, capsys, args, message):
    with pytest.raises(SystemExit) as err:
        main(["fidelity", "ckpt=plat", f"out={tmp_path / 'f'}", "progress=false", *args])
    assert err.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and message in lines[0]
    assert not (tmp_path / "f").exists()


def test_own_data_is_scored_against_held_out_folders(tmp_path):
    for name, seed in (("a", 5), ("b", 6)):
        main(["simulate", "cellline=plat", "sequences=3", "frames=3", "size=32", f"seed={seed}",
              f"out={tmp_path / name}", "progress=false"])  # fmt: skip
    out = tmp_path / "fid"
    main(["fidelity", "ckpt=plat", f"reference={tmp_path / 'a'}", f"reference_b={tmp_path / 'b'}",
          "topology=single", "n=3", "frames=3", "resamples=20", f"out={out}", "progress=false"])  # fmt: skip
    card = json.loads((out / "fidelity.json").read_text())
    assert card["counts"] == {"generated": 3, "reference": 3, "reference_b": 3}
    assert card["rule"] == "single" and card["spacing"] == pytest.approx([0.8, 0.8, 0.8])


def test_with_max_draws_the_scored_cells_are_those_generate_writes(tmp_path):
    from cellsdf.generate.fidelity import matching_resolution
    from cellsdf.model.trained import load_trained

    common = ["ckpt=cele", "n=4", "frames=3", "sampler=gaussian", "progress=false"]
    out = tmp_path / "fid"
    main(["fidelity", f"out={out}", *common, "size=32", "resamples=20", "max_draws=50"])
    card = json.loads((out / "fidelity.json").read_text())
    rows = {row["key"]: row for row in card["figures"]}
    assert rows["topology_kept"]["value"] == 100 and rows["topology_kept"]["meets"] is None
    rejected = rows["rejected_draws"]["value"]
    # generate draws the same cells from the same generators and rejects the same draws.
    resolution = matching_resolution(load_trained("cele"), line_spacing("cele", 32)[0])
    main(["generate", f"out={tmp_path / 'gen'}", *common, f"resolution={resolution}", "formats=[tiff]"])
    redraws = json.loads((tmp_path / "gen" / "manifest.json").read_text())["redraws"]
    assert redraws > 0
    assert rejected == pytest.approx(100 * redraws / (redraws + 4))
