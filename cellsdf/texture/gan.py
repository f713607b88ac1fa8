"""Texturing with a trained pix2pixHD-style GAN: load a model file, turn label frames into 16-bit images."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

import numpy as np
import torch

from cellsdf.errors import InputError
from cellsdf.io.atomic import atomic_path
from cellsdf.model.checkpoint import load_plain, non_finite
from cellsdf.texture.gan_module import TextureGAN
from cellsdf.texture.networks import Generator
from cellsdf.texture.pairs import CONDITION_CHANNELS, condition_channels
from cellsdf.texture.volume_pairs import VOLUME_CHANNELS, slice_condition, volume_codes

__all__ = ["GanTexture", "export_texture_model", "load_texture_model", "shipped_texture_model"]

MODEL_FORMAT = "cellsdf-texture-gan/1"
_UINT16_MAX = np.iinfo(np.uint16).max


# Shipped 3D texture models by name (``learned=cho``): the voxel grid they were trained on is the preset's.
SHIPPED_VOLUME_MODELS = {"cho": "texture_gan3d_cho"}


def shipped_texture_model(name: str | None = None) -> Path:
    """Return the file of a texture model shipped with cellsdf: the 2D one, or a 3D one by preset name.

    Examples
    --------
    >>> shipped_texture_model("cho").parent.name
    'texture_gan3d_cho'
    """
    folder = "texture_gan" if name is None else SHIPPED_VOLUME_MODELS[name]
    return Path(str(files("cellsdf.assets") / "models" / folder / "model.pt"))


class GanTexture:
    """A trained texture generator: instance labels in, 16-bit images in the training image's units out.

    Parameters
    ----------
    generator : Generator
        The trained generator.
    intensity_scale : float
        Intensity that the generator's +1 stands for (its -1 is 0).
    crop : int
        Side of the crops it was trained on.
    path : Path
        The model file, named in error messages.
    device : torch.device
        Where the generator runs.
    """

    def __init__(
        self, generator: Generator, intensity_scale: float, crop: int, path: Path, device: torch.device
    ):
        self.generator = generator.to(device).eval()
        self.volume = False  # the slice-wise 3D model (set by load_texture_model from the file's channels)
        self.intensity_scale = float(intensity_scale)
        self.crop = int(crop)
        self.path = Path(path)
        self.device = device

    @property
    def side_multiple(self) -> int:
        """Label frames must have sides that are multiples of this."""
        return self.generator.side_multiple

    def check_frames(self, shape: tuple[int, ...]) -> None:
        """Raise InputError naming the model, the frame shape and the multiple if frame sides do not fit."""
        frame, m = tuple(shape[-2:]), self.side_multiple
        if frame[0] % m or frame[1] % m:
            raise InputError(
                self.path, f"label frames of shape {frame} do not fit: sides must be multiples of {m}"
            )

    def render_volume(self, labels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Texture a (Z, Y, X) label volume slice by slice, each slice seeing its neighbours (3D models only).

        Parameters
        ----------
        labels : np.ndarray
            (Z, Y, X) non-negative integer instance labels on the voxel grid of the training images; sides
            that are not multiples of ``side_multiple`` are padded with background and cut back.
        rng : np.random.Generator
            Source of the per-cell codes (one per cell for the whole volume) and the noise.

        Returns
        -------
        np.ndarray
            uint16 (Z, Y, X).

        Raises
        ------
        InputError
            If the model is a 2D one.
        """
        if not self.volume:
            raise InputError(self.path, "is a 2D texture model; 3D images need one from texture-train dims=3")
        labels = np.asarray(labels)
        if labels.ndim != 3:
            raise ValueError(f"labels must be (Z, Y, X), got shape {labels.shape}")
        m = self.side_multiple
        height, width = labels.shape[1:]
        padded = np.pad(labels, ((0, 0), (0, -height % m), (0, -width % m)))
        codes = volume_codes(padded, rng)
        condition = np.stack([slice_condition(padded, z, codes, rng) for z in range(len(padded))])
        with torch.inference_mode():
            out = self.generator(torch.from_numpy(condition).to(self.device))[:, 0].cpu().numpy()
        values = (out[:, :height, :width] + 1.0) * (0.5 * self.intensity_scale)
        return np.clip(np.rint(values), 0, _UINT16_MAX).astype(np.uint16)

    def __call__(self, labels: np.ndarray, rng: np.random.Generator, batch: int = 8) -> np.ndarray:
        """Texture instance-label frames.

        Parameters
        ----------
        labels : np.ndarray
            (Y, X) or (T, Y, X) non-negative integer (or boolean) instance labels, 0 is background;
            Y and X multiples of ``side_multiple``.
        rng : np.random.Generator
            Source of the per-cell codes and pixel noise; the same seed gives the same images.
        batch : int
            Frames per generator call.

        Returns
        -------
        np.ndarray
            uint16 images of the shape of ``labels``.

        Raises
        ------
        InputError
            If the frame sides are not multiples of ``side_multiple``.
        ValueError
            If ``labels`` is not 2D or 3D non-negative integer labels, or ``batch`` < 1.
        """
        if self.volume:
            raise InputError(self.path, "is a 3D (slice-wise) texture model; use render_volume for 3D labels")
        labels = np.asarray(labels)
        if labels.ndim not in (2, 3):
            raise ValueError(f"labels must be (Y, X) or (T, Y, X), got shape {labels.shape}")
        if labels.dtype != bool and not np.issubdtype(labels.dtype, np.integer):
            raise ValueError(f"labels must be integer instance labels, got dtype {labels.dtype}")
        if labels.size and labels.min() < 0:
            raise ValueError("labels must be non-negative (0 is background)")
        if batch < 1:
            raise ValueError(f"batch must be >= 1, got {batch}")
        self.check_frames(labels.shape)
        frames = labels.reshape(-1, *labels.shape[-2:])
        images = np.empty(frames.shape, np.uint16)
        with torch.inference_mode():
            for start in range(0, len(frames), batch):
                chunk = frames[start : start + batch]
                condition = np.stack([condition_channels(frame, rng) for frame in chunk])
                out = self.generator(torch.from_numpy(condition).to(self.device))[:, 0].cpu().numpy()
                values = (out + 1.0) * (0.5 * self.intensity_scale)
                images[start : start + len(chunk)] = np.clip(np.rint(values), 0, _UINT16_MAX)
        return images.reshape(labels.shape)


