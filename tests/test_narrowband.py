import numpy as np
import pytest
import torch

import cellsdf.decode.narrowband as narrowband
from cellsdf.decode.dense import bf16_fast, decode_dense, decode_points, resolve_precision
from cellsdf.decode.narrowband import block_radius, decode_narrowband, default_coarse
from cellsdf.geometry.grid import cube_grid
from cellsdf.geometry.rotation import axis_angle_matrix
from cellsdf.model.checkpoint import BUILT_IN, load_autodecoder
from cellsdf.model.siren import SirenDecoder


@pytest.fixture(scope="module")
def models():
    return {name: load_autodecoder(name) for name in BUILT_IN}


def frame(model, sequence, rotation):
    """Latent of a training sequence and a rotation: none, the sequence's learned one, or a given vector."""
    latent = model.latents.weight[sequence].detach()
    if rotation == "learned":
        return latent, model.rotation_matrices(torch.tensor([sequence]))[0]
    return latent, None if rotation is None else axis_angle_matrix(torch.tensor(rotation))


def capsules(points: np.ndarray) -> np.ndarray:
    """Exact SDF of a fat capsule and a rod thinner than a 64³ voxel, lying on grid points."""

    def capsule(a, b, radius):
        a, b = np.asarray(a), np.asarray(b)
        s = np.clip(((points - a) @ (b - a)) / ((b - a) @ (b - a)), 0.0, 1.0)
        return np.linalg.norm(points - (a + s[:, None] * (b - a)), axis=1) - radius

    rod = capsule((0.0, 0.0, -0.6), (0.0, 0.0, 0.6), 0.01)
    return np.minimum(capsule((-0.3, 0.1, -0.2), (0.3, -0.1, 0.25), 0.3), rod).astype(np.float32)


@pytest.mark.parametrize("resolution", [8, 9, 37, 63, 64])
@pytest.mark.parametrize("coarse", [None, 2, 4, 16, 128])
def test_exact_distances_give_the_dense_mask(monkeypatch, resolution, coarse):
    # With a true distance function a block test of margin 1 is exact, so every voxel must match.
    monkeypatch.setattr(narrowband, "decode_points", lambda d, z, t, points, **_: capsules(points))
    expected = capsules(cube_grid(resolution)).reshape((resolution,) * 3) <= 0
    mask = decode_narrowband(None, None, 0.0, resolution, coarse=coarse, margin=1.0)
    assert mask.dtype == bool and mask.shape == (resolution,) * 3 and mask.flags.c_contiguous
    np.testing.assert_array_equal(mask, expected)
    assert 0 < expected.sum() < expected.size


def test_exact_distances_far_from_the_grid(monkeypatch):
    # No surface anywhere: all settled at the first level, one sign everywhere.
    monkeypatch.setattr(narrowband, "decode_points", lambda d, z, t, p, **_: np.full(len(p), 5.0))
    counts = []
    assert not decode_narrowband(None, None, 0.0, 40, coarse=8, counts=counts).any()
    assert counts == [125, 0, 0, 0]
    monkeypatch.setattr(narrowband, "decode_points", lambda d, z, t, p, **_: np.full(len(p), -5.0))
    assert decode_narrowband(None, None, 0.0, 40, coarse=8).all()


@pytest.mark.parametrize("name", BUILT_IN)
def test_agrees_with_dense_on_shipped_models(models, name):
    model = models[name]
    cases = [(0, -1.0, None), (3, 0.25, "learned"), (6, 1.0, (0.4, -1.1, 0.7))]
    for sequence, t, rotation in cases:
        latent, matrix = frame(model, sequence, rotation)
        dense = decode_dense(model.decoder, latent, t, 64, rotation=matrix) <= 0
        assert 0.005 < dense.mean() < 0.5  # a real cell in the grid
        variants = [{}] if sequence else [{}, {"coarse": 16}, {"coarse": 2, "margin": 1.5, "chunk": 1000}]
        for options in variants:
            mask = decode_narrowband(model.decoder, latent, t, 64, rotation=matrix, **options)
            agreement = (mask == dense).mean()
            assert agreement >= 0.999, (sequence, t, rotation, options, agreement)


