"""Resuming a texture GAN run: the checkpoint must fit the networks, and says how far the run got."""

from __future__ import annotations

from pathlib import Path

from cellsdf.errors import InputError
from cellsdf.model.checkpoint import load_plain, state_differences
from cellsdf.texture.gan_module import TextureGAN


def resumed_steps(last: Path, model: TextureGAN) -> int:
    """Refuse a missing checkpoint or one of other widths; return the GAN steps it has done."""
    if not last.is_file():
        raise InputError(last, "no checkpoint to resume from; start a new run without resume=true")
    checkpoint = load_plain(last, what="checkpoint")
    try:
        state, global_step = checkpoint["state_dict"], int(checkpoint["global_step"])
    except (KeyError, TypeError, ValueError) as err:
        raise InputError(last, f"not a texture training checkpoint (no {err})") from None
    differences = state_differences(model.state_dict(), state)
    if differences:
        raise InputError(last, f"checkpoint is from other network widths: {differences[0]}")
    return global_step // 2
