"""The ellipsoid control: each cell replaced by the ellipsoid of its moments and volume, as a benchmark."""

import json

import numpy as np
import pytest
import tifffile
from ctc_metrics.utils.filesystem import read_tracking_file
from helpers import blob
from scipy import ndimage
from scipy.spatial.transform import Rotation

from cellsdf.benchmark.ellipsoids import ellipsoid_mask, shaped_mask
from cellsdf.cli import main
from cellsdf.geometry.overlap import iou

FULL = np.ones((3, 3, 3), bool)
FRAMES = 6


def _principal_axis(mask):
    """Unit vector of a mask's longest principal axis (sign-free)."""
    _, axes = np.linalg.eigh(np.cov(np.argwhere(mask), rowvar=False))
    return axes[:, -1]


def test_an_ellipsoid_stays_itself():
    shape = np.array((40, 48, 56))
    grid = np.stack(np.meshgrid(*map(np.arange, shape), indexing="ij"), axis=-1)
    rotation = Rotation.random(random_state=1).as_matrix()
    tilted = ((((grid - shape / 2) @ rotation) / [6, 9, 14]) ** 2).sum(-1) <= 1
    for mask in (tilted, blob()):
        fitted = ellipsoid_mask(mask)
        assert fitted.shape == mask.shape and fitted.dtype == bool
        assert iou(fitted, mask) > 0.95
    # 2D masks work as well: a tilted ellipse.
    y, x = np.mgrid[:40, :50] - np.array([20, 25])[:, None, None]
    ellipse = ((0.8 * y + 0.6 * x) / 15) ** 2 + ((0.6 * y - 0.8 * x) / 7) ** 2 <= 1
    assert iou(ellipsoid_mask(ellipse), ellipse) > 0.95


def test_a_dumbbell_keeps_volume_centroid_and_orientation():
    mask = np.zeros((20, 40, 64), bool)
    mask[6:14, 10:30, 8:28] = True  # a big box, and a smaller one touching it along x
    mask[8:12, 15:25, 28:52] = True
    fitted = ellipsoid_mask(mask)
    assert ndimage.label(fitted, FULL)[1] == 1 and not np.array_equal(fitted, mask)
    assert fitted.sum() == pytest.approx(mask.sum(), rel=0.03)
    assert np.argwhere(fitted).mean(0) == pytest.approx(np.argwhere(mask).mean(0), abs=0.5)
    assert abs(_principal_axis(fitted) @ _principal_axis(mask)) > 0.99
    # A tilted L: its longest axis is a diagonal, which the ellipsoid keeps.
    ell = np.zeros((10, 40, 40), bool)
    ell[3:7, 5:35, 5:12] = ell[3:7, 28:35, 12:30] = True
    assert abs(_principal_axis(ellipsoid_mask(ell)) @ _principal_axis(ell)) > 0.99


def test_separate_and_touching_components_stay_as_many_and_degenerate_ones_do_not_crash():
    mask = np.zeros((20, 40, 40), bool)
    mask[5:15, 4:19, 5:20] = True  # two boxes one voxel apart: their ellipsoids would overlap
    mask[5:15, 20:38, 5:20] = True
    mask[2, 30, 30] = True  # a single voxel
    mask[17, 30:36, 25:35] = True  # a flat plate
    fitted = ellipsoid_mask(mask)
    _, count = ndimage.label(fitted, FULL)
    assert count == ndimage.label(mask, FULL)[1] == 4
    assert fitted[2, 30, 30] and fitted[17].sum() > 0
    assert ellipsoid_mask(np.zeros((4, 4, 4), bool)).sum() == 0
    corner = np.zeros((5, 5, 5), bool)
    corner[0, 0, 0] = True
    assert ellipsoid_mask(corner).sum() == 1
    with pytest.raises(TypeError, match="bool"):
        ellipsoid_mask(mask.astype(np.uint8))
    with pytest.raises(ValueError, match="2D"):
        ellipsoid_mask(np.zeros(5, bool))


@pytest.fixture(scope="module")
def cele(tmp_path_factory):
    """One simulated cele cell that divides in frame 4, 6 frames at 32³."""
    folder = tmp_path_factory.mktemp("cele")
    main(["simulate", "cellline=cele", f"out={folder}", "sequences=1", f"frames={FRAMES}", "size=32"])
    return folder


def _labels(out):
    return np.stack([tifffile.imread(out / "01_GT" / "SEG" / f"man_seg{t:03d}.tif") for t in range(FRAMES)])


@pytest.mark.parametrize("dims", [2, 3])
def test_the_ellipsoid_benchmark_matches_the_cells_one_object_for_object(cele, tmp_path, dims):
    runs = {}
    for shapes in ("cells", "ellipsoids"):
        out = tmp_path / shapes
        args = [f"source={cele}", f"out={out}", f"dims={dims}", f"shapes={shapes}", "realism_seeds=0"]
        main(["benchmark", "progress=false", *args])
        assert (out / "01" / "t000.tif").exists()
        assert json.loads((out / "benchmark.json").read_text())["shapes"] == shapes
        runs[shapes] = _labels(out), read_tracking_file(str(out / "01_GT" / "TRA" / "man_track.txt")).tolist()
    (cells, cell_tracks), (ellipsoids, ellipsoid_tracks) = runs["cells"], runs["ellipsoids"]
    assert ellipsoids.shape == cells.shape and ellipsoids.ndim == dims + 1
    # The same objects in every frame, the same division, other shapes of about the same size.
    assert ellipsoid_tracks == cell_tracks and len(cell_tracks) == 3
    for frame_cells, frame_ellipsoids in zip(cells, ellipsoids, strict=True):
        assert np.array_equal(np.unique(frame_cells), np.unique(frame_ellipsoids))
    assert not np.array_equal(cells > 0, ellipsoids > 0)
    assert (ellipsoids > 0).sum() == pytest.approx((cells > 0).sum(), rel=0.15)


def test_an_unknown_shape_is_refused(cele, tmp_path, capsys):
    with pytest.raises(SystemExit) as err:
        main(["benchmark", f"source={cele}", f"out={tmp_path / 'out'}", "shapes=cubes", "progress=false"])
    assert err.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and "shapes" in lines[0] and "ellipsoids" in lines[0]
    assert not (tmp_path / "out").exists()
    mask = np.ones((2, 3, 4), bool)
    assert shaped_mask(mask, shapes="cells") is mask
    with pytest.raises(ValueError, match="shapes must be one of cells, ellipsoids, got 'cubes'"):
        shaped_mask(mask, shapes="cubes")
