"""The texture models behind one interface: label frames in, 16-bit images out (built from conf/texture/)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from cellsdf.texture.gan import load_texture_model
from cellsdf.texture.procedural import procedural_texture


@dataclass(frozen=True)
class Texture:
    """A texture model ready to use.

    Attributes
    ----------
    name : str
        ``procedural`` or ``gan``.
    apply : callable
        ``apply(labels, rng)``: integer (T, Y, X) labels and a generator to uint16 (T, Y, X) images.
    check_frames : callable
        ``check_frames(shape)`` raises InputError when frames of that shape cannot be textured, so a command
        can refuse its input before it writes anything.
    """

    name: str
    apply: Callable[[np.ndarray, np.random.Generator], np.ndarray]
    check_frames: Callable[[tuple[int, ...]], None]


def procedural(**params: float) -> Texture:
    """Build the procedural texture model with the given parameters (:func:`procedural_texture`'s keywords).

    Examples
    --------
    >>> model = procedural(read_noise=0.0)
    >>> model.apply(np.zeros((1, 16, 16), np.uint16), np.random.default_rng(0)).dtype
    dtype('uint16')
    """
    return Texture(
        "procedural",
        lambda labels, rng: np.stack([procedural_texture(frame, rng, **params) for frame in labels]),
        lambda shape: None,
    )


def gan(*, checkpoint: str | None = None, batch: int = 8, device: str = "cpu") -> Texture:
    """Load the pix2pixHD-style texture model of ``checkpoint`` (None: the shipped one).

    Raises
    ------
    InputError
        A checkpoint that is missing or not a texture model.
    """
    model = load_texture_model(checkpoint, device)
    return Texture("gan", lambda labels, rng: model(labels, rng, batch=int(batch)), model.check_frames)


def shipped_textures() -> list[Texture]:
    """Build both shipped texture models at their defaults (procedural, then the shipped GAN)."""
    return [procedural(), gan()]
