"""Tests of the realism figures that compare synthetic images with real ones."""

from __future__ import annotations

from importlib.resources import files

import numpy as np
import pytest
import tifffile
from omegaconf import OmegaConf
from scipy import ndimage as ndi

from cellsdf.benchmark.realism import (
    holdout_quarter,
    intensity_w1,
    radial_power_spectrum,
    realism_figures,
    spectrum_distance,
)
from cellsdf.benchmark.seg import otsu_baseline, seg_measure
from cellsdf.texture.procedural import procedural_texture


@pytest.fixture(scope="module")
def cells() -> tuple[np.ndarray, np.ndarray]:
    """A noisy image of two bright squares on a dim background, and its labels."""
    labels = np.zeros((64, 64), np.uint16)
    labels[8:24, 8:28] = 1
    labels[36:56, 30:50] = 2
    rng = np.random.default_rng(0)
    image = 20.0 + 50.0 * (labels > 0) + rng.normal(0.0, 3.0, labels.shape)
    return image, labels


def test_identical_images_are_at_distance_zero(cells: tuple[np.ndarray, np.ndarray]) -> None:
    image, labels = cells
    assert intensity_w1(image, image.copy(), labels > 0) == (0.0, 0.0)
    assert spectrum_distance(image, image.copy()) == 0.0


@pytest.mark.parametrize("c", [0.5, 7.0, -3.25])
def test_foreground_offset_is_the_foreground_w1(cells: tuple[np.ndarray, np.ndarray], c: float) -> None:
    image, labels = cells
    shifted = image + c * (labels > 0)
    w1_foreground, w1_background = intensity_w1(image, shifted, labels)
    assert w1_foreground == pytest.approx(abs(c), abs=1e-6)
    assert w1_background == pytest.approx(0.0, abs=1e-12)


def test_w1_of_a_different_spread() -> None:
    # A distribution widened about its median moves each quantile by its distance to the median.
    real = np.array([[1.0, 2.0, 3.0, 10.0]])
    synthetic = np.array([[0.0, 2.0, 4.0, 10.0]])
    w1_foreground, w1_background = intensity_w1(real, synthetic, np.array([[1, 1, 1, 0]]))
    assert w1_foreground == pytest.approx(2 / 3)
    assert w1_background == 0.0


def test_blur_is_further_in_spectrum_than_other_white_noise() -> None:
    rng = np.random.default_rng(1)
    noise, other = rng.normal(size=(2, 128, 128))
    blurred = ndi.gaussian_filter(noise, 2.0)
    independent = spectrum_distance(noise, other)
    assert spectrum_distance(noise, blurred) > 10 * independent
    # Two white noises share a flat spectrum up to sampling scatter, well under a factor of 2 per ring.
    assert independent < np.log10(2)


def test_spectrum_ignores_brightness_and_offset(cells: tuple[np.ndarray, np.ndarray]) -> None:
    image, _ = cells
    frequencies, power = radial_power_spectrum(image)
    scaled_frequencies, scaled = radial_power_spectrum(3.0 * image + 100.0)
    np.testing.assert_array_equal(frequencies, scaled_frequencies)
    np.testing.assert_allclose(scaled, power, rtol=1e-9)
    assert power.sum() == pytest.approx(1.0)
    assert spectrum_distance(image, 3.0 * image + 100.0) == pytest.approx(0.0, abs=1e-9)


@pytest.mark.parametrize(
    ("shape", "cycles"), [((64, 64), (0, 8)), ((128, 128), (12, 16)), ((64, 96), (10, 0))]
)
def test_sinusoid_peaks_at_its_frequency(shape: tuple[int, int], cycles: tuple[int, int]) -> None:
    yy, xx = np.indices(shape)
    fy, fx = cycles[0] / shape[0], cycles[1] / shape[1]
    image = 100.0 + 10.0 * np.sin(2 * np.pi * (fy * yy + fx * xx))
    frequencies, power = radial_power_spectrum(image)
    assert frequencies[0] == pytest.approx(1 / min(shape))
    assert frequencies[-1] == pytest.approx(0.5)
    assert frequencies[power.argmax()] == pytest.approx(np.hypot(fy, fx), abs=0.5 / min(shape))
    assert power.max() > 0.3


