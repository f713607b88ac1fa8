"""cellsdf: generative models of living 3D+t cell shapes as signed distance functions."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("cellsdf")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"
