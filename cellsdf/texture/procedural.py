"""Procedural texture model: instance-label mask -> 16-bit widefield-like image.

The image is built as a simple forward model of a fluorescence microscope:
per-cell brightness times band-limited texture and a brighter rim, blurred by a
Gaussian PSF, on a smoothly varying background, then Poisson-Gaussian camera
noise and clipping to the uint16 range. Defaults match the intensity levels of
the real example image ``data/real/dsb2018_nuclei_img.tif`` (background about
23 ADU, mean nucleus about 71 ADU, per-nucleus brightness CV about 0.4; the
log-normal CV is set a little higher because blur and the background pull
measured per-cell means together).
"""

from __future__ import annotations

import edt
import numpy as np
from scipy import ndimage as ndi

__all__ = ["procedural_texture"]

_UINT16_MAX = np.iinfo(np.uint16).max


def _check_labels(labels: np.ndarray) -> np.ndarray:
    labels = np.asarray(labels)
    if labels.ndim != 2:
        raise ValueError(f"labels must be a 2D (Y, X) array, got {labels.ndim}D with shape {labels.shape}")
    if labels.dtype == bool:
        return labels.astype(np.int32)
    if not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"labels must be an integer label image, got dtype {labels.dtype}")
    if labels.size and labels.min() < 0:
        raise ValueError("labels must be non-negative (0 is background)")
    return labels


def _check_params(**params: float) -> None:
    for name, value in params.items():
        if not np.isfinite(value) or value < 0:
            raise ValueError(f"{name} must be a finite number >= 0, got {value}")
    if params["gain"] <= 0:
        raise ValueError(f"gain must be > 0, got {params['gain']}")
    if params["texture_amplitude"] > 1:
        raise ValueError(f"texture_amplitude must be in [0, 1], got {params['texture_amplitude']}")
    if params["background_variation"] > 1:
        raise ValueError(f"background_variation must be in [0, 1], got {params['background_variation']}")


def _unit_noise(rng: np.random.Generator, shape: tuple[int, int], sigma: float) -> np.ndarray:
    """Gaussian-filtered white noise rescaled to zero mean and unit std."""
    white = rng.standard_normal(shape, dtype=np.float32)
    if sigma > 8:
        # Large kernels are slow in real space; periodic wrap-around does not
        # matter for stationary noise, so filter in Fourier space instead.
        spectrum = ndi.fourier_gaussian(np.fft.rfft2(white), sigma, n=shape[-1])
        noise = np.fft.irfft2(spectrum, s=shape).astype(np.float32)
    else:
        noise = ndi.gaussian_filter(white, sigma)
    std = float(noise.std())
    # A constant field (tiny images, huge sigma) has no texture to rescale.
    return (noise - noise.mean()) / std if std > 0 else np.zeros(shape, np.float32)


def _compact(labels: np.ndarray) -> np.ndarray:
    """Labels as uint32 with values small enough to index a per-cell table."""
    if labels.size and int(labels.max()) > labels.size:
        # Sparse huge label values would make the lookup table huge.
        _, inverse = np.unique(labels, return_inverse=True)
        return inverse.reshape(labels.shape).astype(np.uint32)
    return labels.astype(np.uint32, copy=False)


def procedural_texture(
    labels: np.ndarray,
    rng: np.random.Generator,
    *,
    background: float = 23.0,
    background_variation: float = 0.3,
    background_sigma: float = 32.0,
    cell_intensity: float = 45.0,
    cell_intensity_cv: float = 0.5,
    texture_amplitude: float = 0.2,
    texture_sigma: float = 1.5,
    rim_contrast: float = 0.25,
    rim_width: float = 2.0,
    psf_sigma: float = 1.0,
    gain: float = 1.0,
    read_noise: float = 2.0,
) -> np.ndarray:
    """Render a 16-bit fluorescence-like image from an instance-label mask.

    Parameters
    ----------
    labels : np.ndarray
        (Y, X) integer (or boolean) instance labels, 0 is background.
    rng : np.random.Generator
        Source of all randomness; the same seed gives the same image.
    background : float
        Mean background level in ADU.
    background_variation : float
        Relative std (0-1) of a smooth multiplicative background variation
        (uneven illumination, out-of-focus light).
    background_sigma : float
        Spatial scale of the background variation in pixels.
    cell_intensity : float
        Mean cell signal above the background in ADU, before blur.
    cell_intensity_cv : float
        Coefficient of variation of the per-cell mean brightness (log-normal).
    texture_amplitude : float
        Relative std (0-1) of the band-limited intensity texture inside cells.
    texture_sigma : float
        Correlation length of the texture in pixels (Gaussian filter sigma).
    rim_contrast : float
        Relative brightness increase at the cell boundary (0 = no rim).
    rim_width : float
        Width of the bright rim in pixels (Gaussian fall-off of the distance
        to the boundary).
    psf_sigma : float
        Sigma of the Gaussian PSF in pixels (0 = no blur).
    gain : float
        Camera gain in ADU per photoelectron; shot-noise variance is
        ``gain * mean``.
    read_noise : float
        Std of the Gaussian read noise in ADU.

    Returns
    -------
    np.ndarray
        (Y, X) uint16 image.

    Raises
    ------
    ValueError
        If ``labels`` is not a 2D non-negative integer array or a parameter is
        out of range.
    """
    labels = _check_labels(labels)
    _check_params(
        background=background,
        background_variation=background_variation,
        background_sigma=background_sigma,
        cell_intensity=cell_intensity,
        cell_intensity_cv=cell_intensity_cv,
        texture_amplitude=texture_amplitude,
        texture_sigma=texture_sigma,
        rim_contrast=rim_contrast,
        rim_width=rim_width,
        psf_sigma=psf_sigma,
        gain=gain,
        read_noise=read_noise,
    )
    labels = _compact(labels)
    shape = labels.shape

    # Log-normal per-cell factors with mean 1, so cell_intensity stays the mean
    # brightness whatever the spread; a lookup table keeps this vectorised.
    log_sigma = np.sqrt(np.log1p(cell_intensity_cv**2))
    n_labels = int(labels.max()) + 1 if labels.size else 1
    factors = rng.lognormal(-0.5 * log_sigma**2, log_sigma, n_labels).astype(np.float32)
    factors[0] = 0.0
    signal = cell_intensity * factors[labels]

    texture = 1.0 + texture_amplitude * _unit_noise(rng, shape, texture_sigma)
    signal *= np.clip(texture, 0.0, None)

    if rim_contrast > 0 and rim_width > 0:
        # edt measures distance to any label change, so touching cells get their
        # own rims; the image border is not a cell boundary (black_border=False).
        dist = edt.edt(labels, black_border=False, parallel=1) - 1.0
        signal *= 1.0 + rim_contrast * np.exp(-0.5 * (dist / rim_width) ** 2)

    if psf_sigma > 0:
        signal = ndi.gaussian_filter(signal, psf_sigma)

    bg = np.full(shape, background, np.float32)
    if background_variation > 0:
        bg *= np.clip(1.0 + background_variation * _unit_noise(rng, shape, background_sigma), 0.0, None)

    expected = (signal + bg).astype(np.float64)
    image = rng.poisson(expected / gain) * gain
    if read_noise > 0:
        image = image + rng.normal(0.0, read_noise, shape)
    return np.clip(np.rint(image), 0, _UINT16_MAX).astype(np.uint16)