def test_decodes_fewer_points_and_voxels_on_the_dense_grid(models, monkeypatch):
    model = models["filo"]
    latent, rotation = frame(model, 2, "learned")
    calls = []

    def counting(decoder, latent, t, points, *, rotation=None, chunk=1 << 16, precision="32"):
        values = decode_points(
            decoder, latent, t, points, rotation=rotation, chunk=chunk, precision=precision
        )
        calls.append((points, values))
        return values

    monkeypatch.setattr(narrowband, "decode_points", counting)
    counts = []
    mask = decode_narrowband(model.decoder, latent, 0.5, 64, rotation=rotation, coarse=8, counts=counts)
    assert counts == [len(points) for points, _ in calls] and len(counts) == 4  # sides 8, 4, 2, 1
    assert counts[0] == 8**3
    assert sum(counts) < 64**3 / 4
    # The last level decodes voxels at the dense grid's own points, to the same values.
    points, values = calls[-1]
    axis = np.linspace(-1.0, 1.0, 64)
    index = np.rint((points + 1.0) * 63 / 2).astype(int)
    np.testing.assert_array_equal(points, axis[index])
    dense = decode_dense(model.decoder, latent, 0.5, 64, rotation=rotation)
    np.testing.assert_allclose(values, dense[tuple(index.T)], atol=1e-5)
    np.testing.assert_array_equal(mask[tuple(index.T)], values <= 0)
    assert (mask == (dense <= 0)).mean() >= 0.999


@pytest.mark.parametrize(("resolution", "coarse"), [(37, None), (37, 64), (8, 16), (9, 2)])
def test_odd_resolutions_and_blocks_larger_than_the_grid(models, resolution, coarse):
    model = models["cele"]
    latent, rotation = frame(model, 1, "learned")
    dense = decode_dense(model.decoder, latent, 0.0, resolution, rotation=rotation) <= 0
    mask = decode_narrowband(model.decoder, latent, 0.0, resolution, rotation=rotation, coarse=coarse)
    assert mask.shape == (resolution,) * 3
    assert (mask == dense).mean() >= 0.999


def test_default_coarse_keeps_blocks_within_the_clamp():
    assert [default_coarse(r) for r in (8, 32, 64, 128, 256, 512)] == [2, 2, 4, 8, 8, 16]
    for resolution in (37, 100, 256, 1000):
        coarse = default_coarse(resolution, clamp=0.05)
        assert coarse == 2 or block_radius(coarse, resolution) <= 0.05
        assert block_radius(2 * coarse, resolution) > 0.05
    assert default_coarse(8, clamp=100.0) == 8  # never wider than the grid
    assert block_radius(1, 64) == 0.0
    assert block_radius(3, 3) == pytest.approx(np.sqrt(3.0))


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"coarse": 3}, "coarse must be a power of two"),
        ({"coarse": 1}, "coarse must be a power of two"),
        ({"coarse": 0}, "coarse must be a power of two"),
        ({"coarse": 8.0}, "coarse must be a power of two"),
        ({"margin": 0.0}, "margin must be"),
        ({"margin": -1.0}, "margin must be"),
        ({"margin": float("nan")}, "margin must be"),
        ({"chunk": 0}, "chunk must be"),
        ({"clamp": 0.0}, "clamp must be"),
        ({"resolution": 1}, "resolution must be"),
        ({"resolution": 32.0}, "resolution must be"),
        ({"rotation": torch.eye(4)}, "rotation must be a \\(3, 3\\) matrix"),
        ({"precision": "16"}, "precision must be one of 32, bf16"),
    ],
)
def test_bad_arguments_raise(models, options, message):
    model = models["plat"]
    arguments = {"resolution": 16} | options
    with pytest.raises(ValueError, match=message):
        decode_narrowband(model.decoder, model.latents.weight[0].detach(), 0.0, **arguments)


