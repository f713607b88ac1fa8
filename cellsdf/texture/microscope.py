"""A 3D fluorescence microscope: labelled cells in, a noisy anisotropic 16-bit image stack out.

The image of a frame is made in four steps, each a documented model rather than a fitted network:

1. **Stain** (:func:`stain_mask`): what of a cell is fluorescent, on its own fine grid: the whole cell (a
   nucleus or cytoplasm) or a membrane shell of a given width in µm.
2. **Sampling** (:func:`resample_mask`): the fine mask averaged onto the microscope's voxel grid (for example
   0.2 µm in y, x and 1.0 µm in z), so that a voxel holds the fraction of it that is stained.
3. **Optics**: intensity per cell (log-normal between cells, a band-limited texture inside), weaker with
   depth, bleached over time, blurred by a Gaussian approximation of the point-spread function
   (:func:`psf_sigmas`, after Zhang, Zerubia and Olivo-Marin, Appl. Opt. 46(10), 2007).
4. **Camera**: a smooth background, photon shot noise (Poisson, ``gain`` ADU per photoelectron), Gaussian
   read noise and an offset, rounded to uint16.

Why not a library: ``microsim`` pins numpy < 2 and zarr < 3, which this package's dependencies exclude, and
``psfmodels`` (Gibson-Lanni and vectorial PSFs) is GPL-3.0, which a BSD-3 package cannot depend on. The
Gaussian PSF is coarse (it has no side lobes and no missing cone), which matters little at the 1 µm z steps
of the public 3D sets that the presets in ``conf/microscope/`` follow.
"""

from __future__ import annotations

from dataclasses import dataclass

import edt
import numpy as np
from scipy import ndimage

from cellsdf.options import (
    FRACTION,
    NONNEG,
    POSITIVE,
    ListOf,
    OneOf,
    Real,
    Text,
    check_fields,
    option,
)

MODALITIES = ("widefield", "confocal")
STAININGS = ("whole", "membrane")
_UINT16_MAX = np.iinfo(np.uint16).max
# Gaussian fits of paraxial PSFs (Zhang et al. 2007): sigma_lateral = a * lambda / NA and
# sigma_axial = b * n * lambda / NA^2; the confocal values are those of a pinhole small against the Airy disk.
_PSF_FACTORS = {"widefield": (0.21, 0.66), "confocal": (0.15, 0.50)}


def psf_sigmas(
    *, modality: str, numerical_aperture: float, refractive_index: float, wavelength: float
) -> tuple[float, float]:
    """Return the axial and lateral standard deviations (µm) of a Gaussian approximation of the PSF.

    Parameters
    ----------
    modality : {'widefield', 'confocal'}
        Widefield epifluorescence, or a laser-scanning confocal with a small pinhole.
    numerical_aperture : float
        NA of the objective, below the immersion's refractive index.
    refractive_index : float
        Refractive index of the immersion medium (1.518 for oil).
    wavelength : float
        Emission wavelength in µm (0.509 for GFP).

    Returns
    -------
    tuple of float
        (sigma_z, sigma_xy) in µm.

    Examples
    --------
    >>> z, xy = psf_sigmas(modality="widefield", numerical_aperture=1.4, refractive_index=1.518,
    ...                    wavelength=0.509)
    >>> round(z, 3), round(xy, 3)
    (0.26, 0.076)
    """
    if modality not in _PSF_FACTORS:
        raise ValueError(f"modality must be one of {', '.join(MODALITIES)}, got {modality!r}")
    if not 0 < numerical_aperture < refractive_index:
        raise ValueError(
            f"numerical_aperture must lie in (0, {refractive_index}) (the refractive index), "
            f"got {numerical_aperture}"
        )
    lateral, axial = _PSF_FACTORS[modality]
    return (
        axial * refractive_index * wavelength / numerical_aperture**2,
        lateral * wavelength / numerical_aperture,
    )


