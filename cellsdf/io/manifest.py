"""``manifest.json``: what produced an output folder and what is in it."""

from __future__ import annotations

import json
import platform
import shutil
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

    Notes
    -----
    A run that replaces an earlier one in the same folder (``overwrite=true``) replaces it as a whole: the
    files and folders the earlier manifest listed and this run did not write again are removed, so that no
    file of the old run is later read as part of the new one. Nothing the earlier manifest did not list is
    touched.
    """
    path = Path(folder) / "manifest.json"
    _remove_replaced(Path(folder), _listed(_previous_items(path)) - _listed(items))
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


def _previous_items(path: Path) -> list:
    """Return the items of the manifest a run is about to replace (none when absent or unreadable)."""
    try:
        earlier = json.loads(path.read_text())
    except (OSError, ValueError):
        return []
    items = earlier.get("items") if isinstance(earlier, dict) else None
    return items if isinstance(items, list) else []


def _listed(items: list) -> set[str]:
    """Return the files and folders that manifest items name, relative to the output folder."""
    return {
        str(item[key])
        for item in items
        if isinstance(item, dict)
        for key in ("file", "folder")
        if isinstance(item.get(key), str)
    }


def _remove_replaced(folder: Path, names: set[str]) -> None:
    root = folder.resolve()
    for name in names:
        target = (folder / name).resolve()
        # A manifest is data: an entry may never reach outside its folder, nor name the folder itself.
        if root not in target.parents:
            continue
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target)
        else:
            target.unlink(missing_ok=True)


def _plain(value: object) -> object:
    """Turn NumPy scalars and arrays into JSON values."""
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")
