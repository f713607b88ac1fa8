"""Latent samplers and rotations: the code and rotation of a new cell.

A generated cell is a latent code (drawn near the codes the model learned) and a rotation, decoded at any
number of frames and any resolution. Every draw takes a ``numpy.random.Generator``; ``cellsdf generate`` seeds
one per cell from (seed, cell index), so a cell does not depend on which shard or run made it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace

import numpy as np

from cellsdf.geometry.rotation import uniform_rotation

SAMPLERS = ("auto", "gaussian", "around", "mix", "arc", "interpolate")
PAIR_SAMPLERS = ("mix", "arc")  # samplers that draw between two learned codes
ROTATIONS = ("uniform", "none")


def gaussian_latent(
    latents: np.ndarray, rng: np.random.Generator, std: float | None = None, *, scale: float = 1.0
) -> np.ndarray:
    """Draw a code from a normal distribution fitted to the learned codes.

    Parameters
    ----------
    latents : np.ndarray
        (S, L) learned codes, one per training sequence.
    rng : numpy.random.Generator
        Source of randomness.
    std : float, optional
        None: the codes' mean and full covariance (with fewer sequences than dimensions the covariance is
        singular and draws stay in the span of the codes). A number: the codes' mean with isotropic
        standard deviation ``std``.
    scale : float
        Factor on the spread around the mean (the truncation trick): below 1, draws stay nearer the learned
        codes' centre, where decoded shapes are cleaner, at the cost of variety.

    Returns
    -------
    np.ndarray
        float64 (L,) code.

    Examples
    --------
    >>> codes = np.random.default_rng(0).normal(size=(10, 4))
    >>> full = gaussian_latent(codes, np.random.default_rng(1))
    >>> half = gaussian_latent(codes, np.random.default_rng(1), scale=0.5)
    >>> bool(np.allclose(half - codes.mean(0), 0.5 * (full - codes.mean(0))))
    True
    """
    mean = latents.mean(axis=0)
    if std is not None:
        draw = mean + std * rng.standard_normal(latents.shape[1])
    else:
        draw = rng.multivariate_normal(mean, np.cov(latents, rowvar=False), method="eigh")
    # Scale 1 returns the draw itself, bit for bit.
    return draw if scale == 1.0 else mean + scale * (draw - mean)


def around_latent(latents: np.ndarray, rng: np.random.Generator, noise: float) -> tuple[np.ndarray, int]:
    """Draw a learned code at random and add isotropic Gaussian noise (the published code's way for filo).

    Parameters
    ----------
    latents : np.ndarray
        (S, L) learned codes.
    rng : numpy.random.Generator
        Source of randomness.
    noise : float
        Standard deviation of the noise.

    Returns
    -------
    tuple
        float64 (L,) code and the index of the learned code it started from.
    """
    index = int(rng.integers(len(latents)))
    return latents[index] + noise * rng.standard_normal(latents.shape[1]), index


def mixed_latent(
    latents: np.ndarray, rng: np.random.Generator, between: tuple[float, float] = (0.0, 1.0)
) -> tuple[np.ndarray, tuple[int, int], float]:
    """Draw a code on the straight path between two learned codes picked at random.

    With few sequences in many dimensions, a Gaussian fitted to the codes puts most of its mass where no
    learned code is; a point between two codes stays among them.

    Parameters
    ----------
    latents : np.ndarray
        (S, L) learned codes, S >= 2.
    rng : numpy.random.Generator
        Source of randomness.
    between : tuple of float
        Range (within [0, 1]) of the second code's weight: (0.2, 0.8) keeps draws a fifth of the path away
        from either learned code, so that fewer cells are near copies of a training cell.

    Returns
    -------
    tuple
        float64 (L,) code, the two codes' indices, and the second code's weight ``w``, uniform in ``between``.

    Examples
    --------
    >>> codes = np.eye(3)
    >>> code, (i, j), w = mixed_latent(codes, np.random.default_rng(0))
    >>> i != j and bool(np.allclose(code, (1 - w) * codes[i] + w * codes[j]))
    True
    """
    first, second, weight = _pair_and_weight(latents, rng, between)
    return interpolated_latent(latents, first, second, weight), (first, second), weight


def _pair_and_weight(
    latents: np.ndarray, rng: np.random.Generator, between: tuple[float, float]
) -> tuple[int, int, float]:
    """Pick two different learned codes and the second one's weight, uniform in ``between``."""
    first, second = (int(i) for i in rng.choice(len(latents), size=2, replace=False))
    return first, second, float(rng.uniform(*between))


def arc_latent(
    latents: np.ndarray, rng: np.random.Generator, between: tuple[float, float] = (0.0, 1.0)
) -> tuple[np.ndarray, tuple[int, int], float]:
    """Draw a code on the great-circle arc between two learned codes picked at random, about their mean.

    Learned codes of an auto-decoder lie at about the same distance from their mean and nearly at right
    angles to each other, so the straight path between two (``mix``) passes nearer the mean than any code the
    decoder was trained on (0.7 of the distance at the midpoint); the arc keeps the distance from the mean
    (spherical interpolation of the centred codes). Arguments, draws and returns are those of
    :func:`mixed_latent`.

    Examples
    --------
    >>> codes = np.eye(3) - 1 / 3  # three codes at equal distance from their mean (0)
    >>> code, (i, j), w = arc_latent(codes, np.random.default_rng(0))
    >>> bool(np.isclose(np.linalg.norm(code), np.linalg.norm(codes[i])))
    True
    """
    first, second, weight = _pair_and_weight(latents, rng, between)
    mean = latents.mean(axis=0)
    a, b = latents[first] - mean, latents[second] - mean
    cosine = float(a @ b / max(np.linalg.norm(a) * np.linalg.norm(b), 1e-12))
    angle = float(np.arccos(np.clip(cosine, -1.0, 1.0)))
    if angle < 1e-6:
        return interpolated_latent(latents, first, second, weight), (first, second), weight
    arc = (np.sin((1.0 - weight) * angle) * a + np.sin(weight * angle) * b) / np.sin(angle)
    return mean + arc, (first, second), weight


def interpolated_latent(latents: np.ndarray, first: int, last: int, fraction: float) -> np.ndarray:
    """Return the code at ``fraction`` along the straight path from learned code ``first`` to ``last``.

    Parameters
    ----------
    latents : np.ndarray
        (S, L) learned codes.
    first, last : int
        Indices of the path's ends.
    fraction : float
        0 gives ``latents[first]``, 1 gives ``latents[last]``.

    Returns
    -------
    np.ndarray
        float64 (L,) code.
    """
    return (1.0 - fraction) * latents[first] + fraction * latents[last]


@dataclass(frozen=True)
class SamplerOptions:
    """Which latent sampler and rotation a generated cell gets.

    Attributes
    ----------
    name : {'auto', 'gaussian', 'around', 'mix', 'arc', 'interpolate'}
        Latent sampler.
    std : float or None
        ``gaussian``: None for the learned codes' covariance, else isotropic with this standard deviation.
    noise : float
        ``around``: standard deviation of the noise added to a learned code.
    path : tuple of int
        ``interpolate``: indices of the two learned codes at the ends of the path.
    rotation : {'uniform', 'none'}
        Rotation of each generated cell.
    scale : float
        ``gaussian``: factor on the spread around the codes' mean (1: as fitted; below 1: truncated).
    between : tuple of float
        ``mix``, ``arc``: range of the second code's weight.
    """

    name: str = "auto"
    std: float | None = None
    noise: float = 0.1
    path: tuple[int, int] = (0, 1)
    rotation: str = "uniform"
    scale: float = 1.0
    between: tuple[float, float] = (0.0, 1.0)

    @classmethod
    def from_config(cls, sampler: Mapping, rotation: str) -> SamplerOptions:
        """Build the options from a command's ``sampler`` group and its ``rotation``."""
        return cls(
            name=sampler["name"],
            std=sampler["std"],
            noise=sampler["noise"],
            path=tuple(sampler["path"]),
            rotation=rotation,
            scale=sampler["scale"],
            between=tuple(float(w) for w in sampler["between"]),
        )

    @property
    def random(self) -> bool:
        """Whether a redraw can give another cell (an interpolation without rotation cannot)."""
        return self.name != "interpolate" or self.rotation != "none"


def model_sampler(options: SamplerOptions, chosen: dict | None) -> SamplerOptions:
    """Resolve ``name='auto'``: the sampler chosen for the model (its fidelity scores), else ``gaussian``.

    Parameters
    ----------
    options : SamplerOptions
        The requested sampler; any name but ``auto`` is returned unchanged.
    chosen : dict or None
        The model's choice (:attr:`cellsdf.model.trained.TrainedModel.sampler`): ``name`` and settings.

    Examples
    --------
    >>> model_sampler(SamplerOptions(name="auto"), {"name": "around", "noise": 0.05}).noise
    0.05
    >>> model_sampler(SamplerOptions(name="auto"), None).name
    'gaussian'
    """
    if options.name != "auto":
        return options
    chosen = chosen or {"name": "gaussian"}
    fields = {k: chosen[k] for k in ("name", "std", "noise", "scale") if k in chosen}
    if "between" in chosen:
        fields["between"] = tuple(chosen["between"])
    return replace(options, **fields)


def draw_cell(
    latents: np.ndarray, options: SamplerOptions, rng: np.random.Generator, index: int, count: int
) -> tuple[np.ndarray, np.ndarray | None, dict]:
    """Draw the code and rotation of one generated cell.

    Parameters
    ----------
    latents : np.ndarray
        (S, L) learned codes.
    options : SamplerOptions
        Sampler and rotation.
    rng : numpy.random.Generator
        The cell's source of randomness (redraws continue from it).
    index, count : int
        The cell's index and the number of cells; ``interpolate`` places cell ``index`` at
        ``index / (count - 1)`` along the path.

    Returns
    -------
    tuple
        float32 (L,) code, (3,) rotation vector or None, and a description of the draw for the manifest.
    """
    info: dict = {"sampler": options.name}
    if options.name == "gaussian":
        latent = gaussian_latent(latents, rng, options.std, scale=options.scale)
        info.update(std=options.std, scale=options.scale)
    elif options.name == "around":
        latent, source = around_latent(latents, rng, options.noise)
        info.update(noise=options.noise, learned_code=source)
    elif options.name in PAIR_SAMPLERS:
        draw = mixed_latent if options.name == "mix" else arc_latent
        latent, pair, weight = draw(latents, rng, options.between)
        info.update(learned_codes=list(pair), weight=weight, between=list(options.between))
    else:
        fraction = index / (count - 1) if count > 1 else 0.0
        latent = interpolated_latent(latents, *options.path, fraction)
        info.update(path=list(options.path), fraction=fraction)
    rotation = uniform_rotation(rng) if options.rotation == "uniform" else None
    return latent.astype(np.float32), rotation, info