def export_texture_model(model: TextureGAN, path: str | Path) -> Path:
    """Write the slim model file that ``load_texture_model`` reads: generator settings and float16 weights.

    Parameters
    ----------
    model : TextureGAN
        Trained module.
    path : str or Path
        Output file, conventionally ``model.pt``.

    Returns
    -------
    Path
        The written file.

    Raises
    ------
    InputError
        If a weight is NaN or infinite in float16; nothing is written then.
    """
    path = Path(path)
    generator = model.generator
    # Half precision halves the shipped file; the generator's output moves by well under one ADU.
    state = {k: v.detach().cpu().to(torch.float16) for k, v in generator.state_dict().items()}
    broken = non_finite(state)
    if broken:
        # A generator with NaN weights writes black images without a word; refuse it instead.
        raise InputError(
            path,
            f"not written: generator weights {', '.join(broken[:3])} are NaN or infinite (or beyond float16) "
            "after training; lower the learning rate",
        )
    content = {
        "format": MODEL_FORMAT,
        "generator": model.generator_config(),
        "state_dict": state,
        "condition_channels": list(model.channels),
        "side_multiple": generator.side_multiple,
        "crop": int(model.hparams.crop),
        "intensity_scale": float(model.hparams.intensity_scale),
    }
    with atomic_path(path) as tmp:
        torch.save(content, tmp)
    return path


def _read(path: Path) -> dict:
    if not path.is_file():
        raise InputError(path, "texture model not found")
    content = load_plain(path, what="texture model")
    if not isinstance(content, dict) or content.get("format") != MODEL_FORMAT:
        raise InputError(
            path, f"not a cellsdf texture model (expected format {MODEL_FORMAT}, e.g. from texture-train)"
        )
    if list(content.get("condition_channels", [])) not in (list(CONDITION_CHANNELS), list(VOLUME_CHANNELS)):
        raise InputError(path, f"texture model expects input channels {content.get('condition_channels')}")
    return content


def load_texture_model(path: str | Path | None = None, device: str | torch.device = "cpu") -> GanTexture:
    """Load a texture model written by ``cellsdf texture-train`` (its ``model.pt``).

    Parameters
    ----------
    path : str or Path or None
        The model file, or a shipped 3D model's name (``cho``); None loads the shipped 2D model.
    device : str or torch.device
        Where the generator runs.

    Returns
    -------
    GanTexture

    Raises
    ------
    InputError
        If the file is missing, unreadable, not a texture model, or its weights do not fit its settings or
        are NaN or infinite.
    """
    if path is None or str(path) in SHIPPED_VOLUME_MODELS:
        path = shipped_texture_model(None if path is None else str(path))
    path = Path(path)
    content = _read(path)
    broken = non_finite(content["state_dict"]) if isinstance(content.get("state_dict"), dict) else []
    if broken:
        raise InputError(path, f"broken texture model: weights {', '.join(broken[:3])} are NaN or infinite")
    try:
        generator = Generator(**content["generator"])
        generator.load_state_dict({k: v.float() for k, v in content["state_dict"].items()})
    except (TypeError, ValueError, RuntimeError) as err:
        problem = str(err).strip().splitlines()[0]
        raise InputError(path, f"texture model weights do not fit its settings: {problem}") from err
    volume = list(content["condition_channels"]) == list(VOLUME_CHANNELS)
    texture = GanTexture(generator, content["intensity_scale"], content["crop"], path, torch.device(device))
    texture.volume = volume
    return texture
