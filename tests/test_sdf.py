import numpy as np
import pytest
from helpers import blob

from cellsdf.dataset.sdf import interpolate_sdf, signed_distance, signed_distance_reference


def brute_force(mask: np.ndarray, spacing) -> np.ndarray:
    """Distance from every voxel centre to every voxel centre of the other class, the slow obvious way."""
    coords = np.stack(np.nonzero(np.ones_like(mask)), axis=1) * np.asarray(spacing)
    flat = mask.ravel()
    out = np.empty(flat.size)
    for i, (point, inside) in enumerate(zip(coords, flat, strict=True)):
        other = coords[flat != inside]
        d = np.sqrt(((other - point) ** 2).sum(1)).min() - 0.5 * min(spacing)
        out[i] = -d if inside else d
    return out.reshape(mask.shape)


@pytest.mark.parametrize("spacing", [(1.0, 1.0, 1.0), (2.0, 0.5, 1.0)])
def test_distances_match_brute_force(spacing):
    mask = np.zeros((9, 10, 11), bool)
    mask[2:7, 3:8, 2:6] = True
    mask[4, 5, 6:9] = True  # a thin arm, where a wrong axis order would show
    expected = brute_force(mask, spacing)
    np.testing.assert_allclose(signed_distance(mask, spacing=spacing), expected, atol=1e-5)
    np.testing.assert_allclose(signed_distance_reference(mask, spacing=spacing), expected, atol=1e-5)


def test_sign_matches_mask_on_every_voxel():
    mask = blob((40, 44, 48))
    mask[5:9, 5:9, 5:9] = True  # a second component
    sdf = signed_distance(mask, spacing=(1.5, 1.0, 1.0))
    np.testing.assert_array_equal(sdf <= 0, mask)


def test_interpolation_is_exact_on_voxels_and_bounded_outside():
    mask = blob((20, 20, 20), radii=(5, 5, 5))
    sdf = signed_distance(mask)
    origin, step = np.array([-1.0, -1.0, -1.0]), np.array([0.1, 0.1, 0.1])
    voxels = np.array([[10, 10, 10], [3, 10, 10], [0, 0, 0]])
    np.testing.assert_allclose(
        interpolate_sdf(sdf, origin, step, origin + voxels * step), sdf[tuple(voxels.T)]
    )
    # Beyond the grid: value at the nearest grid point plus the distance to it.
    outside = np.array([[-1.5, -1.0 + 10 * 0.1, -1.0 + 10 * 0.1]])
    assert interpolate_sdf(sdf, origin, step, outside)[0] == pytest.approx(sdf[0, 10, 10] + 0.5)
