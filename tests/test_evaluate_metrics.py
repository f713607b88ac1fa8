import numpy as np
import pytest

from cellsdf.errors import InputError
from cellsdf.evaluate.distributions import distribution_distances
from cellsdf.evaluate.metrics import METRICS, select_metrics
from cellsdf.evaluate.reconstruction import reconstruction_metrics, surface_distances
from cellsdf.evaluate.shapes import (
    centred,
    chamfer_matrix,
    distance_set_metrics,
    sequence_chamfer,
    shape_set_metrics,
)
from cellsdf.evaluate.temporal import sequence_dynamics, temporal_values
from cellsdf.geometry.overlap import dice, iou
from cellsdf.geometry.surface import crop_box, surface_mesh, surface_points


def ellipsoid(size, radii, centre=None):
    centre = np.full(3, size / 2) if centre is None else np.asarray(centre)
    z, y, x = np.meshgrid(*[np.arange(size)] * 3, indexing="ij", sparse=True)
    return ((z - centre[0]) / radii[0]) ** 2 + ((y - centre[1]) / radii[1]) ** 2 + (
        (x - centre[2]) / radii[2]
    ) ** 2 <= 1.0


def cloud(mask, seed, points=256):
    crop, origin = crop_box(mask)
    return centred(surface_points(surface_mesh(crop, (1.0, 1.0, 1.0), origin=origin), points, seed))


@pytest.fixture(scope="module")
def ellipsoids():
    """Forty random ellipsoids, long along x, flat along z."""
    rng = np.random.default_rng(0)
    return [
        cloud(ellipsoid(32, (rng.uniform(4, 6), rng.uniform(5, 8), rng.uniform(9, 13))), i) for i in range(40)
    ]


def test_one_nna_of_a_set_against_itself_is_near_half(ellipsoids):
    result = shape_set_metrics(ellipsoids[::2], ellipsoids[1::2])
    assert 0.3 <= result["1nna"] <= 0.7
    assert result["coverage"] >= 0.4
    assert (result["n_real"], result["n_generated"]) == (20, 20)


def test_one_nna_against_spheres_is_near_one(ellipsoids):
    spheres = [cloud(ellipsoid(32, (r, r, r)), 100 + i) for i, r in enumerate(np.linspace(6, 9, 20))]
    apart = shape_set_metrics(ellipsoids[:20], spheres)
    alike = shape_set_metrics(ellipsoids[::2], ellipsoids[1::2])
    assert apart["1nna"] >= 0.95
    assert apart["mmd"] > alike["mmd"]


def test_chamfer_matrix_matches_the_pairwise_distance(ellipsoids):
    matrix = chamfer_matrix(ellipsoids[:4])
    assert np.allclose(np.diag(matrix), 0.0)
    assert np.allclose(matrix, matrix.T)
    assert matrix[1, 3] == pytest.approx(surface_distances(ellipsoids[1], ellipsoids[3])["chamfer"])


def test_sequence_chamfer_averages_over_shared_frame_indices(ellipsoids):
    a, b, c = ellipsoids[:3]
    sequences = [{0: a, 1: b}, {0: b, 1: c}, {1: a}]
    matrix = sequence_chamfer(sequences)
    pair = chamfer_matrix([a, b, c])
    assert matrix[0, 1] == pytest.approx((pair[0, 1] + pair[1, 2]) / 2)
    assert matrix[0, 2] == pytest.approx(pair[1, 0])  # only frame 1 is shared
    assert np.allclose(np.diag(matrix), 0.0) and np.allclose(matrix, matrix.T)
    # One sample per sequence: two sequences against one.
    metrics = distance_set_metrics(matrix, 2)
    assert (metrics["n_real"], metrics["n_generated"]) == (2, 1)


def test_distribution_distances():
    rng = np.random.default_rng(1)
    real = rng.normal(10.0, 2.0, 4000)
    same = distribution_distances(real, real.copy())
    assert same["wasserstein"] == 0.0 and same["ks"] == 0.0
    shifted = distribution_distances(real, real + 2.0)
    assert shifted["wasserstein_normalised"] == pytest.approx(1.0, rel=0.03)
    assert shifted["ks"] > 0.3
    # No spread among the real values: normalised by the pooled spread instead of dividing by zero.
    constant = distribution_distances(np.ones(10), np.array([1.0, 2.0, np.nan]))
    assert constant["n_generated"] == 2
    assert np.isfinite(constant["wasserstein_normalised"]) and constant["wasserstein_normalised"] > 0
    assert distribution_distances(np.ones(5), np.ones(5))["wasserstein_normalised"] == 0.0
    assert distribution_distances(np.ones(5), np.array([]))["ks"] is None


def test_reconstruction_metrics_in_physical_units():
    target = ellipsoid(40, (10, 10, 10))
    same = reconstruction_metrics(target, target.copy(), (0.5, 0.5, 0.5))
    assert same["iou"] == 1.0 and same["dice"] == 1.0
    assert same["chamfer"] == 0.0 and same["hausdorff95"] == 0.0
    # A ball two voxels larger: surfaces 2 voxels = 1 µm apart.
    bigger = reconstruction_metrics(ellipsoid(40, (12, 12, 12)), target, (0.5, 0.5, 0.5))
    assert bigger["chamfer"] == pytest.approx(1.0, abs=0.15)
    assert bigger["hausdorff95"] == pytest.approx(1.0, abs=0.3)
    assert bigger["dice"] == pytest.approx(2 * 10**3 / (10**3 + 12**3), abs=0.03)
    empty = reconstruction_metrics(np.zeros_like(target), target, (1.0, 1.0, 1.0))
    assert empty == {"iou": 0.0, "dice": 0.0, "chamfer": None, "hausdorff95": None}
    empty = np.zeros((2, 2, 2), bool)
    assert iou(empty, empty) == 1.0 and dice(empty, empty) == 1.0
    with pytest.raises(ValueError, match="shapes differ"):
        iou(empty, np.zeros((2, 2, 3), bool))


def test_sequence_dynamics_aligns_per_frame_and_finds_divisions():
    out = sequence_dynamics([10.0, 12.0, None, 9.0, 9.0], [1, 1, None, 2, 2], [0.9, None, None, 0.8])
    assert out["volume_growth"] == [None, pytest.approx(0.2), None, None, 0.0]
    assert out["temporal_iou"] == [None, 0.9, None, None, 0.8]
    assert out["division_frames"] == []  # frame 2 is empty, so 1 -> 2 components is not seen
    split = sequence_dynamics([5.0, 5.0, 5.0], [1, 2, 2], [1.0, 1.0])
    assert split["division_frames"] == [1]
    pooled = temporal_values([out, split])
    assert len(pooled["volume_growth"]) == 4 and list(pooled["divisions"]) == [0, 1]


def test_metric_selection():
    assert select_metrics("all") == METRICS
    assert select_metrics(["1nna", "volume"]) == ("volume", "1nna")
    with pytest.raises(InputError, match="unknown metric.*bogus.*valid: all, volume"):
        select_metrics(["volume", "bogus"])
    with pytest.raises(InputError, match="no metric"):
        select_metrics([])
