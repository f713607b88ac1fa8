"""Tests of the procedural texture model."""

from __future__ import annotations

import inspect
from importlib.resources import files

import numpy as np
import pytest
import tifffile
from omegaconf import OmegaConf
from skimage.filters import threshold_otsu

from cellsdf.texture.procedural import procedural_texture


def _disks(shape: tuple[int, int], centres: list[tuple[int, int]], radius: float) -> np.ndarray:
    yy, xx = np.indices(shape)
    labels = np.zeros(shape, np.uint16)
    for i, (cy, cx) in enumerate(centres, start=1):
        labels[(yy - cy) ** 2 + (xx - cx) ** 2 <= radius**2] = i
    return labels


@pytest.fixture(scope="module")
def disk() -> np.ndarray:
    return _disks((128, 128), [(64, 64)], 30)


@pytest.fixture(scope="module")
def few_disks() -> np.ndarray:
    return _disks((256, 256), [(60, 60), (60, 190), (190, 70), (180, 180), (128, 128)], 22)


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / (a | b).sum())


def _high_freq_power(image: np.ndarray) -> float:
    spectrum = np.abs(np.fft.fftshift(np.fft.fft2(image - image.mean()))) ** 2
    ky, kx = np.indices(image.shape) - np.array(image.shape)[:, None, None] // 2
    return float(spectrum[np.hypot(ky, kx) > min(image.shape) / 4].sum())


def test_dtype_and_shape(few_disks: np.ndarray) -> None:
    image = procedural_texture(few_disks, np.random.default_rng(0))
    assert image.dtype == np.uint16
    assert image.shape == few_disks.shape


def test_seeded(few_disks: np.ndarray) -> None:
    a = procedural_texture(few_disks, np.random.default_rng(1))
    b = procedural_texture(few_disks, np.random.default_rng(1))
    c = procedural_texture(few_disks, np.random.default_rng(2))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_cells_brighter_than_background(few_disks: np.ndarray) -> None:
    image = procedural_texture(few_disks, np.random.default_rng(3)).astype(float)
    fg, bg = image[few_disks > 0].mean(), image[few_disks == 0].mean()
    assert fg > 1.5 * bg


def test_rim_brighter_than_interior(disk: np.ndarray) -> None:
    image = procedural_texture(
        disk,
        np.random.default_rng(4),
        rim_contrast=1.0,
        rim_width=2.0,
        cell_intensity_cv=0.0,
        background_variation=0.0,
    ).astype(float)
    r = np.hypot(*(np.indices(disk.shape) - 64))
    rim = image[(r > 25) & (r <= 29)].mean()
    interior = image[r < 18].mean()
    assert rim > 1.2 * interior


def test_touching_cells_get_their_own_rim() -> None:
    labels = np.zeros((64, 64), np.uint16)
    labels[16:48, 8:32] = 1
    labels[16:48, 32:56] = 2
    kw = dict(
        rim_contrast=1.0,
        cell_intensity_cv=0.0,
        texture_amplitude=0.0,
        psf_sigma=0.0,
        background_variation=0.0,
        read_noise=0.0,
        cell_intensity=1000.0,
    )
    image = procedural_texture(labels, np.random.default_rng(5), **kw).astype(float)
    # The shared edge (columns 31, 32) is rim, the cell centre (column 20) is not.
    assert image[20:44, 31:33].mean() > 1.5 * image[20:44, 20].mean()


def test_blur_smooths(few_disks: np.ndarray) -> None:
    # Camera noise is white and would hide the PSF, so switch it off here.
    kw = dict(gain=1e-3, read_noise=0.0)
    sharp = procedural_texture(few_disks, np.random.default_rng(6), psf_sigma=0.0, **kw)
    blurred = procedural_texture(few_disks, np.random.default_rng(6), psf_sigma=2.0, **kw)
    assert _high_freq_power(blurred.astype(float)) < 0.2 * _high_freq_power(sharp.astype(float))


