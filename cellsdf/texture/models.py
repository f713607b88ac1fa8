"""One way to build either texture model from its settings: label frames in, 16-bit images out."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from importlib.resources import files

import numpy as np
from omegaconf import OmegaConf

from cellsdf.errors import InputError
from cellsdf.texture.gan import load_texture_model
from cellsdf.texture.procedural import procedural_texture

TEXTURES = ("procedural", "gan")


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


def default_texture(name: str) -> dict:
    """Return the settings of a texture model as shipped in ``conf/texture/<name>.yaml``."""
    if name not in TEXTURES:
        raise InputError("texture", f"choose one of {', '.join(TEXTURES)}, got {name!r}")
    text = (files("cellsdf.conf") / "texture" / f"{name}.yaml").read_text()
    return OmegaConf.to_container(OmegaConf.create(text), resolve=True)


def texture_model(texture: dict) -> Texture:
    """Build a texture model from its settings (``conf/texture/procedural.yaml`` or ``gan.yaml``).

    Parameters
    ----------
    texture : dict
        ``name`` and the model's settings: the procedural parameters, or the GAN's ``checkpoint`` (None: the
        shipped model), ``batch`` and ``device``.

    Returns
    -------
    Texture

    Raises
    ------
    InputError
        An unknown name, or a GAN checkpoint that is missing or not a texture model.
    """
    name = texture.get("name")
    if name not in TEXTURES:
        raise InputError("texture", f"choose one of {', '.join(TEXTURES)}, got {name!r}")
    if name == "gan":
        model = load_texture_model(texture.get("checkpoint"), texture.get("device", "cpu"))
        batch = int(texture.get("batch", 8))
        return Texture(name, lambda labels, rng: model(labels, rng, batch=batch), model.check_frames)
    params = {k: v for k, v in texture.items() if k != "name"}
    return Texture(
        name,
        lambda labels, rng: np.stack([procedural_texture(frame, rng, **params) for frame in labels]),
        lambda shape: None,
    )