def stain_mask(
    mask: np.ndarray, *, spacing: tuple[float, float, float], staining: str, width: float
) -> np.ndarray:
    """Return the stained part of a cell's mask on its own grid.

    Parameters
    ----------
    mask : np.ndarray
        bool (Z, Y, X) cell.
    spacing : tuple of float
        Its voxel size (z, y, x) in µm.
    staining : {'whole', 'membrane'}
        The whole cell, or the shell within ``width`` µm of its surface.
    width : float
        Membrane width in µm.

    Returns
    -------
    np.ndarray
        bool (Z, Y, X).

    Examples
    --------
    >>> ball = np.zeros((9, 9, 9), bool); ball[1:8, 1:8, 1:8] = True
    >>> int(stain_mask(ball, spacing=(1.0, 1.0, 1.0), staining="membrane", width=1.0).sum())
    218
    """
    if staining == "whole":
        return mask
    if staining != "membrane":
        raise ValueError(f"staining must be one of {', '.join(STAININGS)}, got {staining!r}")
    inside = edt.edt(mask, anisotropy=tuple(float(s) for s in spacing), black_border=True, parallel=1)
    return mask & (inside <= width)


def resample_mask(
    mask: np.ndarray, *, source_spacing: tuple[float, float, float], spacing: tuple[float, float, float]
) -> np.ndarray:
    """Average a mask onto another voxel grid over the same field: the stained fraction of every voxel.

    Parameters
    ----------
    mask : np.ndarray
        bool or float (Z, Y, X) on a grid of ``source_spacing`` µm.
    source_spacing, spacing : tuple of float
        Voxel sizes (z, y, x) in µm of the mask and of the result.

    Returns
    -------
    np.ndarray
        float32 (Z', Y', X') in [0, 1], Z' = round(Z * source_z / z) (at least 1), and so on; voxels
        of ``>= 0.5`` are the object at the new resolution.

    Examples
    --------
    >>> cube = np.zeros((8, 8, 8), bool); cube[2:6, 2:6, 2:6] = True
    >>> coarse = resample_mask(cube, source_spacing=(0.25, 0.25, 0.25), spacing=(1.0, 0.5, 0.5))
    >>> coarse.shape, bool(np.isclose(coarse.sum() * 1.0 * 0.5 * 0.5, cube.sum() * 0.25**3))
    ((2, 4, 4), True)
    """
    out = np.asarray(mask, dtype=np.float32)
    # Separable exact box averaging: each new voxel is the volume-weighted mean of the old voxels it overlaps,
    # so the stained fraction is conserved (interpolation with a Gaussian pre-filter is not).
    for axis, (n, source, target) in enumerate(zip(mask.shape, source_spacing, spacing, strict=True)):
        weights = _overlaps(n, float(source), float(target))
        out = np.moveaxis(np.tensordot(weights, np.moveaxis(out, axis, 0), axes=1), 0, axis)
    return np.clip(out, 0.0, 1.0).astype(np.float32)


def _overlaps(n: int, source: float, target: float) -> np.ndarray:
    """Return (N', n) weights: the share of new voxel j (size ``target``) that old voxel i covers."""
    count = max(1, round(n * source / target))
    edges_in = np.arange(n + 1) * source
    edges_out = np.arange(count + 1) * target
    low = np.maximum(edges_out[:-1, None], edges_in[None, :-1])
    high = np.minimum(edges_out[1:, None], edges_in[None, 1:])
    return (np.clip(high - low, 0.0, None) / target).astype(np.float32)


