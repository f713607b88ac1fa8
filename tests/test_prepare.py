import json

import h5py
import numpy as np
import pytest
import torch
from helpers import blob

from cellsdf.cli import main
from cellsdf.dataset.datamodule import PreparedDataModule
from cellsdf.dataset.prepare import frame_times, prepare_dataset, prepare_source
from cellsdf.dataset.prepared import read_eval_masks, read_prepared
from cellsdf.dataset.sdf import interpolate_sdf, signed_distance, signed_distance_reference
from cellsdf.dataset.sources import MaskSequence, SequenceLoader
from cellsdf.errors import InputError
from cellsdf.geometry.grid import cube_grid
from cellsdf.io.tiff import write_timelapse

SPACING = (2.0, 1.0, 1.0)


def loader(name, masks, spacing=SPACING):
    seq = MaskSequence(name, "test", masks, spacing, np.arange(len(masks)))
    return SequenceLoader(name, lambda: seq)


@pytest.fixture
def two_cells(growing_blob):
    big = np.stack([blob((24, 40, 48), radii=(8, 14, 16 + k)) for k in range(3)])
    return [loader("small", growing_blob), loader("big", big)]


def test_prepared_file_layout_and_metadata(tmp_path, two_cells):
    out = prepare_dataset(two_cells, tmp_path / "d.h5", points_per_frame=2000, eval_size=24, seed=1)
    data = read_prepared(out)
    assert data.points.shape == (8, 2000, 3) and data.sdf.shape == (8, 2000)
    np.testing.assert_array_equal(data.frame_sequence, [0] * 5 + [1] * 3)
    np.testing.assert_allclose(data.frame_t[:5], [-1, -0.5, 0, 0.5, 1])
    assert [s.name for s in data.sequences] == ["small", "big"]
    assert data.sequences[0].spacing == SPACING and data.sequences[1].frames == 3
    assert np.abs(data.points).max() <= 1.0
    assert read_eval_masks(out).shape == (8, 24, 24, 24)


def test_common_scale_keeps_relative_size_and_margin(tmp_path, two_cells):
    out = prepare_dataset(two_cells, tmp_path / "d.h5", points_per_frame=20000, eval_size=48, margin=0.1)
    data = read_prepared(out)
    inside = data.points[data.sdf <= 0]
    # The largest cell fills the cube up to the margin along its longest axis (x: (16 + 2 + 0.5) voxels).
    assert np.abs(inside).max() == pytest.approx(0.9, abs=0.03)
    assert data.scale == pytest.approx(0.9 / 18.5)
    masks = read_eval_masks(out)
    voxel = (2 / 47) ** 3
    true_volumes = [m.sum() * np.prod(SPACING) * data.scale**3 for m in (two_cells[0].load().masks[0],)]
    assert masks[0].sum() * voxel == pytest.approx(true_volumes[0], rel=0.1)
    assert masks[-1].sum() > 3 * masks[0].sum()  # relative sizes survive the common scale


def test_sample_values_match_the_full_grid_reference(tmp_path, growing_blob):
    out = prepare_dataset(
        [loader("c", growing_blob)], tmp_path / "d.h5", points_per_frame=4000, exact_band=0.15, centre="frame"
    )
    data = read_prepared(out)
    with h5py.File(out) as f:
        centre = f["frame_centre"][()]
    step = np.asarray(SPACING) * data.scale
    for k, mask in enumerate(growing_blob):
        full = signed_distance_reference(mask, spacing=SPACING) * data.scale
        expected = interpolate_sdf(full, -centre[k] * data.scale, step, data.points[k].astype(np.float64))
        assert (np.abs(expected) < 0.15).mean() > 0.7  # most samples lie near the surface
        # Exact inside the cell and within the band around it; farther out, still beyond the band.
        exact = expected < 0.15
        np.testing.assert_allclose(data.sdf[k][exact], expected[exact], atol=1e-5)
        assert np.all(data.sdf[k][~exact] >= 0.15 - 1e-5)


