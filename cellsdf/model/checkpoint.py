"""Loading and writing auto-decoder checkpoints safely (``torch.load(weights_only=True)``), with clear errors.

Two kinds of file load: Lightning training checkpoints (``last.ckpt``, ``best.ckpt``, with optimiser state for
resuming) and slim model files (``model.pt``: hyper-parameters and weights only, what is shipped in
``data/models/``).
"""

from __future__ import annotations

import pickle
import re
import sys
import zipfile
from importlib.resources import files
from pathlib import Path
from typing import Any

import torch
from pytorch_lightning.plugins.io import TorchCheckpointIO

from cellsdf.errors import InputError
from cellsdf.io.atomic import atomic_path
from cellsdf.io.limits import check_allocation
from cellsdf.model.autodecoder import AutoDecoder
from cellsdf.model.builtin import BUILT_IN
from cellsdf.model.options import check_hyper_parameters

MODEL_FORMAT = "cellsdf-model/1"
_GLOBAL = re.compile(r"GLOBAL\s+([\w.]+)", re.IGNORECASE)


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning's checkpoint reader and writer for one run's folder: atomic writes, trusted reads.

    Writes go under a temporary name in the file's folder, then a rename. Lightning's own writer stages the
    file in the system's temporary folder and moves it into place, which is a copy when that folder lies on
    another file system: a run killed during the copy leaves a truncated ``last.ckpt``. A rename within one
    folder is atomic, so a checkpoint is either the old or the new one.

    Reads (a resumed run's ``ckpt_path``) load weights only and drop every file path in the saved callback
    state that does not resolve inside ``folder``: Lightning deletes a checkpoint callback's "previous best"
    file on its next save, so a crafted ``best_model_path`` of ``<out>/checkpoints/../../x`` would delete
    ``x``.
    Pass it to the trainer as ``plugins=[AtomicCheckpointIO(folder=<the run's checkpoints>)]``.

    Parameters
    ----------
    folder : str or Path, optional
        The folder the run's checkpoints live in; None drops every callback path on reading.
    """

    def __init__(self, *, folder: str | Path | None = None) -> None:
        super().__init__()
        self.folder = None if folder is None else Path(folder)

    def load_checkpoint(
        self, path: str | Path, map_location: Any = None, weights_only: bool | None = None
    ) -> dict[str, Any]:
        """Read a checkpoint with weights only, keeping only the callback paths inside the run's folder."""
        checkpoint = load_plain(Path(path), what="checkpoint")
        if not isinstance(checkpoint, dict):
            raise InputError(path, "not a Lightning checkpoint (no dictionary inside)")
        dropped = drop_outside_paths(checkpoint.get("callbacks"), self.folder)
        if dropped:
            outside = ", ".join(dropped)
            print(
                f"cellsdf: note: {path}: dropped callback paths outside the run's folder: {outside}",
                file=sys.stderr,
            )
        return checkpoint

    def save_checkpoint(
        self, checkpoint: dict[str, Any], path: str | Path, storage_options: Any = None
    ) -> None:
        """Write ``checkpoint`` to ``path`` atomically (``storage_options`` are not supported)."""
        if storage_options is not None:
            raise TypeError(f"{type(self).__name__} takes no storage_options")
        with atomic_path(path) as tmp:
            torch.save(checkpoint, tmp)


# Keys of Lightning's ModelCheckpoint state that name files it may later delete or overwrite.
_CALLBACK_PATHS = ("best_model_path", "kth_best_model_path", "last_model_path")


def _inside(path: object, folder: Path | None) -> bool:
    if not isinstance(path, str) or folder is None:
        return False
    resolved, root = Path(path).resolve(), folder.resolve()
    return resolved == root or root in resolved.parents


def drop_outside_paths(callbacks: object, folder: Path | None) -> list[str]:
    """Empty the file paths in saved callback state that do not resolve inside ``folder``; return them.

    Parameters
    ----------
    callbacks : object
        A checkpoint's ``callbacks`` entry (callback name -> state dict); changed in place.
    folder : Path or None
        The run's checkpoint folder; None drops every path.

    Returns
    -------
    list of str
        The paths dropped.

    Examples
    --------
    >>> state = {"ModelCheckpoint": {"best_model_path": "/run/checkpoints/../../x", "best_k_models": {}}}
    >>> drop_outside_paths(state, Path("/run/checkpoints")), state["ModelCheckpoint"]["best_model_path"]
    (['/run/checkpoints/../../x'], '')
    """
    dropped: list[str] = []
    if not isinstance(callbacks, dict):
        return dropped
    for state in callbacks.values():
        if not isinstance(state, dict):
            continue
        for key in _CALLBACK_PATHS:
            value = state.get(key)
            if value and not _inside(value, folder):
                dropped.append(str(value))
                state[key] = ""
        best = state.get("best_k_models")
        if isinstance(best, dict):
            outside = [k for k in best if not _inside(k, folder)]
            dropped += [str(k) for k in outside]
            for key in outside:
                del best[key]
    return dropped


def resolve_checkpoint(name: str | Path) -> Path:
    """Return the file of a checkpoint path or of a built-in model name (``plat``, ``cele``, ``filo``)."""
    if str(name) in BUILT_IN:
        return Path(str(files("cellsdf.assets") / "models" / str(name) / "model.pt"))
    return Path(name)


# What a file is, by its first bytes, for files that are often passed where a model belongs.
_SIGNATURES = {
    b"\x89HDF\r\n\x1a\n": "an HDF5 file (a prepared dataset is passed as data.path= or input=)",
    b"II*\x00": "a TIFF image (masks are passed as input=)",
    b"MM\x00*": "a TIFF image (masks are passed as input=)",
    b"II+\x00": "a BigTIFF image (masks are passed as input=)",
}


def _file_kind(path: Path) -> str | None:
    """Return what a file is when its first bytes say it is not a torch file, else None."""
    try:
        with open(path, "rb") as stream:
            head = stream.read(8)
    except OSError:
        return None
    return next((kind for magic, kind in _SIGNATURES.items() if head.startswith(magic)), None)


def _check_archive(path: Path, *, what: str) -> None:
    """Refuse a torch file whose archive inflates: sizes come from the file's content, not from its claims.

    ``torch.save`` stores every entry of its zip archive uncompressed, so a file's tensors are never larger
    than the file. An archive with compressed entries was made otherwise, and a few MB of it can inflate to
    GB of tensors (one such file of 2.2 MB drove memory to 9 GB); it is refused before anything is inflated.
    Files that are not zip archives are left to ``torch.load``, which says what they are.
    """
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError):
        return
    with archive:
        entries = archive.infolist()
    packed = [e for e in entries if e.compress_type != zipfile.ZIP_STORED]
    if packed:
        inflated = sum(e.file_size for e in packed) / 2**20
        raise InputError(
            path,
            f"not a {what} as torch writes it: {len(packed)} entries are compressed ({inflated:.0f} MiB once "
            "inflated; torch stores them uncompressed); refused before inflating",
        )
    check_allocation(path, sum(e.file_size for e in entries), what=f"the {what}'s tensors")


def load_plain(path: Path, *, what: str) -> object:
    """Load a torch file that may hold only tensors and plain containers, without running code from it.

    Parameters
    ----------
    path : Path
        An existing file.
    what : str
        What the file should be (``checkpoint``, ``texture model``), for the messages.

    Returns
    -------
    object
        The file's content.

    Raises
    ------
    InputError
        If the file is truncated or not a torch file, or holds pickled objects other than weights.
    """
    _check_archive(path, what=what)
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises several types for truncated or foreign files
        # weights_only refuses a pickled object other than tensors and plain containers by naming its global;
        # such a file is not damaged but unsafe, and calling it truncated would send the user the wrong way.
        found = _GLOBAL.search(str(err)) if isinstance(err, pickle.UnpicklingError) else None
        if found is not None:
            objects = found.group(1)
            raise InputError(
                path,
                f"not a plain cellsdf {what}: it contains objects that are not weights ({objects}); "
                "refused without running them",
            ) from None
        kind = _file_kind(path)
        if kind is not None:
            raise InputError(path, f"not a {what}: it is {kind}") from None
        problem = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        # torch's message for a file it cannot read advises loading it with weights_only=False, which would
        # run whatever code the file holds: advice never to pass on for a file from elsewhere.
        detail = "" if "weights_only" in problem else f": {problem}"
        raise InputError(path, f"cannot read the {what} (truncated or not a torch file){detail}") from None


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
        If the file is missing, truncated or unreadable, not an auto-decoder checkpoint, or holds pickled
        objects other than weights (refused without running them).
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(path, f"checkpoint not found (built-in models: {', '.join(BUILT_IN)})")
    checkpoint = load_plain(path, what="checkpoint")
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


def non_finite(state: dict[str, torch.Tensor]) -> list[str]:
    """Return the keys of a state dict whose floating-point tensors hold NaN or infinite values.

    Examples
    --------
    >>> non_finite({"a": torch.zeros(2), "b": torch.tensor([1.0, float("nan")]), "n": torch.tensor(3)})
    ['b']
    """
    return [k for k, v in state.items() if v.is_floating_point() and not torch.isfinite(v).all()]


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
    """Rebuild the auto-decoder of a checkpoint already read (:func:`read_checkpoint`) from ``path``.

    The hyper-parameters are first checked against the weights' shapes on a model built without memory
    (PyTorch's meta device), so a small file whose hyper-parameters ask for millions of sequences is refused
    before anything that size is allocated; weights that are NaN or infinite are refused as a broken file.
    """
    check_hyper_parameters(checkpoint["hyper_parameters"], path)
    try:
        with torch.device("meta"):
            shapes = AutoDecoder(**checkpoint["hyper_parameters"]).state_dict()
    except (TypeError, ValueError, RuntimeError) as err:
        raise InputError(path, f"checkpoint hyper-parameters do not build an auto-decoder: {err}") from err
    state = checkpoint["state_dict"]
    differences = state_differences(shapes, state)
    if differences:
        raise InputError(path, f"checkpoint weights do not match its hyper-parameters: {differences[0]}")
    broken = non_finite(state)
    if broken:
        raise InputError(
            path, f"broken checkpoint: weights {', '.join(broken[:3])} hold NaN or infinite values"
        )
    model = AutoDecoder(**checkpoint["hyper_parameters"])
    model.load_state_dict(state)
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

    Raises
    ------
    InputError
        If a weight is NaN or infinite (training diverged); nothing is written then.
    """
    path = Path(path)
    state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    broken = non_finite(state)
    if broken:
        raise InputError(
            path,
            f"not written: weights {', '.join(broken[:3])} became NaN or infinite in training; lower the "
            "learning rates (model.lr.*)",
        )
    with atomic_path(path) as tmp:
        payload = {"format": MODEL_FORMAT, "hyper_parameters": dict(model.hparams), "state_dict": state}
        torch.save(payload, tmp)
    return path


def record_sampler(path: str | Path, sampler: dict) -> Path:
    """Store the latent sampler chosen for a model in its model file (what ``sampler=auto`` uses).

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
    return _record(path, "sampler", dict(sampler))


def record_protrusions(path: str | Path, protrusions: dict) -> Path:
    """Store a body-and-protrusions model's protrusions in its model file.

    Parameters
    ----------
    path : str or Path
        A slim model file (``model.pt``) whose auto-decoder learned the cells' bodies.
    protrusions : dict
        :meth:`ProtrusionModel.to_file <cellsdf.model.protrusions.ProtrusionModel.to_file>`.

    Returns
    -------
    Path
    """
    return _record(path, "protrusions", protrusions)


def _record(path: str | Path, key: str, value: object) -> Path:
    """Set one entry of a model file, rewriting it atomically."""
    path = Path(path)
    payload = read_checkpoint(path)
    payload[key] = value
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)
    return path
