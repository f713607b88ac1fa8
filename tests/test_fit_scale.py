"""``cellsdf fit`` on cells twice the shipped plat model's size, in a label image with anisotropic voxels."""

import json
import time

import numpy as np
import pytest
import tifffile
import torch
from scipy import ndimage

from cellsdf.cli import main
from cellsdf.dataset.prepared import read_prepared
from cellsdf.model.fitting import fit_codes
from cellsdf.model.trained import load_trained
from cellsdf.reconstruct.fit import expected_scale, starting_placements
from cellsdf.reconstruct.outputs import OutputOptions, SequenceCode
from cellsdf.reconstruct.score import write_and_score
from cellsdf.simulate import sequence_rng, simulate_sequence
from cellsdf.simulate.lines import line_spacing

SPACING = (1.0, 0.25, 0.25)  # µm (z, y, x): a confocal stack's voxels, four times deeper than wide


def large_cells(folder, count):
    """Write ``count`` plat cells at twice the training cells' size in µm as one CTC label image.

    Cells come from simulation seed 1 (the shipped model learned seed 0), each the middle of a 3-frame
    sequence (t = 0, as a single frame is fitted), rendered on a 128³ grid at the 64³ training data's voxel
    size, which doubles the box and the cell in it, then resampled to ``SPACING``; the labels sit side by
    side in ``mask000.tif``.
    """
    train_spacing = line_spacing("plat", 64)[0]
    spacing = 2 * train_spacing * 64 / 128
    cells = []
    for index in range(count):
        cell = simulate_sequence("plat", 3, 128, sequence_rng(1, index)).masks[1]
        zoom = [spacing / s for s in SPACING]
        mask = ndimage.zoom(cell.astype(np.float32), zoom, order=1) > 0.5
        cells.append(mask[ndimage.find_objects(mask.view(np.uint8))[0]])
    slot = np.max([c.shape for c in cells], axis=0) + 4
    columns = min(count, 5)
    rows = -(-count // columns)
    labels = np.zeros((slot[0], slot[1] * rows, slot[2] * columns), np.uint16)
    for index, cell in enumerate(cells):
        row, column = divmod(index, columns)
        z, y, x = 2, row * slot[1] + 2, column * slot[2] + 2
        labels[z : z + cell.shape[0], y : y + cell.shape[1], x : x + cell.shape[2]][cell] = index + 1
    folder.mkdir(parents=True, exist_ok=True)
    metadata = {"axes": "ZYX", "spacing": SPACING[0], "unit": "um"}
    resolution = (1 / SPACING[2], 1 / SPACING[1])
    tifffile.imwrite(folder / "mask000.tif", labels, imagej=True, resolution=resolution, metadata=metadata)
    return folder


def fit_run(folder, out, *options):
    start = time.perf_counter()
    main(["fit", "ckpt=plat", f"input={folder}", f"out={out}", "progress=false", *options])
    metrics = json.loads((out / "metrics.json").read_text())
    items = json.loads((out / "manifest.json").read_text())["items"]
    return metrics, items, time.perf_counter() - start


def test_fit_places_cells_twice_the_models_size(tmp_path, capsys):
    folder = large_cells(tmp_path / "cells", 3)
    out = tmp_path / "fit"
    fast = ["iterations=150", "prepare.points_per_frame=4096", "formats=[tiff]"]
    metrics, items, _ = fit_run(folder, out, *fast)
    assert "fitted 3 sequence(s) in" in capsys.readouterr().out
    assert [i["name"] for i in items] == ["cells_label1", "cells_label2", "cells_label3"]
    assert metrics["mean"]["iou"] > 0.85
    # The fit finds the cells' size: about twice the model's, whatever its own prior (centred on 1) says.
    assert all(1.5 < i["fitted_scale"] < 2.6 for i in items)
    assert items[0]["spacing_um"] == pytest.approx([2 / 63 / read_prepared(out / "dataset.h5").scale] * 3)

    # Today's behaviour, the data at the model's scale, cannot take them ...
    with pytest.raises(SystemExit) as exit_info:
        main(
            [
                "fit",
                "ckpt=plat",
                f"input={folder}",
                f"out={tmp_path / 'fixed'}",
                "scale=fixed",
                "progress=false",
            ]
        )
    assert exit_info.value.code == 2 and "does not fit in [-1, 1]³" in capsys.readouterr().err
    # ... and a code fitted with the cells kept at the model's size in µm scores far lower on the same data.
    model, data = load_trained("plat"), read_prepared(out / "dataset.h5")
    _, translations = starting_placements(model, out / "dataset.h5", data)
    frames, n = data.sdf.shape
    times = np.broadcast_to(data.frame_t[:, None, None], (frames, n, 1))
    kept = fit_codes(
        model.decoder,
        torch.from_numpy(np.concatenate([data.points, times], axis=-1).reshape(-1, 4)),
        torch.from_numpy(data.sdf.reshape(-1)),
        torch.from_numpy(np.repeat(data.frame_sequence, n)),
        seeds=[0, 1, 2],
        iterations=150,
        points_per_step=256,
        scales=torch.full((3,), expected_scale(model, data)),
        translations=torch.from_numpy(translations),
    )
    codes = [
        SequenceCode(
            s.name, i, kept.latents[i], kept.rotations[i], float(kept.scales[i]), kept.translations[i]
        )
        for i, s in enumerate(data.sequences)
    ]
    baseline, _ = write_and_score(
        model, codes, out / "dataset.h5", tmp_path / "kept", OutputOptions(formats=("tiff",))
    )
    assert baseline["mean"]["iou"] < 0.6 < metrics["mean"]["iou"] - 0.25


@pytest.mark.slow
def test_fit_of_twenty_large_cells_meets_the_target(tmp_path):
    """Issue 16's target: 20 single-frame cells twice the model's size, mean IoU >= 0.85 in 2 minutes (x2)."""
    folder = large_cells(tmp_path / "cells", 20)
    metrics, items, seconds = fit_run(folder, tmp_path / "fit")
    assert len(items) == 20
    assert metrics["mean"]["iou"] >= 0.85
    assert seconds <= 240
