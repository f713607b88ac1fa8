"""Plain values from command options: what every command layer needs to turn a config entry into."""

from __future__ import annotations

from omegaconf import ListConfig, OmegaConf


def as_list(value: object) -> list:
    """Return a config entry that may be one value or a list as a plain list.

    Examples
    --------
    >>> as_list("tiff"), as_list(["tiff", "mesh"])
    (['tiff'], ['tiff', 'mesh'])
    """
    if isinstance(value, ListConfig):
        return list(OmegaConf.to_container(value, resolve=True))
    if isinstance(value, (list, tuple)):
        return list(value)
    return [value]