@pytest.mark.parametrize("name", BUILT_IN)
def test_bf16_gives_the_float32_mask(models, name, monkeypatch):
    model = models[name]
    latent, rotation = frame(model, 3, "learned")
    reference = decode_narrowband(model.decoder, latent, 0.25, 64, rotation=rotation)
    assert (reference == (decode_dense(model.decoder, latent, 0.25, 64, rotation=rotation) <= 0)).all()
    counts = []
    mask = decode_narrowband(
        model.decoder, latent, 0.25, 64, rotation=rotation, counts=counts, precision="bf16"
    )
    assert (mask == reference).mean() >= 0.9999
    assert len(counts) == 4 and 0 < counts[-1] < counts[-2] / 4  # a few voxels decoded again in float32
    # Without the float32 pass near the zero level, bf16 alone changes voxels there.
    monkeypatch.setattr(narrowband, "BF16_GUARD", -1.0)
    rounded = decode_narrowband(model.decoder, latent, 0.25, 64, rotation=rotation, precision="bf16")
    assert 0 < np.count_nonzero(rounded != reference) < 0.001 * reference.size


def test_bf16_rounds_only_the_hidden_products(models):
    model = models["plat"]
    latent, rotation = frame(model, 0, "learned")
    points = cube_grid(24)
    exact = decode_points(model.decoder, latent, 0.0, points, rotation=rotation)
    rounded = decode_points(model.decoder, latent, 0.0, points, rotation=rotation, precision="bf16")
    deviation = np.abs(rounded - exact)
    assert rounded.dtype == np.float32 and 0 < deviation.max() < 5e-3 and deviation.mean() < 5e-4


def test_auto_precision_follows_the_hardware():
    assert resolve_precision("auto", "cpu") == ("bf16" if bf16_fast("cpu") else "32")
    assert resolve_precision("32", "cpu") == "32" and resolve_precision("bf16", "cpu") == "bf16"
    with pytest.raises(ValueError, match="precision must be one of"):
        resolve_precision("fp8", "cpu")


def moving_capsules(points: np.ndarray, t: float) -> np.ndarray:
    """The capsules of :func:`capsules` shifted along x by ``t``, plus a ball that exists only for t > 0.5."""
    values = capsules(points - np.array([0.0, 0.0, t]))
    if t > 0.5:
        values = np.minimum(values, np.linalg.norm(points - (0.0, 0.7, -0.7), axis=1) - 0.15)
    return values.astype(np.float32)


@pytest.mark.parametrize("shift", [0.02, 0.3])
def test_tracking_follows_a_surface_that_left_the_band(monkeypatch, shift):
    # Exact distances: the tracked mask must be the dense one, also after a move of 5 voxels (0.3 at 37³).
    monkeypatch.setattr(
        narrowband, "decode_points", lambda d, z, t, p, **_: moving_capsules(p, t).astype(np.float32)
    )
    resolution = 37
    grid = cube_grid(resolution)
    before = moving_capsules(grid, 0.0).reshape((resolution,) * 3) <= 0
    after = moving_capsules(grid, shift).reshape((resolution,) * 3) <= 0
    assert np.count_nonzero(before != after) > (500 if shift > 0.1 else 10)
    counts = []
    mask = narrowband.decode_tracked(None, None, shift, before, coarse=4, margin=1.0, counts=counts)
    np.testing.assert_array_equal(mask, after)
    assert sum(counts) < resolution**3 / 3