def test_poisson_variance_grows_with_intensity() -> None:
    labels = np.zeros((128, 128), np.uint16)
    labels[:, 64:] = 1
    image = procedural_texture(
        labels,
        np.random.default_rng(7),
        background=100.0,
        background_variation=0.0,
        cell_intensity=900.0,
        cell_intensity_cv=0.0,
        texture_amplitude=0.0,
        rim_contrast=0.0,
        psf_sigma=0.0,
        gain=2.0,
        read_noise=1.0,
    ).astype(float)
    dim, bright = image[:, :60], image[:, 68:]
    assert bright.var() > 5 * dim.var()
    # Poisson-Gaussian: variance = gain * mean + read_noise**2.
    assert bright.var() == pytest.approx(2.0 * 1000.0 + 1.0, rel=0.1)
    assert dim.var() == pytest.approx(2.0 * 100.0 + 1.0, rel=0.1)


def test_otsu_recovers_mask(few_disks: np.ndarray) -> None:
    # With the real-image defaults (cell CV 0.5, uneven background) Otsu scores
    # about 0.72, as on the real image itself (see the test below); with
    # moderate variation it must recover the disks well.
    image = procedural_texture(
        few_disks, np.random.default_rng(8), cell_intensity_cv=0.2, background_variation=0.1
    )
    segmented = image > threshold_otsu(image)
    assert _iou(segmented, few_disks > 0) > 0.8


def test_defaults_match_real_image() -> None:
    real_dir = files("cellsdf.assets") / "real"
    real = tifffile.imread(real_dir / "dsb2018_nuclei_img.tif").astype(float)
    mask = tifffile.imread(real_dir / "dsb2018_nuclei_mask.tif")
    synthetic = procedural_texture(mask, np.random.default_rng(12)).astype(float)
    for region in (mask > 0, mask == 0):
        assert synthetic[region].mean() == pytest.approx(real[region].mean(), rel=0.25)
    real_iou = _iou(real > threshold_otsu(real), mask > 0)
    synthetic_iou = _iou(synthetic > threshold_otsu(synthetic), mask > 0)
    assert abs(synthetic_iou - real_iou) < 0.1


def test_large_sparse_labels_and_bool() -> None:
    labels = np.zeros((32, 32), np.int64)
    labels[8:24, 8:24] = 2**40
    image = procedural_texture(labels, np.random.default_rng(9))
    assert image[12:20, 12:20].mean() > image[:4, :4].mean()
    image = procedural_texture(labels > 0, np.random.default_rng(9))
    assert image.shape == (32, 32)


def test_clipped_to_uint16() -> None:
    labels = np.ones((16, 16), np.uint16)
    image = procedural_texture(labels, np.random.default_rng(10), cell_intensity=1e6)
    assert image.max() == np.iinfo(np.uint16).max


@pytest.mark.parametrize(
    ("labels", "match"),
    [
        (np.zeros((4, 8, 8), np.uint16), "2D"),
        (np.zeros(8, np.uint16), "2D"),
        (np.zeros((8, 8), np.float32), "integer"),
        (-np.ones((8, 8), np.int32), "non-negative"),
    ],
)
def test_bad_labels(labels: np.ndarray, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        procedural_texture(labels, np.random.default_rng(0))


@pytest.mark.parametrize(
    "params",
    [
        {"psf_sigma": -1.0},
        {"gain": 0.0},
        {"read_noise": float("nan")},
        {"texture_amplitude": 1.5},
        {"background_variation": 2.0},
        {"cell_intensity": -5.0},
    ],
)
def test_bad_params(params: dict[str, float]) -> None:
    with pytest.raises(ValueError, match=next(iter(params))):
        procedural_texture(np.zeros((8, 8), np.uint16), np.random.default_rng(0), **params)


def test_config_matches_function(few_disks: np.ndarray) -> None:
    cfg = OmegaConf.load(files("cellsdf.conf") / "texture" / "procedural.yaml")
    params = OmegaConf.to_container(cfg)
    assert params.pop("_target_") == "cellsdf.texture.models.procedural"
    signature = inspect.signature(procedural_texture).parameters
    keywords = {k: p.default for k, p in signature.items() if p.kind is p.KEYWORD_ONLY}
    assert set(params) == set(keywords)
    # The YAML is the documented default; the code defaults must not drift from it.
    assert params == keywords
    image = procedural_texture(few_disks, np.random.default_rng(11), **params)
    assert image.dtype == np.uint16
