"""Label images in: one cell per label, linking per-frame labels by overlap, the border rule."""

import numpy as np
import pytest
from helpers import blob
from scipy import ndimage

from cellsdf.cli import main
from cellsdf.dataset.labels import label_cells
from cellsdf.dataset.linking import link_overlap
from cellsdf.dataset.prepared import read_prepared
from cellsdf.dataset.sources import find_sequences, scan_sequences
from cellsdf.errors import InputError
from cellsdf.io.tiff import read_timelapse, write_timelapse
from cellsdf.simulate.write import simulate_to_folder

SHAPE = (20, 40, 60)


def three_nuclei(frames=3):
    """Labels 3, 7, 9 (non-consecutive on purpose); 9 sits on the x border and is cut there."""
    labels = np.zeros((frames, *SHAPE), np.uint16)
    for t in range(frames):
        labels[t][blob(SHAPE, centre=(10, 12, 12 + t), radii=(4, 5, 5))] = 3
        labels[t][blob(SHAPE, centre=(10, 28, 30), radii=(4, 6 + t, 6))] = 7
        labels[t][blob(SHAPE, centre=(10, 20, 57), radii=(4, 5, 6))] = 9
    return labels


def write_labels(path, labels, spacing=(1.0, 0.5, 0.5)):
    import tifffile

    tifffile.imwrite(
        path,
        labels,
        imagej=True,
        resolution=(1 / spacing[2], 1 / spacing[1]),
        metadata={"axes": "TZYX", "spacing": spacing[0], "unit": "um"},
    )
    return path


def test_label_image_gives_one_cut_out_sequence_per_label(tmp_path):
    labels = three_nuclei()
    scan = scan_sequences(write_labels(tmp_path / "nuclei.tif", labels))
    assert [ld.name for ld in scan.loaders] == ["nuclei_label3", "nuclei_label7"]
    assert scan.found == 3 and scan.at_border == ["nuclei_label9"]
    assert "found 3 cells" in scan.summary("nuclei.tif", "drop") and "dropped 1" in scan.summary("x", "drop")
    seq = scan.loaders[1].load()
    assert seq.spacing == (1.0, 0.5, 0.5) and len(seq.masks) == 3
    # The crop keeps the cell whole and nothing of its neighbours.
    np.testing.assert_array_equal(seq.masks.sum(axis=(1, 2, 3)), (labels == 7).sum(axis=(1, 2, 3)))
    kept = find_sequences(tmp_path / "nuclei.tif", border="keep")
    assert [ld.name for ld in kept] == ["nuclei_label3", "nuclei_label7", "nuclei_label9"]


def test_label_option_keeps_one_cell_and_a_binary_mask_stays_one_cell(tmp_path):
    path = write_labels(tmp_path / "nuclei.tif", three_nuclei())
    (only,) = find_sequences(path, label=7)
    assert only.load().masks.sum() == (three_nuclei() == 7).sum()
    with pytest.raises(InputError, match="label 5 does not occur"):
        find_sequences(path, label=5)
    # Two separate objects in a binary mask (a divided cell) are one cell.
    binary = (three_nuclei() > 0) & (three_nuclei() != 9)
    write_timelapse(tmp_path / "mask.tif", binary)
    (cell,) = find_sequences(tmp_path / "mask.tif")
    np.testing.assert_array_equal(cell.load().masks, binary)


def test_every_cell_at_the_border_is_one_clear_error(tmp_path):
    labels = np.zeros((1, *SHAPE), np.uint16)
    labels[0, :, :, :30] = 1  # one huge label that fills half the image, cut on five faces
    labels[0, 5:10, 5:10, 40:45] = 0
    with pytest.raises(InputError, match="all 1 cells touch the image border.*border=keep"):
        find_sequences(write_labels(tmp_path / "huge.tif", labels))
    with pytest.raises(InputError, match="border"):
        find_sequences(tmp_path / "huge.tif", border="sometimes")


def test_a_label_that_vanishes_and_comes_back_is_one_cell_with_a_gap(tmp_path):
    labels = three_nuclei(frames=4)
    labels[2][labels[2] == 3] = 0
    cells = label_cells(labels, name="x")
    assert [c.name for c in cells] == ["x_label3", "x_label7", "x_label9"]
    np.testing.assert_array_equal(cells[0].frame_numbers, [0, 1, 3])