def diagonal_chain(points: np.ndarray, t: float, resolution: int = 33) -> np.ndarray:
    """A ball and a chain of single voxels along (1, 1, 1) from it, ``round(10 * t)`` voxels long.

    Each link is a ball of a third of a voxel around a grid point, so consecutive links share only a corner: a
    filopodium one voxel thin that grows along a diagonal.
    """
    step = 2.0 / (resolution - 1)
    # The ball (radius 4.2 voxels about a grid point) holds the point 2 voxels along the diagonal, not 3.
    values = np.linalg.norm(points + 0.25, axis=1) - 4.2 * step
    for k in range(3, 3 + round(10 * t)):
        values = np.minimum(values, np.linalg.norm(points + 0.25 - k * step, axis=1) - step / 3)
    return values.astype(np.float32)


def test_tracking_follows_a_chain_of_voxels_that_grows_along_a_diagonal(monkeypatch):
    # The new links touch the old tip at a corner only, so no face neighbour shows the growth.
    monkeypatch.setattr(narrowband, "decode_points", lambda d, z, t, p, **_: diagonal_chain(p, t))
    grid = cube_grid(33)
    before, after = (diagonal_chain(grid, t).reshape((33,) * 3) <= 0 for t in (0.3, 0.6))
    assert np.count_nonzero(after & ~before) == 3
    mask = narrowband.decode_tracked(None, None, 0.6, before, coarse=4, margin=1.0)
    np.testing.assert_array_equal(mask, after)


def test_tracking_reports_a_surface_it_cannot_see(monkeypatch):
    # A ball that appears far from the old surface touches none of it: the coarse check must say so.
    monkeypatch.setattr(narrowband, "decode_points", lambda d, z, t, p, **_: moving_capsules(p, t))
    resolution = 37
    before = moving_capsules(cube_grid(resolution), 0.4).reshape((resolution,) * 3) <= 0
    with pytest.raises(narrowband.TrackingLost, match="coarse block"):
        narrowband.decode_tracked(None, None, 0.6, before, coarse=4, margin=1.0)


@pytest.mark.parametrize("name", BUILT_IN)
def test_tracked_frames_agree_with_dense(models, name):
    model = models[name]
    latent, rotation = frame(model, 1, "learned")
    previous = decode_narrowband(model.decoder, latent, 0.0, 48, rotation=rotation)
    for t in (0.07, 0.14, 0.35):
        dense = decode_dense(model.decoder, latent, t, 48, rotation=rotation) <= 0
        counts = []
        mask = narrowband.decode_tracked(model.decoder, latent, t, previous, rotation=rotation, counts=counts)
        assert (mask == dense).mean() >= 0.9999, (t, np.count_nonzero(mask != dense))
        full = []
        decode_narrowband(model.decoder, latent, t, 48, rotation=rotation, counts=full)
        assert sum(counts) < sum(full)
        previous = mask


def test_tracking_refuses_a_previous_mask_that_is_not_a_grid(models):
    model = models["plat"]
    with pytest.raises(ValueError, match="previous must be a cubic bool mask"):
        narrowband.decode_tracked(
            model.decoder, model.latents.weight[0].detach(), 0.0, np.zeros((4, 4, 5), bool)
        )


def test_a_field_that_never_settles_costs_at_most_a_seventh_more_than_dense():
    # An untrained decoder's values stay within the clamp everywhere, so no block is settled: the worst case.
    torch.manual_seed(0)
    decoder = SirenDecoder(16, [64, 64, 64], inject=[2])
    latent = torch.randn(16) * 0.1
    dense = decode_dense(decoder, latent, 0.0, 32) <= 0
    counts = []
    mask = decode_narrowband(decoder, latent, 0.0, 32, counts=counts)
    assert counts[-1] == 32**3 and sum(counts) <= 32**3 * 8 / 7
    np.testing.assert_array_equal(mask, dense)
    tracked = []
    later = narrowband.decode_tracked(decoder, latent, 0.1, mask, counts=tracked)
    assert sum(tracked) <= 32**3 + (32 // 2) ** 3
    assert (later == (decode_dense(decoder, latent, 0.1, 32) <= 0)).mean() >= 0.999
