"""The geometry ground floor: grid step and spacing, marching cubes, uniform rotations, overlap measures."""

import numpy as np
import pytest
import trimesh
from scipy import stats
from scipy.spatial.transform import Rotation

from cellsdf.geometry.grid import cube_grid, grid_axis, grid_spacing, grid_step
from cellsdf.geometry.overlap import dice, iou
from cellsdf.geometry.rotation import rotate_about, uniform_rotation
from cellsdf.geometry.surface import crop_box, frame_mesh, surface_mesh, surface_points, xyz_mesh
from cellsdf.simulate import sequence_rng, simulate_sequence


def test_grid_step_is_the_distance_between_neighbouring_points():
    assert grid_step(2) == 2.0
    assert grid_step(3) == 1.0
    assert grid_step(256) == 2.0 / 255
    for size in (2, 7, 64, 255):
        assert np.allclose(np.diff(grid_axis(size)), grid_step(size))
    with pytest.raises(ValueError, match="size"):
        grid_step(1)
    with pytest.raises(ValueError, match="size"):
        grid_step(2.5)


def test_grid_spacing_is_the_step_in_micrometres():
    # scale: normalised units per µm, so a 65³ grid with a step of 1/32 at 0.125 units/µm has 0.25 µm voxels.
    assert grid_spacing(65, 0.125) == (0.25, 0.25, 0.25)
    assert grid_spacing(256, 0.01) == (grid_step(256) / 0.01,) * 3
    with pytest.raises(ValueError, match="scale"):
        grid_spacing(64, 0.0)


def test_cube_grid_points_in_c_order():
    size = 4
    points = cube_grid(size).reshape(size, size, size, 3)
    axis = grid_axis(size)
    i, j, k = 1, 3, 2
    assert points[i, j, k].tolist() == [axis[i], axis[j], axis[k]]
    assert points.min() == -1.0 and points.max() == 1.0
    assert cube_grid(1).tolist() == [[-1.0, -1.0, -1.0]]


def ball(size, radius, centre):
    z, y, x = np.ogrid[:size, :size, :size]
    return (z - centre[0]) ** 2 + (y - centre[1]) ** 2 + (x - centre[2]) ** 2 <= radius**2


def test_marching_cubes_of_a_ball_has_its_volume_and_area_in_micrometres():
    radius, spacing = 12.0, (0.5, 0.5, 0.5)
    mask = ball(40, radius, (19.3, 20.1, 18.7))
    crop, origin = crop_box(mask)
    mesh = surface_mesh(crop, spacing, origin=origin)
    r = radius * spacing[0]
    assert mesh.is_watertight and mesh.volume > 0  # outward normals
    assert mesh.volume == pytest.approx(4 / 3 * np.pi * r**3, rel=0.02)
    assert mesh.area == pytest.approx(4 * np.pi * r**2, rel=0.02)
    # origin puts the vertices in the frame's µm coordinates
    assert mesh.vertices.mean(axis=0) == pytest.approx(np.array([19.3, 20.1, 18.7]) * 0.5, abs=0.05)


def test_crop_box_pads_and_reports_the_first_voxel():
    mask = np.zeros((6, 7, 8), bool)
    mask[0, 2:4, 5:8] = True
    crop, origin = crop_box(mask)
    assert crop.shape == (3, 4, 5) and origin.tolist() == [-1, 1, 4]
    assert crop.sum() == mask.sum() and not crop[0].any() and not crop[-1].any()
    assert crop_box(mask, pad=0)[0].all()
    assert crop_box(np.zeros((3, 3, 3), bool)) is None


def test_xyz_mesh_reverses_the_axes_and_keeps_the_normals_outward():
    box = trimesh.creation.box(extents=(1.0, 2.0, 4.0))
    box.apply_translation((10.0, 20.0, 30.0))
    turned = xyz_mesh(box)
    assert turned.vertices.tolist() == box.vertices[:, ::-1].tolist()
    assert turned.volume == pytest.approx(8.0)
    assert xyz_mesh(turned).vertices.tolist() == box.vertices.tolist()


def test_surface_points_lie_on_the_surface_and_repeat_with_the_seed():
    sphere = trimesh.creation.icosphere(subdivisions=4, radius=3.0)
    points = surface_points(sphere, 500, 7)
    assert points.dtype == np.float32 and points.shape == (500, 3)
    assert np.allclose(np.linalg.norm(points, axis=1), 3.0, atol=0.02)
    assert np.array_equal(points, surface_points(sphere, 500, 7))
    assert np.abs(points.mean(axis=0)).max() < 0.3