@dataclass(frozen=True, kw_only=True)
class Microscope:
    """A 3D fluorescence microscope, its sample's staining and its camera (``conf/microscope/`` presets).

    The defaults are the ``cho`` preset (Fluo-N3DH-CHO-like; ``conf/microscope/cho.yaml`` says where each
    value comes from).

    Attributes
    ----------
    name : str
        The preset's name, recorded in ``benchmark.json``.
    spacing : list of float
        Voxel size (z, y, x) in µm of the images.
    frame_interval : float or None
        Seconds between frames written into the images; None keeps the source's.
    modality, numerical_aperture, refractive_index, wavelength
        The optics (:func:`psf_sigmas`); ``wavelength`` is the emission's, in µm.
    staining : {'whole', 'membrane'}
        What of a cell is fluorescent; ``membrane_width`` in µm.
    signal : float
        Mean intensity (ADU above the background) of a fully stained voxel at the top of the stack.
    signal_cv : float
        Coefficient of variation of the cells' brightness (log-normal, one factor per cell and sequence).
    texture_amplitude, texture_sigma : float
        Relative standard deviation and correlation length (µm) of the intensity texture inside cells.
    haze, haze_sigma : float
        Share of the light that reaches the detector out of focus or scattered, spread by a Gaussian of
        ``haze_sigma`` µm (the halo around cells that a diffraction-limited PSF alone does not give).
    depth_attenuation : float
        Loss of signal per µm of depth (1/µm): intensity ``exp(-depth_attenuation * z)`` from the first slice.
    bleaching : float
        Fraction of the signal lost per frame.
    background, background_variation, background_sigma : float
        Mean background (ADU), its relative smooth variation and that variation's length scale (µm).
    gain, read_noise, offset : float
        ADU per photoelectron (shot noise variance ``gain * mean``), read noise std and offset (ADU).
    """

    name: str = option("cho", Text(null=False))
    spacing: list[float] = option([1.0, 0.202, 0.202], ListOf(POSITIVE, length=3))
    frame_interval: float | None = option(570.0, Real(0, above=True, null=True))
    modality: str = option("confocal", OneOf(MODALITIES))
    numerical_aperture: float = option(1.4, Real(0, 1.7, above=True))
    refractive_index: float = option(1.518, Real(1.0, 2.0))
    wavelength: float = option(0.509, Real(0.2, 2.0))
    staining: str = option("whole", OneOf(STAININGS))
    membrane_width: float = option(0.5, POSITIVE)
    signal: float = option(55.0, NONNEG)
    signal_cv: float = option(0.16, NONNEG)
    texture_amplitude: float = option(0.3, FRACTION)
    texture_sigma: float = option(0.6, POSITIVE)
    haze: float = option(0.0, FRACTION)
    haze_sigma: float = option(2.0, POSITIVE)
    depth_attenuation: float = option(0.0, NONNEG)
    bleaching: float = option(0.0, Real(0, 1, above=False))
    background: float = option(7.0, NONNEG)
    background_variation: float = option(0.1, FRACTION)
    background_sigma: float = option(10.0, POSITIVE)
    gain: float = option(2.0, POSITIVE)
    read_noise: float = option(2.0, NONNEG)
    offset: float = option(0.0, NONNEG)

    def __post_init__(self) -> None:
        check_fields(self, prefix="microscope.")
        object.__setattr__(self, "spacing", tuple(float(s) for s in self.spacing))
        psf_sigmas(
            modality=self.modality,
            numerical_aperture=self.numerical_aperture,
            refractive_index=self.refractive_index,
            wavelength=self.wavelength,
        )

    def stained(
        self, mask: np.ndarray, source_spacing: tuple[float, float, float]
    ) -> tuple[np.ndarray, np.ndarray]:
        """Return a fine cell mask on this microscope's grid: its occupancy and its stained fraction.

        Parameters
        ----------
        mask : np.ndarray
            bool (Z, Y, X) cell on its own grid.
        source_spacing : tuple of float
            That grid's voxel size (z, y, x) in µm.

        Returns
        -------
        tuple of np.ndarray
            float32 occupancy (``>= 0.5``: the cell's voxels in the ground truth) and float32 stain, both
            on the microscope's grid over the same field.
        """
        occupancy = resample_mask(mask, source_spacing=source_spacing, spacing=self.spacing)
        if self.staining == "whole":
            return occupancy, occupancy
        shell = stain_mask(mask, spacing=source_spacing, staining=self.staining, width=self.membrane_width)
        return occupancy, resample_mask(shell, source_spacing=source_spacing, spacing=self.spacing)

    def brightness(self, rng: np.random.Generator, cells: int) -> np.ndarray:
        """Draw one brightness factor per cell label, log-normal with mean 1 (index 0, the background: 0)."""
        log_sigma = np.sqrt(np.log1p(self.signal_cv**2))
        factors = rng.lognormal(-0.5 * log_sigma**2, log_sigma, cells + 1).astype(np.float32)
        factors[0] = 0.0
        return factors

    def image(
        self,
        labels: np.ndarray,
        stain: np.ndarray,
        rng: np.random.Generator,
        *,
        factors: np.ndarray,
        frame: int = 0,
    ) -> np.ndarray:
        """Image one frame: the stained cells through the optics and the camera.

        Parameters
        ----------
        labels : np.ndarray
            Integer (Z, Y, X) instance labels on this microscope's grid.
        stain : np.ndarray
            float (Z, Y, X) stained fraction of each voxel (from :meth:`stained`; ``labels > 0`` where only
            labels are known).
        rng : numpy.random.Generator
            Texture, background and noise.
        factors : np.ndarray
            Brightness per label (:meth:`brightness`); stain just outside a cell's labels takes the factor of
            the cell it touches.
        frame : int
            Frame index, for bleaching.

        Returns
        -------
        np.ndarray
            uint16 (Z, Y, X).

        Examples
        --------
        >>> scope = Microscope(read_noise=0.0)
        >>> labels = np.zeros((4, 16, 16), np.uint16); labels[1:3, 4:12, 4:12] = 1
        >>> rng = np.random.default_rng(0)
        >>> image = scope.image(labels, labels > 0, rng, factors=scope.brightness(rng, 1))
        >>> image.dtype, bool(image[labels > 0].mean() > 3 * image[labels == 0].mean())
        (dtype('uint16'), True)
        """
        labels = np.asarray(labels)
        if labels.ndim != 3 or labels.shape != np.shape(stain):
            raise ValueError(f"labels {labels.shape} and stain {np.shape(stain)} must be one (Z, Y, X) shape")
        if int(labels.max(initial=0)) >= len(factors):
            raise ValueError(f"labels reach {int(labels.max())}, the factors cover {len(factors) - 1} cells")
        spacing = np.asarray(self.spacing)
        # Stain in the partial-volume rim outside a cell's labels belongs to the cell it touches.
        owner = ndimage.grey_dilation(labels, size=3) if labels.any() else labels
        owner = np.where(labels > 0, labels, owner)
        signal = self.signal * factors[owner] * np.asarray(stain, dtype=np.float32)
        if self.texture_amplitude > 0:
            texture = _unit_noise(rng, labels.shape, self.texture_sigma / spacing)
            signal *= np.clip(1.0 + self.texture_amplitude * texture, 0.0, None)
        if self.depth_attenuation > 0:
            depth = np.arange(labels.shape[0], dtype=np.float32) * spacing[0]
            signal *= np.exp(-self.depth_attenuation * depth)[:, None, None]
        signal *= (1.0 - self.bleaching) ** frame
        axial, lateral = psf_sigmas(
            modality=self.modality,
            numerical_aperture=self.numerical_aperture,
            refractive_index=self.refractive_index,
            wavelength=self.wavelength,
        )
        focused = ndimage.gaussian_filter(signal, np.array([axial, lateral, lateral]) / spacing)
        if self.haze > 0:
            scattered = ndimage.gaussian_filter(signal, self.haze_sigma / spacing)
            signal = (1.0 - self.haze) * focused + self.haze * scattered
        else:
            signal = focused
        background = np.full(labels.shape, self.background, np.float32)
        if self.background_variation > 0:
            smooth = _unit_noise(rng, labels.shape, self.background_sigma / spacing)
            background *= np.clip(1.0 + self.background_variation * smooth, 0.0, None)
        photons = rng.poisson((signal + background).astype(np.float64) / self.gain)
        image = photons * self.gain + self.offset
        if self.read_noise > 0:
            image = image + rng.normal(0.0, self.read_noise, labels.shape)
        return np.clip(np.rint(image), 0, _UINT16_MAX).astype(np.uint16)


def _unit_noise(rng: np.random.Generator, shape: tuple[int, ...], sigma: np.ndarray) -> np.ndarray:
    """Gaussian-filtered white noise of mean 0 and standard deviation 1 (``sigma`` in voxels per axis).

    A correlation length near the volume's size leaves a field close to a constant offset: the mean is taken
    out before scaling, or the offset would be blown up with the rest.
    """
    white = rng.standard_normal(shape).astype(np.float32)
    if np.max(sigma) > 8:
        # Large kernels are slow in real space; the noise is stationary, so filter in Fourier space.
        spectrum = ndimage.fourier_gaussian(np.fft.rfftn(white), sigma, n=shape[-1])
        noise = np.fft.irfftn(spectrum, s=shape).astype(np.float32)
    else:
        noise = ndimage.gaussian_filter(white, sigma, mode="wrap")
    noise -= noise.mean()
    spread = float(noise.std())
    return noise / spread if spread > 0 else noise
