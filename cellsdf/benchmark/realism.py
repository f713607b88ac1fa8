"""How close synthetic microscopy images are to real ones: intensity, spatial frequency and segmentability.

The figures compare a real image with a synthetic image textured from the real image's own instance mask,
so that any difference comes from the texture model and not from the shapes: the 1-Wasserstein distance
between intensity distributions inside and outside the cells, a distance between radially averaged power
spectra, and the CTC SEG score of one fixed baseline segmentation (Otsu) on both images.
"""

from __future__ import annotations

import numpy as np
from scipy.signal.windows import hann
from scipy.stats import wasserstein_distance

from cellsdf.benchmark.seg import otsu_baseline, seg_measure
from cellsdf.texture.models import Texture
from cellsdf.texture.pairs import holdout_slices

__all__ = [
    "holdout_quarter",
    "intensity_w1",
    "radial_power_spectrum",
    "realism_figures",
    "spectrum_distance",
    "texture_realism",
]


def _check_same_shape(**arrays: np.ndarray) -> None:
    shapes = {name: np.shape(array) for name, array in arrays.items()}
    if len(set(shapes.values())) > 1:
        listed = ", ".join(f"{name} {shape}" for name, shape in shapes.items())
        raise ValueError(f"arrays must have one shape, got {listed}")


def intensity_w1(real: np.ndarray, synthetic: np.ndarray, foreground: np.ndarray) -> tuple[float, float]:
    """1-Wasserstein distance between the pixel values of two images, inside and outside the foreground.

    Parameters
    ----------
    real, synthetic : np.ndarray
        Grey-level images of one shape (ADU).
    foreground : np.ndarray
        Boolean mask or instance labels of the same shape; non-zero pixels are foreground.

    Returns
    -------
    tuple of float
        ``(foreground, background)`` distances in ADU: the mean absolute shift needed to turn one
        intensity distribution into the other (0 when the distributions are equal).

    Raises
    ------
    ValueError
        If the shapes differ, or the foreground or the background is empty.

    Examples
    --------
    >>> real = np.array([[1.0, 2.0], [10.0, 10.0]])
    >>> intensity_w1(real, real + [[0, 0], [3, 3]], real > 5)
    (3.0, 0.0)
    """
    _check_same_shape(real=real, synthetic=synthetic, foreground=foreground)
    inside = np.asarray(foreground) != 0
    if inside.all() or not inside.any():
        raise ValueError("the foreground and the background must both hold pixels")
    real, synthetic = np.asarray(real, np.float64), np.asarray(synthetic, np.float64)
    return (
        float(wasserstein_distance(real[inside], synthetic[inside])),
        float(wasserstein_distance(real[~inside], synthetic[~inside])),
    )