def relabel_per_frame(masks, rng):
    """Label each frame's connected components with random values, as a segmentation method would."""
    out = np.zeros(masks.shape, np.uint16)
    for t, frame in enumerate(masks):
        components, n = ndimage.label(frame)
        values = rng.choice(np.arange(1, 1000), n, replace=False)
        out[t][components > 0] = values[components[components > 0] - 1]
    return out


@pytest.fixture(scope="module")
def dividing(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cele")
    items = simulate_to_folder("cele", folder, sequences=2, frames=8, size=40)
    masks = [read_timelapse(folder / item["file"]).data > 0 for item in items]
    return masks, [item["division_frame"] for item in items]


def test_overlap_linking_recovers_tracks_and_the_division_frame(dividing):
    (masks, _), (division, _) = zip(*zip(*dividing, strict=True), strict=True)
    labels = relabel_per_frame(masks, np.random.default_rng(3))
    tracks, table = link_overlap(labels)
    mother, first, second = table.tolist()
    assert mother == [1, 0, division - 1, 0]
    assert first[1:] == second[1:] == [division, len(masks) - 1, 1]
    np.testing.assert_array_equal(tracks > 0, masks)
    (cell,) = label_cells(labels, name="cele", link="overlap")
    assert cell.division_frame == division
    assert cell.name == "cele_track1"


def test_overlap_linking_of_two_dividing_cells_in_one_field(dividing, tmp_path):
    masks, divisions = dividing
    field = np.zeros((8, 40, 40, 84), bool)
    field[..., 2:42] = masks[0]
    field[..., 44:84] = masks[1]
    labels = relabel_per_frame(field, np.random.default_rng(0))
    path = write_labels(tmp_path / "untracked.tif", labels)
    # Read as tracks, the random values make many short pieces; linked by overlap, two dividing cells.
    assert len(find_sequences(path, border="keep")) > 2
    loaders = find_sequences(path, link="overlap", border="keep")
    seqs = [ld.load() for ld in loaders]
    assert [s.division_frame for s in seqs] == divisions
    np.testing.assert_array_equal(seqs[0].masks.sum(axis=(1, 2, 3)), masks[0].sum(axis=(1, 2, 3)))


def test_overlap_linking_on_one_frame_gives_each_object_its_own_cell(tmp_path):
    labels = three_nuclei(frames=1)
    labels[labels == 7] = 0
    loaders = find_sequences(write_labels(tmp_path / "one.tif", labels), link="overlap")
    assert [ld.name for ld in loaders] == ["one_track1"]
    with pytest.raises(InputError, match="link=overlap"):
        find_sequences(tmp_path / "one.tif", link="overlap", label=3)


def test_prepare_command_reports_cells_and_records_divisions(dividing, tmp_path, capsys):
    masks, divisions = dividing
    labels = relabel_per_frame(masks[0], np.random.default_rng(1))
    path = write_labels(tmp_path / "cele.tif", labels)
    out = tmp_path / "d.h5"
    main(["prepare", f"input={path}", f"out={out}", "link=overlap", "points_per_frame=64", "eval_size=16"])
    assert f"found 1 cell in {path}" in capsys.readouterr().out
    (info,) = read_prepared(out).sequences
    assert info.division_frame == divisions[0] and info.frames == 8


def test_simulated_label_field_is_the_same_cells_as_the_files(tmp_path):
    main(
        [
            "simulate",
            "cellline=cele",
            "sequences=3",
            "frames=4",
            "size=32",
            "layout=labels",
            f"out={tmp_path}",
        ]
    )
    items = simulate_to_folder("cele", tmp_path / "files", sequences=3, frames=4, size=32)
    stack = read_timelapse(tmp_path / "cele_labels.tif")
    assert stack.data.dtype == np.uint16 and stack.data.shape == (4, 32, 32, 96)
    seqs = [ld.load() for ld in find_sequences(tmp_path / "cele_labels.tif")]
    assert [s.name for s in seqs] == ["cele_labels_label1", "cele_labels_label2", "cele_labels_label3"]
    for seq, item in zip(seqs, items, strict=True):
        assert seq.masks.sum(axis=(1, 2, 3)).tolist() == item["voxels"]


def test_evaluate_reads_a_label_image_as_one_sequence_per_cell(tmp_path):
    from cellsdf.evaluate.inputs import list_sequences

    path = write_labels(tmp_path / "nuclei.tif", three_nuclei())
    specs = list_sequences(path)
    assert [s.name for s in specs] == ["nuclei_label3", "nuclei_label7"]
    write_timelapse(tmp_path / "mask.tif", three_nuclei() == 7)
    assert [s.name for s in list_sequences(tmp_path / "mask.tif")] == ["mask"]
