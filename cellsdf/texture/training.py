"""Resuming a texture GAN run: the checkpoint must fit the networks, and says how far the run got."""

from __future__ import annotations

from pathlib import Path

import torch

from cellsdf.errors import InputError
from cellsdf.model.checkpoint import state_differences
from cellsdf.texture.gan_module import TextureGAN


def resumed_steps(last: Path, model: TextureGAN) -> int:
    """Refuse a missing checkpoint or one of other widths; return the GAN steps it has done."""
    if not last.is_file():
        raise InputError(last, "no checkpoint to resume from; start a new run without resume=true")
    try:
        checkpoint = torch.load(last, map_location="cpu", weights_only=True)
        state, global_step = checkpoint["state_dict"], int(checkpoint["global_step"])
    except Exception as err:  # torch raises several types for truncated or foreign files
        raise InputError(last, f"cannot read the checkpoint ({type(err).__name__})") from err
    differences = state_differences(model.state_dict(), state)
    if differences:
        raise InputError(last, f"checkpoint is from other network widths: {differences[0]}")
    return global_step // 2