def radial_power_spectrum(image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Radially averaged power spectrum of an image, normalised to unit sum.

    The image is mean-subtracted and multiplied by a 2D Hann window before the FFT; power is averaged over
    rings one frequency step wide (``1 / min(shape)`` cycles per pixel) from the first step up to Nyquist
    (0.5 cycles per pixel). The zero-frequency bin is left out: after mean subtraction it carries no
    information. Dividing by the sum keeps the shape of the spectrum and drops overall brightness, which
    the intensity distances already cover.

    Parameters
    ----------
    image : np.ndarray
        (Y, X) grey-level image, at least 4 pixels on each side, finite and not constant.

    Returns
    -------
    frequencies : np.ndarray
        float64 ring centres in cycles per pixel, increasing.
    power : np.ndarray
        float64 mean power of each ring, summing to 1.

    Raises
    ------
    ValueError
        If the image is not 2D, smaller than 4 x 4, not finite, or constant.

    Examples
    --------
    >>> x = np.arange(64)
    >>> image = np.sin(2 * np.pi * 0.125 * x)[None, :].repeat(64, axis=0)
    >>> frequencies, power = radial_power_spectrum(image)
    >>> float(frequencies[power.argmax()])
    0.125
    """
    image = np.asarray(image, np.float64)
    if image.ndim != 2:
        raise ValueError(f"image must be 2D (Y, X), got shape {image.shape}")
    if min(image.shape) < 4:
        raise ValueError(f"image must be at least 4 x 4 pixels, got {image.shape}")
    if not np.isfinite(image).all():
        raise ValueError("image holds non-finite values")
    if image.min() == image.max():
        raise ValueError("image is constant; its power spectrum has no shape")
    # The FFT treats the image as periodic, so the jump between opposite edges (a nucleus cut by the crop
    # border, uneven background) leaks a broad streak of power into every frequency along the axes; the
    # window removes that jump, at the cost of smearing each frequency over about two rings.
    window = np.outer(hann(image.shape[0], sym=False), hann(image.shape[1], sym=False))
    power = np.abs(np.fft.fft2((image - image.mean()) * window)) ** 2
    steps = min(image.shape)
    fy, fx = np.meshgrid(np.fft.fftfreq(image.shape[0]), np.fft.fftfreq(image.shape[1]), indexing="ij")
    ring = np.rint(np.hypot(fy, fx) * steps).astype(np.int64).ravel()
    # Rings beyond Nyquist are only corners of the frequency square: partial and direction-biased.
    n_rings = steps // 2 + 1
    kept = ring < n_rings
    counts = np.bincount(ring[kept], minlength=n_rings)
    sums = np.bincount(ring[kept], weights=power.ravel()[kept], minlength=n_rings)
    radial = sums[1:] / counts[1:]
    return np.arange(1, n_rings) / steps, radial / radial.sum()


def spectrum_distance(real: np.ndarray, synthetic: np.ndarray, floor: float = 1e-12) -> float:
    """Mean absolute difference of the log10 radially averaged power spectra of two images.

    ``D = mean_k |log10 P_real(k) - log10 P_synthetic(k)|`` over the rings ``k`` of
    ``radial_power_spectrum`` (one frequency step up to Nyquist; both images have one shape, so they
    share every ring), with each spectrum normalised to unit sum. ``D`` is 0 for identical images and
    for images that differ only by brightness and offset; ``D = 1`` means the spectra differ by a factor
    of 10 at a typical frequency.

    Parameters
    ----------
    real, synthetic : np.ndarray
        (Y, X) grey-level images of one shape.
    floor : float
        Normalised power below this is raised to it before the logarithm, so that rings with no power
        (a pure sinusoid) give a finite distance.

    Returns
    -------
    float
        The distance, in decades of power (>= 0).

    Raises
    ------
    ValueError
        If the shapes differ, ``floor`` is not positive, or as ``radial_power_spectrum``.

    Examples
    --------
    >>> image = np.random.default_rng(0).normal(size=(32, 32))
    >>> spectrum_distance(image, image)
    0.0
    >>> round(spectrum_distance(image, 3 * image + 5), 9)
    0.0
    """
    _check_same_shape(real=real, synthetic=synthetic)
    if not floor > 0:
        raise ValueError(f"floor must be > 0, got {floor}")
    _, p_real = radial_power_spectrum(real)
    _, p_synthetic = radial_power_spectrum(synthetic)
    difference = np.log10(np.maximum(p_real, floor)) - np.log10(np.maximum(p_synthetic, floor))
    return float(np.abs(difference).mean())


def realism_figures(real: np.ndarray, synthetic: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """All realism figures of a synthetic image textured from the instance labels of a real image.

    Parameters
    ----------
    real, synthetic : np.ndarray
        (Y, X) grey-level images of one shape (ADU).
    labels : np.ndarray
        (Y, X) non-negative integer instance labels of the real image, 0 is background; the synthetic
        image was rendered from them.

    Returns
    -------
    dict of str to float
        ``w1_foreground``, ``w1_background`` (ADU, ``intensity_w1``), ``spectrum_distance``
        (decades, ``spectrum_distance``), ``seg_real``, ``seg_synthetic`` (CTC SEG of ``otsu_baseline``
        of each image against ``labels``) and the mean intensities ``mean_real_foreground``,
        ``mean_real_background``, ``mean_synthetic_foreground``, ``mean_synthetic_background`` (ADU).

    Raises
    ------
    ValueError
        If the shapes differ, ``labels`` is not a non-negative integer image with foreground and
        background, or as ``radial_power_spectrum``.
    """
    _check_same_shape(real=real, synthetic=synthetic, labels=labels)
    labels = np.asarray(labels)
    if not np.issubdtype(labels.dtype, np.integer) or (labels.size and labels.min() < 0):
        raise ValueError(f"labels must be non-negative integer instance labels, got {labels.dtype}")
    real, synthetic = np.asarray(real), np.asarray(synthetic)
    inside = labels > 0
    w1_foreground, w1_background = intensity_w1(real, synthetic, inside)
    return {
        "w1_foreground": w1_foreground,
        "w1_background": w1_background,
        "spectrum_distance": spectrum_distance(real, synthetic),
        # Segment the images in their own dtype: Otsu bins integer images by value and float images
        # into 256 bins, so a cast would change the threshold the benchmark's baseline uses.
        "seg_real": seg_measure(labels, otsu_baseline(real)),
        "seg_synthetic": seg_measure(labels, otsu_baseline(synthetic)),
        "mean_real_foreground": float(real[inside].mean(dtype=np.float64)),
        "mean_real_background": float(real[~inside].mean(dtype=np.float64)),
        "mean_synthetic_foreground": float(synthetic[inside].mean(dtype=np.float64)),
        "mean_synthetic_background": float(synthetic[~inside].mean(dtype=np.float64)),
    }


def holdout_quarter(image: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Cut the held-out bottom-right quarter ``[Y // 2:, X // 2:]`` from an image and its instance labels.

    The GAN texture model trains on the other three quarters of the real image pair, so realism figures
    measured on this quarter compare the texture models on pixels that neither was fitted to.

    Parameters
    ----------
    image, labels : np.ndarray
        (Y, X) image and instance labels of one shape.

    Returns
    -------
    tuple of np.ndarray
        ``(image_quarter, labels_quarter)``, views of the inputs.

    Raises
    ------
    ValueError
        If the arrays are not 2D or differ in shape.

    Examples
    --------
    >>> image_q, labels_q = holdout_quarter(np.zeros((512, 512)), np.zeros((512, 512), np.uint16))
    >>> image_q.shape
    (256, 256)
    """
    image, labels = np.asarray(image), np.asarray(labels)
    _check_same_shape(image=image, labels=labels)
    if image.ndim != 2:
        raise ValueError(f"image and labels must be 2D (Y, X), got shape {image.shape}")
    # The same quarter that texture training leaves out.
    quarter = holdout_slices(image.shape)
    return image[quarter], labels[quarter]


def texture_realism(
    real: np.ndarray, labels: np.ndarray, textures: list[Texture], seeds: list[int]
) -> tuple[dict[str, dict[str, float]], dict[str, np.ndarray]]:
    """Realism figures of texture models that texture a real image's own labels, averaged over seeds.

    Parameters
    ----------
    real : np.ndarray
        (Y, X) real image.
    labels : np.ndarray
        Its (Y, X) instance labels.
    textures : list of Texture
        Texture models (:mod:`cellsdf.texture.models`).
    seeds : list of int
        Each model textures ``labels`` once per seed.

    Returns
    -------
    figures : dict
        Per model name, the mean over seeds of each figure of :func:`realism_figures`.
    images : dict
        Per model name, its image of the first seed.
    """
    figures, images = {}, {}
    for texture in textures:
        synthetic = [texture.apply(labels[None], np.random.default_rng(seed))[0] for seed in seeds]
        runs = [realism_figures(real, image, labels) for image in synthetic]
        figures[texture.name] = {key: float(np.mean([r[key] for r in runs])) for key in runs[0]}
        images[texture.name] = synthetic[0]
    return figures, images