def test_spectrum_distance_finite_for_a_pure_sinusoid(cells: tuple[np.ndarray, np.ndarray]) -> None:
    image, _ = cells
    sinusoid = np.sin(2 * np.pi * np.indices(image.shape)[1] / 8)
    assert np.isfinite(spectrum_distance(image, sinusoid))
    assert spectrum_distance(image, sinusoid) > 1.0


def test_realism_on_the_real_holdout_quarter() -> None:
    real_dir = files("cellsdf.assets") / "real"
    image = tifffile.imread(real_dir / "dsb2018_nuclei_img.tif")
    mask = tifffile.imread(real_dir / "dsb2018_nuclei_mask.tif")
    real, labels = holdout_quarter(image, mask)
    assert real.shape == labels.shape == (256, 256)
    np.testing.assert_array_equal(labels, mask[256:, 256:])
    params = OmegaConf.to_container(OmegaConf.load(files("cellsdf.conf") / "texture" / "procedural.yaml"))
    params.pop("_target_")
    synthetic = procedural_texture(labels, np.random.default_rng(0), **params)

    figures = realism_figures(real, synthetic, labels)

    assert set(figures) == {
        "w1_foreground",
        "w1_background",
        "spectrum_distance",
        "seg_real",
        "seg_synthetic",
        "mean_real_foreground",
        "mean_real_background",
        "mean_synthetic_foreground",
        "mean_synthetic_background",
    }
    assert all(np.isfinite(value) and isinstance(value, float) for value in figures.values())
    assert figures["seg_real"] == seg_measure(labels, otsu_baseline(real))
    assert 0.0 < figures["seg_synthetic"] <= 1.0
    assert figures["mean_real_foreground"] == pytest.approx(real[labels > 0].mean())
    assert figures["mean_real_background"] == pytest.approx(real[labels == 0].mean())
    # The quarter is noisy and textured: a synthetic image cannot match it pixel for pixel.
    assert figures["w1_foreground"] > 0 and figures["spectrum_distance"] > 0


def test_holdout_quarter_of_odd_shape() -> None:
    image = np.arange(5 * 7).reshape(5, 7)
    image_q, labels_q = holdout_quarter(image, image.astype(np.uint16))
    np.testing.assert_array_equal(image_q, image[2:, 3:])
    assert labels_q.shape == (3, 4)


@pytest.mark.parametrize(
    "call",
    [
        lambda a, b: intensity_w1(a, b[:, :-1], a > 0),
        lambda a, b: intensity_w1(a, b, (a > 0)[:-1]),
        lambda a, b: spectrum_distance(a, b.T[:-1]),
        lambda a, b: realism_figures(a, b, np.ones((4, 4), np.uint16)),
        lambda a, b: holdout_quarter(a, b[:-2]),
    ],
)
def test_shape_mismatch_raises(call) -> None:
    a, b = np.random.default_rng(2).normal(size=(2, 16, 16))
    with pytest.raises(ValueError, match="one shape"):
        call(a, b)


@pytest.mark.parametrize(
    ("image", "match"),
    [
        (np.zeros((4, 8, 8)), "2D"),
        (np.zeros((3, 16)), "4 x 4"),
        (np.full((8, 8), np.nan), "non-finite"),
        (np.full((8, 8), 5.0), "constant"),
    ],
)
def test_bad_spectrum_input(image: np.ndarray, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        radial_power_spectrum(image)


def test_empty_region_or_bad_labels_raise(cells: tuple[np.ndarray, np.ndarray]) -> None:
    image, labels = cells
    with pytest.raises(ValueError, match="foreground and the background"):
        intensity_w1(image, image, np.zeros(image.shape, bool))
    with pytest.raises(ValueError, match="integer"):
        realism_figures(image, image, labels.astype(float))
