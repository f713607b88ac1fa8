import numpy as np
import pytest
import torch
from helpers import blob
from hydra import compose, initialize_config_module


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


@pytest.fixture(scope="module")
def one_thread():
    """Run a module's tiny models on one thread: a second only adds synchronisation on a busy machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