def test_iou_and_dice_of_known_masks():
    a = np.zeros((4, 5, 6), bool)
    b = np.zeros_like(a)
    a[:2] = True  # 60 voxels
    b[1:3] = True  # 60 voxels, 30 shared
    assert iou(a, b) == 30 / 90
    assert dice(a, b) == 2 * 30 / 120
    assert iou(a, a) == 1.0 and dice(a, a) == 1.0
    assert iou(a, ~a) == 0.0 and dice(a, ~a) == 0.0
    # Dice = 2 IoU / (1 + IoU) for any pair
    assert dice(a, b) == pytest.approx(2 * iou(a, b) / (1 + iou(a, b)))
    # non-zero is foreground, whatever the dtype
    assert iou(a.astype(np.uint8) * 255, b.astype(np.int32)) == iou(a, b)
    with pytest.raises(ValueError, match="shapes differ"):
        dice(a, b[:, :, :5])


def test_uniform_rotations_pass_a_uniformity_test_that_euler_angles_fail():
    rng = np.random.default_rng(0)
    rotations = Rotation.from_rotvec(np.stack([uniform_rotation(rng) for _ in range(3000)]))
    # Under the Haar measure a rotated axis is uniform on the sphere (z uniform in [-1, 1]) and the angle has
    # density (1 - cos θ) / π, i.e. CDF (θ - sin θ) / π.
    z = rotations.apply([0.0, 0.0, 1.0])[:, 2]
    assert stats.kstest(z, stats.uniform(-1, 2).cdf).pvalue > 0.01
    angle_cdf = lambda a: (a - np.sin(a)) / np.pi  # noqa: E731
    assert stats.kstest(rotations.magnitude(), angle_cdf).pvalue > 0.01
    euler = Rotation.from_euler("zyz", rng.uniform(0, [2 * np.pi, np.pi, 2 * np.pi], size=(3000, 3)))
    assert stats.kstest(euler.apply([0.0, 0.0, 1.0])[:, 2], stats.uniform(-1, 2).cdf).pvalue < 1e-6


def test_uniform_rotation_matrices_average_to_zero():
    # The Haar mean of a rotation matrix is 0 (each entry is symmetric about 0); with 2000 draws every entry
    # of the sample mean has a standard deviation of 1 / sqrt(3 * 2000) ~ 0.013.
    rng = np.random.default_rng(5)
    vectors = np.stack([uniform_rotation(rng) for _ in range(2000)])
    assert np.linalg.norm(vectors, axis=1).max() <= np.pi + 1e-12
    mean = Rotation.from_rotvec(vectors).as_matrix().mean(axis=0)
    assert np.abs(mean).max() < 0.06
    # the same seed gives the same rotation
    first, again = (uniform_rotation(np.random.default_rng(3)) for _ in range(2))
    assert np.array_equal(first, again)


def test_rotate_about_matches_the_rotation_vector():
    rng = np.random.default_rng(2)
    for _ in range(5):
        axis = rng.normal(size=3)
        axis /= np.linalg.norm(axis)
        v, angle = rng.normal(size=3), rng.uniform(-np.pi, np.pi)
        expected = Rotation.from_rotvec(axis * angle).apply(v)
        assert np.allclose(rotate_about(v, axis, angle), expected)


@pytest.mark.parametrize("line", ["filo", "plat"])
def test_decimated_meshes_stay_within_half_a_voxel_of_the_full_mesh(line):
    # Thin filopodia and flat lamellae are where decimation could cut across the cell; the distance is exact
    # (trimesh's closest-point query) from every vertex and face centre of each mesh to the other surface.
    mask = simulate_sequence(line, 2, 64, sequence_rng(0, 0)).masks[1]
    voxel = 0.2
    full = frame_mesh(mask, (voxel,) * 3)
    coarse = frame_mesh(mask, (voxel,) * 3, tolerance=0.5)
    for a, b in ((full, coarse), (coarse, full)):
        points = np.vstack([a.vertices, a.triangles_center])
        _, distance, _ = trimesh.proximity.closest_point(b, points)
        assert distance.max() <= 0.5 * voxel
    assert len(coarse.faces) < 0.5 * len(full.faces)
    assert coarse.is_watertight == full.is_watertight
    assert coarse.volume == pytest.approx(full.volume, rel=0.01)
    assert len(frame_mesh(mask, (voxel,) * 3, tolerance=0.0).faces) > len(coarse.faces)
