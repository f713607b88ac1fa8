"""Latent samplers and rotations: the code and rotation of a new cell.

A generated cell is a latent code (drawn near the codes the model learned) and a rotation, decoded at any
number of frames and any resolution. Every draw takes a ``numpy.random.Generator``; ``cellsdf generate`` seeds
one per cell from (seed, cell index), so a cell does not depend on which shard or run made it.

A sampler is one class with the :class:`Sampler` interface (``check`` the learned codes, ``draw`` a code),
registered by name with :func:`register_sampler` and chosen on the command line from the ``conf/sampler/``
group (``sampler=around sampler.noise=0.05``), whose files build it with ``_target_``. Its options are its own
fields, stated once with their rules (:func:`cellsdf.options.option`).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from typing import ClassVar

import numpy as np

from cellsdf.errors import InputError
from cellsdf.geometry.rotation import uniform_rotation
from cellsdf.options import NONNEG, POSITIVE, Checked, ListOf, OneOf, Real, Whole, check_fields, option

ROTATIONS = ("uniform", "none")
ROTATION = OneOf(ROTATIONS)


def gaussian_latent(
    latents: np.ndarray, rng: np.random.Generator, *, std: float | None = None, scale: float = 1.0
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
    latents: np.ndarray, rng: np.random.Generator, *, between: tuple[float, float] = (0.0, 1.0)
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
    latents: np.ndarray, rng: np.random.Generator, *, between: tuple[float, float] = (0.0, 1.0)
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


class Sampler(ABC):
    """A way to draw the latent code of a new cell from the codes a model learned.

    Subclasses are frozen keyword-only dataclasses whose fields are their options (declared with
    :func:`~cellsdf.options.option`), with a class-level ``name`` under which :func:`register_sampler`
    files them; ``least_codes`` says how many learned codes they need, ``random`` whether a redraw gives
    another code.
    """

    name: ClassVar[str]
    least_codes: ClassVar[int] = 1
    random: ClassVar[bool] = True

    def __post_init__(self) -> None:
        check_fields(self, prefix="sampler.")

    def check(self, latents: np.ndarray, source: str) -> None:
        """Raise InputError naming ``source`` (the model file) unless the learned codes suit this sampler."""
        if len(latents) < self.least_codes:
            raise InputError(
                source, f"has {len(latents)} learned code(s); sampler {self.name} needs {self.least_codes}"
            )

    @abstractmethod
    def draw(
        self, latents: np.ndarray, rng: np.random.Generator, *, index: int, count: int
    ) -> tuple[np.ndarray, dict]:
        """Draw one code.

        Parameters
        ----------
        latents : np.ndarray
            (S, L) learned codes (:meth:`check` has passed).
        rng : numpy.random.Generator
            The cell's source of randomness.
        index, count : int
            The cell's index and the number of cells in the run.

        Returns
        -------
        tuple
            float64 (L,) code and a description of the draw for the manifest.
        """

    def describe(self) -> dict:
        """Return the sampler as plain data: ``name`` and its options (what manifests and run keys hold)."""
        plain = {
            f.name: list(v) if isinstance(v := getattr(self, f.name), tuple) else v for f in fields(self)
        }
        return {"name": self.name, **plain}


SAMPLERS: dict[str, type[Sampler]] = {}


def register_sampler(cls: type[Sampler]) -> type[Sampler]:
    """File a :class:`Sampler` subclass under its ``name`` (a class decorator); return it unchanged."""
    SAMPLERS[cls.name] = cls
    return cls


def _between(key: str, value: object) -> None:
    """Check a range of weights: two numbers, 0 <= low <= high <= 1."""
    ListOf(Real(0, 1), length=2)(key, value)
    if value[0] > value[1]:
        raise InputError(key, f"must be [low, high] with low <= high, got {list(value)}")


@register_sampler
@dataclass(frozen=True, kw_only=True)
class Auto(Sampler):
    """The sampler chosen for the model by its fidelity scores (in its model file), else ``gaussian``."""

    name: ClassVar[str] = "auto"

    def draw(
        self, latents: np.ndarray, rng: np.random.Generator, *, index: int, count: int
    ) -> tuple[np.ndarray, dict]:
        """Not drawn from: :func:`model_sampler` replaces it with the model's choice first."""
        raise TypeError("the auto sampler stands for the model's choice; resolve it with model_sampler first")