def test_datamodule_serves_batches(tmp_path, two_cells):
    out = prepare_dataset(two_cells, tmp_path / "d.h5", points_per_frame=500, eval_size=8)
    dm = PreparedDataModule(out, batch_size=4, points_per_item=100)
    dm.setup("fit")
    batch = next(iter(dm.train_dataloader()))
    assert batch["xyz"].shape == (4, 100, 3) and batch["sdf"].shape == (4, 100)
    assert batch["sequence"].dtype == torch.int64 and batch["t"].shape == (4,)
    val_a = next(iter(dm.val_dataloader()))
    val_b = next(iter(dm.val_dataloader()))
    torch.testing.assert_close(val_a["xyz"], val_b["xyz"])


def test_frame_times():
    np.testing.assert_allclose(frame_times(np.array([3])), [0.0])
    np.testing.assert_allclose(frame_times(np.array([0, 1, 4])), [-1.0, -0.5, 1.0])


def test_prepare_command_and_bad_input(tmp_path, growing_blob, capsys):
    write_timelapse(tmp_path / "in" / "a.tif", growing_blob)
    out = tmp_path / "d.h5"
    main(["prepare", f"input={tmp_path / 'in'}", f"out={out}", "points_per_frame=300", "eval_size=8"])
    capsys.readouterr()  # its progress lines; each refusal below is one line of its own
    assert read_prepared(out).points.shape == (5, 300, 3)
    before = out.read_bytes()
    with pytest.raises(SystemExit) as exit_info:
        main(["prepare", f"input={tmp_path / 'in'}", f"out={out}"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(out) in err[0] and "overwrite=true" in err[0]
    assert out.read_bytes() == before


def test_intensity_image_through_the_command(tmp_path, capsys):
    rng = np.random.default_rng(0)
    image = (blob((20, 20, 20), radii=(6, 7, 7)) * 100 + rng.integers(1, 50, (20, 20, 20))).astype(np.uint16)
    import tifffile

    tifffile.imwrite(tmp_path / "img.tif", image[None], imagej=True, metadata={"axes": "TZYX"})
    with pytest.raises(SystemExit) as exit_info:
        main(["prepare", f"input={tmp_path / 'img.tif'}", f"out={tmp_path / 'd.h5'}"])
    assert exit_info.value.code == 2
    assert "intensity image" in capsys.readouterr().err
    assert not (tmp_path / "d.h5").exists()
    main(
        [
            "prepare",
            f"input={tmp_path / 'img.tif'}",
            f"out={tmp_path / 'd.h5'}",
            "threshold=60",
            "points_per_frame=100",
        ]
    )
    assert read_prepared(tmp_path / "d.h5").sdf.shape == (1, 100)


def test_not_a_prepared_dataset(tmp_path):
    with h5py.File(tmp_path / "x.h5", "w") as f:
        f["a"] = 1
    with pytest.raises(InputError, match="not a cellsdf prepared dataset"):
        read_prepared(tmp_path / "x.h5")
    with pytest.raises(InputError, match="not found"):
        read_prepared(tmp_path / "y.h5")
    with pytest.raises(InputError, match="no sequences"):
        prepare_dataset([], tmp_path / "z.h5")


def test_anisotropic_voxels_give_distances_and_masks_in_micrometres(tmp_path):
    # 1.0 µm in z, 0.25 µm in y and x: a ball of radius 3 µm is 7 voxels deep and 25 wide.
    spacing = (1.0, 0.25, 0.25)
    shape = (12, 40, 40)
    centre = np.array([5.5, 19.5, 19.5]) * spacing
    grid = np.stack(np.meshgrid(*map(np.arange, shape), indexing="ij"), axis=-1) * np.array(spacing)
    ball = np.linalg.norm(grid - centre, axis=-1) <= 3.0
    # Brute force: from each voxel centre, the nearest voxel centre of the other class, in µm.
    sdf = signed_distance(ball, spacing=spacing)
    points = grid.reshape(-1, 3)
    inside = ball.ravel()
    rng = np.random.default_rng(0)
    for i in rng.choice(len(points), 200, replace=False):
        other = points[inside != inside[i]]
        nearest = np.linalg.norm(other - points[i], axis=1).min() - 0.5 * min(spacing)
        assert sdf.ravel()[i] == pytest.approx(nearest if not inside[i] else -nearest, abs=1e-4)
    # Prepared on the common µm scale, the evaluation mask is a ball again (not squashed along z).
    write_timelapse(tmp_path / "ball.tif", ball[None], spacing=spacing)
    out = prepare_source(tmp_path / "ball.tif", tmp_path / "d.h5", points_per_frame=64, eval_size=32)
    scale = read_prepared(out).scale
    expected = (np.linalg.norm(cube_grid(32), axis=-1) <= 3.0 * scale).reshape((32,) * 3)
    got = read_eval_masks(out, frames=[0])[0].astype(bool)
    assert (got & expected).sum() / (got | expected).sum() > 0.85


def _ball_and_rod_samples(folder, name, *options):
    """Prepare a ball (radius 9 voxels) with a rod 3 voxels across sticking out of it along x, as a
    filopodium; return the samples' voxel positions, their distances, and the prepared file's config.

    The sampling may move samples, not change values: wherever they lie, they are the frame's distances.
    """
    frame = blob((40, 40, 56), radii=(9, 9, 9), centre=(20, 20, 16))
    frame[19:22, 19:22, 26:50] = True
    if not (folder / "in" / "a.tif").exists():
        write_timelapse(folder / "in" / "a.tif", frame[None])
    out = folder / f"{name}.h5"
    main(["prepare", f"input={folder / 'in'}", f"out={out}", "points_per_frame=4000", *options])
    data = read_prepared(out)
    with h5py.File(out) as f:
        centre = f["frame_centre"][()]
        config = json.loads(f.attrs["config"])
    expected = interpolate_sdf(
        signed_distance_reference(frame) * data.scale,
        -centre[0] * data.scale,
        np.full(3, data.scale),
        data.points[0].astype(np.float64),
    )
    exact = expected < 0.15
    np.testing.assert_allclose(data.sdf[0][exact], expected[exact], atol=1e-5)
    voxels = data.points[0] / data.scale + centre[0]  # the TIFF has no spacing: 1 µm voxels
    return voxels, data.sdf[0], config


def test_thin_power_gives_thin_parts_more_samples_with_the_same_distances(tmp_path):
    near_rod = {}
    for power in (0, 1):
        voxels, _, _ = _ball_and_rod_samples(tmp_path, f"d{power}", f"thin_power={power}")
        rod = (voxels[:, 2] > 28) & (np.hypot(voxels[:, 0] - 20, voxels[:, 1] - 20) < 4)
        near_rod[power] = rod.mean()
    assert near_rod[1] > 1.8 * near_rod[0] > 0.02


def test_interior_samples_reach_the_inside_of_thin_parts(tmp_path):
    # Interior samples add negative values along the rod, where the jitter of surface samples lands mostly
    # outside.
    inside_rod = {}
    for interior in (0.0, 0.15):
        options = ("surface_fraction=0.7", f"interior_fraction={interior}", "thin_power=2")
        voxels, sdf, config = _ball_and_rod_samples(tmp_path, f"i{interior}", *options)
        assert config["interior_fraction"] == interior
        rod = (voxels[:, 2] > 28) & (np.hypot(voxels[:, 0] - 20, voxels[:, 1] - 20) < 1.5)
        inside_rod[interior] = int(np.count_nonzero(rod & (sdf < 0)))
    # Both runs draw the same surface samples (same seed); the difference is the 600 interior ones, which
    # find the rod (7 % of the cell's volume) about six times as often as its share.
    assert inside_rod[0.15] - inside_rod[0.0] > 0.25 * 600
