"""Loading and writing auto-decoder checkpoints safely (``torch.load(weights_only=True)``), with clear errors.

Two kinds of file load: Lightning training checkpoints (``last.ckpt``, ``best.ckpt``, with optimiser state for
resuming) and slim model files (``model.pt``: hyper-parameters and weights only, what is shipped in
``data/models/``).
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path
from typing import Any

import torch
from pytorch_lightning.plugins.io import TorchCheckpointIO

from cellsdf.errors import InputError
from cellsdf.io.atomic import atomic_path
from cellsdf.model.autodecoder import AutoDecoder

MODEL_FORMAT = "cellsdf-model/1"
BUILT_IN = ("plat", "cele", "filo")


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning's checkpoint writer that writes under a temporary name in the file's folder, then renames.

    Lightning's own writer stages the file in the system's temporary folder and moves it into place, which is
    a copy when that folder lies on another file system: a run killed during the copy leaves a truncated
    ``last.ckpt``. A rename within one folder is atomic, so a checkpoint is either the old or the new one.
    Pass it to the trainer as ``plugins=[AtomicCheckpointIO()]``.
    """

    def save_checkpoint(
        self, checkpoint: dict[str, Any], path: str | Path, storage_options: Any = None
    ) -> None:
        """Write ``checkpoint`` to ``path`` atomically (``storage_options`` are not supported)."""
        if storage_options is not None:
            raise TypeError(f"{type(self).__name__} takes no storage_options")
        with atomic_path(path) as tmp:
            torch.save(checkpoint, tmp)


def resolve_checkpoint(name: str | Path) -> Path:
    """Return the file of a checkpoint path or of a built-in model name (``plat``, ``cele``, ``filo``)."""
    if str(name) in BUILT_IN:
        return Path(str(files("cellsdf.assets") / "models" / str(name) / "model.pt"))
    return Path(name)


def read_checkpoint(path: str | Path) -> dict:
    """Read a checkpoint file without running any code from it.

    Parameters
    ----------
    path : str or Path
        Lightning checkpoint or slim model file.

    Returns
    -------
    dict
        With at least ``hyper_parameters`` and ``state_dict``.

    Raises
    ------
    InputError
        If the file is missing, truncated or unreadable, or not an auto-decoder checkpoint.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(path, f"checkpoint not found (built-in models: {', '.join(BUILT_IN)})")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises several types for truncated or foreign files
        problem = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        problem = f"cannot read the checkpoint (truncated or not a torch file): {problem}"
        raise InputError(path, problem) from err
    if not isinstance(checkpoint, dict) or not {"hyper_parameters", "state_dict"} <= checkpoint.keys():
        raise InputError(path, "not a cellsdf auto-decoder checkpoint (no hyper-parameters and weights)")
    if "n_sequences" not in checkpoint["hyper_parameters"]:
        raise InputError(path, "not a cellsdf auto-decoder checkpoint (hyper-parameters of another model)")
    return checkpoint


def state_differences(expected: dict[str, torch.Tensor], found: dict[str, torch.Tensor]) -> list[str]:
    """Describe how two state dicts differ: missing, unexpected and reshaped keys (empty when compatible)."""
    lines = [f"missing {k}" for k in expected if k not in found]
    lines += [f"unexpected {k}" for k in found if k not in expected]
    lines += [
        f"{k} has shape {tuple(found[k].shape)}, the model expects {tuple(v.shape)}"
        for k, v in expected.items()
        if k in found and found[k].shape != v.shape
    ]
    return lines


def check_compatible(path: str | Path, model: AutoDecoder) -> None:
    """Raise InputError naming the differing keys if a checkpoint does not fit ``model``'s configuration."""
    differences = state_differences(model.state_dict(), read_checkpoint(path)["state_dict"])
    if differences:
        more = f"; and {len(differences) - 4} more" if len(differences) > 4 else ""
        shown = "; ".join(differences[:4]) + more
        raise InputError(path, f"checkpoint is from another model configuration: {shown}")


def load_autodecoder(path: str | Path) -> AutoDecoder:
    """Rebuild a trained auto-decoder from a checkpoint or built-in model name, in evaluation mode on the CPU.

    Parameters
    ----------
    path : str or Path
        Lightning checkpoint, slim model file, or ``plat``, ``cele``, ``filo``.

    Returns
    -------
    AutoDecoder
    """
    path = resolve_checkpoint(path)
    return autodecoder_from(read_checkpoint(path), path)


def autodecoder_from(checkpoint: dict, path: str | Path) -> AutoDecoder:
    """Rebuild the auto-decoder of a checkpoint already read (:func:`read_checkpoint`) from ``path``."""
    try:
        model = AutoDecoder(**checkpoint["hyper_parameters"])
    except (TypeError, ValueError) as err:
        raise InputError(path, f"checkpoint hyper-parameters do not build an auto-decoder: {err}") from err
    differences = state_differences(model.state_dict(), checkpoint["state_dict"])
    if differences:
        raise InputError(path, f"checkpoint weights do not match its hyper-parameters: {differences[0]}")
    model.load_state_dict(checkpoint["state_dict"])
    return model.eval()


def export_model(model: AutoDecoder, path: str | Path) -> Path:
    """Write a slim model file (hyper-parameters and weights, no optimiser state) atomically.

    Parameters
    ----------
    model : AutoDecoder
        Trained model.
    path : str or Path
        Output file, conventionally ``model.pt``.

    Returns
    -------
    Path
    """
    path = Path(path)
    state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    with atomic_path(path) as tmp:
        payload = {"format": MODEL_FORMAT, "hyper_parameters": dict(model.hparams), "state_dict": state}
        torch.save(payload, tmp)
    return path


def record_sampler(path: str | Path, sampler: dict) -> Path:
    """Store the latent sampler chosen for a model in its model file (what ``sampler.name=auto`` uses).

    Parameters
    ----------
    path : str or Path
        A slim model file (``model.pt``).
    sampler : dict
        ``name`` and its settings (``std``, ``noise``), as ``cellsdf generate``'s ``sampler``.

    Returns
    -------
    Path
    """
    path = Path(path)
    payload = read_checkpoint(path)
    payload["sampler"] = dict(sampler)
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)
    return path
