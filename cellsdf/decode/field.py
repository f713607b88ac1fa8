"""The interface every decodable field keeps: the trained SIREN, a placed decoder (lift) and a free field."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol, runtime_checkable

import torch


@runtime_checkable
class Field(Protocol):
    """A signed distance field over (z, y, x, t), conditioned on an optional per-sequence code.

    The decoders of :mod:`cellsdf.decode` call only these members. The code's share of the computation is
    the same for every point of a sequence, so it is computed once (:meth:`sequence_terms`) and reused for
    every batch of points (:meth:`forward_terms`).

    Attributes
    ----------
    latent_size : int
        Length of the code (0 for a field without one).
    """

    latent_size: int

    def sequence_terms(self, latent: torch.Tensor) -> list[torch.Tensor]:
        """Return the per-sequence terms of (B, L) codes."""
        ...

    def forward_terms(
        self, terms: list[torch.Tensor], coords: torch.Tensor, *, hidden_dtype: torch.dtype | None = None
    ) -> torch.Tensor:
        """Return (B, P) signed distances at (B, P, 4) points (z, y, x, t), given :meth:`sequence_terms`.

        ``hidden_dtype`` (e.g. ``torch.bfloat16``) is the type of the hidden layers' matrix products; None
        keeps the weights' type throughout.
        """
        ...

    def parameters(self, recurse: bool = True) -> Iterator[torch.nn.Parameter]:
        """Iterate over the weights (their dtype and device decide those of the inputs)."""
        ...
