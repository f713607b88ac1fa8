"""``manifest.json``: what produced an output folder and what is in it."""

from __future__ import annotations

import json
import platform
from datetime import datetime, timezone
from pathlib import Path

from cellsdf import __version__
from cellsdf.io.atomic import atomic_path


def write_manifest(
    folder: str | Path, command: str, config: dict, seed: int, items: list[dict], **extra: object
) -> Path:
    """Write ``folder/manifest.json`` atomically.

    Parameters
    ----------
    folder : str or Path
        The output folder.
    command : str
        The cellsdf command that wrote the folder.
    config : dict
        The resolved configuration of the run.
    seed : int
        The run's seed.
    items : list of dict
        One entry per written item (file name and per-item facts).
    **extra
        More top-level entries (e.g. ``checkpoint_sha256``).

    Returns
    -------
    Path
        The manifest file.
    """
    path = Path(folder) / "manifest.json"
    manifest = {
        "command": command,
        "package_version": __version__,
        "python": platform.python_version(),
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "seed": seed,
        "config": config,
        **extra,
        "items": items,
    }
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(manifest, indent=2, default=_plain) + "\n")
    return path


def _plain(value: object) -> object:
    """Turn NumPy scalars and arrays into JSON values."""
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")
