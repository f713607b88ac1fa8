import numpy as np
import pytest
from scipy.special import ellipeinc, ellipkinc

from cellsdf.evaluate.descriptors import DESCRIPTORS, frame_descriptors, skeleton_end_points
from cellsdf.geometry.surface import crop_box


def ellipsoid(size, radii, spacing=(1.0, 1.0, 1.0), offset=(0.3, -0.2, 0.1)):
    """Ellipsoid mask with semi-axes `radii` in µm, centred (off the voxel grid) in a `size`³ grid."""
    axes = [(np.arange(size) - size / 2 - o) * s for o, s in zip(offset, spacing, strict=True)]
    z, y, x = np.meshgrid(*axes, indexing="ij", sparse=True)
    return (z / radii[0]) ** 2 + (y / radii[1]) ** 2 + (x / radii[2]) ** 2 <= 1.0


def ellipsoid_area(a, b, c):
    """Surface area of an ellipsoid with semi-axes a >= b >= c (Legendre's formula)."""
    phi = np.arccos(c / a)
    k2 = a * a * (b * b - c * c) / (b * b * (a * a - c * c))
    sin, cos = np.sin(phi), np.cos(phi)
    return 2 * np.pi * c * c + 2 * np.pi * a * b / sin * (
        ellipeinc(phi, k2) * sin**2 + ellipkinc(phi, k2) * cos**2
    )


@pytest.fixture(scope="module")
def sphere():
    r = 40.0
    return r, frame_descriptors(ellipsoid(128, (r, r, r)), (1.0, 1.0, 1.0))


@pytest.fixture(scope="module")
def spheroid_321():
    radii = (54.0, 36.0, 18.0)
    return radii, frame_descriptors(ellipsoid(128, radii), (1.0, 1.0, 1.0))


def test_sphere_at_128_matches_analytic_values(sphere):
    r, d = sphere
    assert d["volume"] == pytest.approx(4 / 3 * np.pi * r**3, rel=0.015)
    assert d["area"] == pytest.approx(4 * np.pi * r**2, rel=0.015)
    assert d["sphericity"] > 0.97
    assert d["elongation"] == pytest.approx(1.0, abs=0.02)
    assert d["flatness"] == pytest.approx(1.0, abs=0.02)
    assert d["mean_curvature"] == pytest.approx(4 * np.pi * r, rel=0.02)
    assert d["solidity"] == pytest.approx(1.0, abs=0.01)
    assert (d["components"], d["euler"]) == (1, 1)
    assert d["end_points"] <= 2


def test_ellipsoid_321_at_128_matches_analytic_values(spheroid_321):
    (a, b, c), d = spheroid_321
    assert d["volume"] == pytest.approx(4 / 3 * np.pi * a * b * c, rel=0.015)
    assert d["area"] == pytest.approx(ellipsoid_area(a, b, c), rel=0.015)
    assert d["elongation"] == pytest.approx(2 / 3, abs=0.02)
    assert d["flatness"] == pytest.approx(1 / 3, abs=0.02)
    assert d["sphericity"] < 0.9


def test_descriptors_are_physical_with_anisotropic_spacing():
    # The same 12 µm ball sampled with 2 µm slices and 1 µm pixels.
    d = frame_descriptors(
        ellipsoid(48, (12, 12, 12), spacing=(2.0, 1.0, 1.0), offset=(0, 0, 0)), (2.0, 1.0, 1.0)
    )
    assert d["volume"] == pytest.approx(4 / 3 * np.pi * 12**3, rel=0.03)
    assert d["area"] == pytest.approx(4 * np.pi * 12**2, rel=0.03)
    assert d["elongation"] == pytest.approx(1.0, abs=0.03)
    assert d["flatness"] == pytest.approx(1.0, abs=0.03)


def test_topology_counts_components_and_tunnels():
    two = ellipsoid(40, (6, 6, 6), offset=(0, 0, -9)) | ellipsoid(40, (6, 6, 6), offset=(0, 0, 9))
    d = frame_descriptors(two, (1.0, 1.0, 1.0), names=("components", "euler"))
    assert d == {"components": 2.0, "euler": 2.0}
    z, y, x = np.meshgrid(*[np.arange(40) - 20] * 3, indexing="ij")
    torus = (np.sqrt(y**2 + x**2) - 12) ** 2 + z**2 <= 16
    assert frame_descriptors(torus, (1.0, 1.0, 1.0), names=("euler",))["euler"] == 0


def test_end_points_count_protrusions():
    body = ellipsoid(64, (10, 10, 10), offset=(0, 0, 0))
    spikes = body.copy()
    centre = 32
    spikes[centre - 1 : centre + 2, centre - 1 : centre + 2, centre:62] = True  # +x
    spikes[centre - 1 : centre + 2, centre:62, centre - 1 : centre + 2] = True  # +y
    spikes[centre - 1 : centre + 2, 2:centre, centre - 1 : centre + 2] = True  # -y
    crop_body, crop_spikes = crop_box(body)[0], crop_box(spikes)[0]
    assert skeleton_end_points(crop_body) <= 2
    assert skeleton_end_points(crop_spikes) == 3


def test_subset_of_descriptors_and_empty_mask():
    mask = ellipsoid(32, (8, 6, 5))
    assert list(frame_descriptors(mask, (1.0, 1.0, 1.0), names=("flatness", "volume"))) == [
        "flatness",
        "volume",
    ]
    assert set(frame_descriptors(mask, (1.0, 1.0, 1.0))) == set(DESCRIPTORS)
    with pytest.raises(ValueError, match="empty"):
        frame_descriptors(np.zeros((8, 8, 8), bool), (1.0, 1.0, 1.0))
