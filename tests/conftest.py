import numpy as np
import pytest
from hydra import compose, initialize_config_module


def blob(shape=(24, 28, 32), centre=None, radii=(6, 8, 9)) -> np.ndarray:
    """An axis-aligned ellipsoid mask, the small known shape most tests start from."""
    centre = np.asarray(shape) / 2 if centre is None else np.asarray(centre)
    grid = np.stack(np.meshgrid(*map(np.arange, shape), indexing="ij"), axis=-1)
    return (((grid - centre) / np.asarray(radii)) ** 2).sum(-1) <= 1.0


@pytest.fixture
def growing_blob() -> np.ndarray:
    """Five frames (T, Z, Y, X) of an ellipsoid that grows and moves."""
    return np.stack([blob(centre=(12, 14, 14 + k), radii=(5 + k * 0.5, 7, 8)) for k in range(5)])


@pytest.fixture
def compose_cfg():
    """Compose a command's config with overrides, as the CLI would."""

    def _compose(command: str, overrides: list[str]):
        with initialize_config_module("cellsdf.conf", version_base="1.3"):
            return compose(command, overrides=overrides)

    return _compose