@register_sampler
@dataclass(frozen=True, kw_only=True)
class Gaussian(Sampler):
    """A normal distribution fitted to the learned codes (:func:`gaussian_latent`).

    Attributes
    ----------
    std : float or None
        None for the learned codes' covariance, else isotropic with this standard deviation.
    scale : float
        Factor on the spread around the codes' mean (1: as fitted; below 1: truncated).
    """

    name: ClassVar[str] = "gaussian"
    std: float | None = option(None, Real(0, above=True, null=True))
    scale: float = option(1.0, POSITIVE)

    def check(self, latents: np.ndarray, source: str) -> None:
        """Refuse a single learned code unless ``std`` is given (a covariance needs two)."""
        if self.std is None and len(latents) < 2:
            raise InputError(
                source, "has one learned code; a covariance needs two, so pass sampler.std=<value>"
            )

    def draw(
        self, latents: np.ndarray, rng: np.random.Generator, *, index: int, count: int
    ) -> tuple[np.ndarray, dict]:
        """Draw from the fitted normal distribution."""
        return gaussian_latent(latents, rng, std=self.std, scale=self.scale), {
            "std": self.std,
            "scale": self.scale,
        }


@register_sampler
@dataclass(frozen=True, kw_only=True)
class Around(Sampler):
    """A learned code picked at random plus isotropic noise of standard deviation ``noise``."""

    name: ClassVar[str] = "around"
    noise: float = option(0.1, NONNEG)

    def draw(
        self, latents: np.ndarray, rng: np.random.Generator, *, index: int, count: int
    ) -> tuple[np.ndarray, dict]:
        """Draw near a random learned code (:func:`around_latent`)."""
        latent, source = around_latent(latents, rng, self.noise)
        return latent, {"noise": self.noise, "learned_code": source}


@register_sampler
@dataclass(frozen=True, kw_only=True)
class Mix(Sampler):
    """A random point on the straight path between two random learned codes (:func:`mixed_latent`).

    Attributes
    ----------
    between : tuple of float
        Range of the second code's weight ([0.2, 0.8]: fewer near-copies).
    """

    name: ClassVar[str] = "mix"
    least_codes: ClassVar[int] = 2
    between: tuple[float, float] = option(
        (0.0, 1.0), Checked(_between, "two weights in [0, 1], the first not above the second")
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        object.__setattr__(self, "between", tuple(float(w) for w in self.between))

    # The path between the two codes; Arc takes the great-circle arc instead of the straight line.
    between_codes: ClassVar[Callable] = staticmethod(mixed_latent)

    def draw(
        self, latents: np.ndarray, rng: np.random.Generator, *, index: int, count: int
    ) -> tuple[np.ndarray, dict]:
        """Draw between two learned codes picked at random."""
        latent, pair, weight = self.between_codes(latents, rng, between=self.between)
        return latent, {"learned_codes": list(pair), "weight": weight, "between": list(self.between)}


@register_sampler
@dataclass(frozen=True, kw_only=True)
class Arc(Mix):
    """As :class:`Mix`, on the great-circle arc about the codes' mean (:func:`arc_latent`)."""

    name: ClassVar[str] = "arc"
    between_codes: ClassVar[Callable] = staticmethod(arc_latent)


@register_sampler
@dataclass(frozen=True, kw_only=True)
class Interpolate(Sampler):
    """The run's cells evenly on the path between two given learned codes: cell i at i / (count - 1).

    Attributes
    ----------
    path : tuple of int
        Indices of the learned codes at the two ends.
    """

    name: ClassVar[str] = "interpolate"
    random: ClassVar[bool] = False
    path: tuple[int, int] = option((0, 1), ListOf(Whole(0), length=2))

    def __post_init__(self) -> None:
        super().__post_init__()
        object.__setattr__(self, "path", tuple(int(i) for i in self.path))

    def check(self, latents: np.ndarray, source: str) -> None:
        """Both ends must be learned codes."""
        if not all(0 <= i < len(latents) for i in self.path):
            raise InputError(
                "sampler.path", f"indices must lie in 0 .. {len(latents) - 1}, got {list(self.path)}"
            )

    def draw(
        self, latents: np.ndarray, rng: np.random.Generator, *, index: int, count: int
    ) -> tuple[np.ndarray, dict]:
        """Return cell ``index``'s point on the path (no randomness)."""
        fraction = index / (count - 1) if count > 1 else 0.0
        return interpolated_latent(latents, *self.path, fraction), {
            "path": list(self.path),
            "fraction": fraction,
        }


def make_sampler(settings: Mapping, *, source: str = "sampler") -> Sampler:
    """Build a registered sampler from plain settings: ``name`` and its options (a model file's choice).

    Parameters
    ----------
    settings : Mapping
        ``{"name": "around", "noise": 0.05}``.
    source : str
        What the settings came from, named in the error (a model file).

    Raises
    ------
    InputError
        For settings that are not a mapping, an unknown name, an unknown option or a value its rule refuses.

    Examples
    --------
    >>> make_sampler({"name": "around", "noise": 0.05})
    Around(noise=0.05)
    >>> make_sampler({"name": "around", "noise": -1}, source="model.pt")
    Traceback (most recent call last):
    ...
    cellsdf.errors.InputError: model.pt: sampler.noise: must be a number >= 0, got -1
    """
    if not isinstance(settings, Mapping) or not isinstance(settings.get("name"), str):
        raise InputError(source, f"a sampler must be a mapping with a name, got {settings!r}")
    name = settings["name"]
    if name not in SAMPLERS or name == "auto":
        choices = ", ".join(n for n in SAMPLERS if n != "auto")
        raise InputError(source, f"unknown sampler {name!r}; choose one of {choices}")
    cls = SAMPLERS[name]
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(settings) - known - {"name"})
    if unknown:
        raise InputError(source, f"sampler {name} has no option {', '.join(unknown)}")
    try:
        return cls(**{k: v for k, v in settings.items() if k != "name"})
    except InputError as err:
        raise InputError(source, str(err)) from None


def model_sampler(sampler: Sampler, chosen: dict | None, *, source: str = "model") -> Sampler:
    """Resolve :class:`Auto`: the sampler chosen for the model (its fidelity scores), else ``gaussian``.

    Parameters
    ----------
    sampler : Sampler
        The requested sampler; any but ``auto`` is returned unchanged.
    chosen : dict or None
        The model's choice (:attr:`cellsdf.model.trained.TrainedModel.sampler`): ``name`` and settings; it is
        input like any option, checked by :func:`make_sampler`.
    source : str
        The model file, named when its choice is refused.

    Examples
    --------
    >>> model_sampler(Auto(), {"name": "around", "noise": 0.05}).noise
    0.05
    >>> model_sampler(Auto(), None).name
    'gaussian'
    """
    if not isinstance(sampler, Auto):
        return sampler
    return make_sampler(chosen if chosen is not None else {"name": "gaussian"}, source=source)


def draw_rotation(rotation: str, rng: np.random.Generator) -> np.ndarray | None:
    """Return a (3,) rotation vector uniform on SO(3) for ``uniform``, None for ``none``."""
    return uniform_rotation(rng) if rotation == "uniform" else None


def draw_cell(
    latents: np.ndarray, sampler: Sampler, rotation: str, rng: np.random.Generator, *, index: int, count: int
) -> tuple[np.ndarray, np.ndarray | None, dict]:
    """Draw the code and rotation of one generated cell (the code first, then the rotation, from ``rng``).

    Parameters
    ----------
    latents : np.ndarray
        (S, L) learned codes.
    sampler : Sampler
        A resolved sampler (not :class:`Auto`).
    rotation : {'uniform', 'none'}
        Rotation of the cell.
    rng : numpy.random.Generator
        The cell's source of randomness (redraws continue from it).
    index, count : int
        The cell's index and the number of cells.

    Returns
    -------
    tuple
        float32 (L,) code, (3,) rotation vector or None, and a description of the draw for the manifest.
    """
    latent, info = sampler.draw(latents, rng, index=index, count=count)
    return latent.astype(np.float32), draw_rotation(rotation, rng), {"sampler": sampler.name, **info}
