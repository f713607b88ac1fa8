"""Voxel sizes of the two inputs: fill in unknown ones, and say when real and generated differ."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from cellsdf.evaluate.inputs import SequenceSpec
from cellsdf.io.spacing import Spacing


def resolve_spacing(
    specs: dict[str, list[SequenceSpec]], overrides: dict[str, Spacing | None]
) -> tuple[dict[str, list[SequenceSpec]], dict, list[str]]:
    """Give every sequence a voxel size and describe how the inputs' voxel sizes relate.

    All measures are in µm, so inputs with different known voxel sizes are compared correctly as they are;
    the note only makes the difference visible. A sequence whose files state no voxel size takes its input's
    override, else a size stated elsewhere in its input, else the other input's, else 1 µm.

    Parameters
    ----------
    specs : dict
        ``real`` and ``generated`` sequence lists.
    overrides : dict
        ``real`` and ``generated`` user-given voxel sizes (or None).

    Returns
    -------
    specs : dict
        The sequences with voxel sizes set.
    info : dict
        Per input the distinct voxel sizes, whether any were assumed, and ``match``.
    notes : list of str
        One line per thing the user should know.
    """
    known = {
        role: [overrides[role]] if overrides[role] else [s.spacing for s in seqs if s.spacing is not None]
        for role, seqs in specs.items()
    }
    notes, assumed, resolved = [], {}, {}
    for role, seqs in specs.items():
        other = next(r for r in specs if r != role)
        fallback = (known[role] or known[other] or [(1.0, 1.0, 1.0)])[0]
        unknown = overrides[role] is None and any(s.spacing is None for s in seqs)
        assumed[role] = unknown
        if unknown:
            whence = "its other files" if known[role] else "the other input" if known[other] else "a default"
            notes.append(
                f"some {role} files state no voxel size; taken as {_format(fallback)} from {whence} "
                f"(set spacing_{role}=[z,y,x] if that is wrong)"
            )
        resolved[role] = [replace(s, spacing=overrides[role] or s.spacing or fallback) for s in seqs]
    distinct = {role: _distinct([s.spacing for s in seqs]) for role, seqs in resolved.items()}
    match = len(distinct["real"]) == len(distinct["generated"]) and all(
        np.allclose(a, b, rtol=1e-6) for a, b in zip(distinct["real"], distinct["generated"], strict=True)
    )
    if not match:
        notes.append(
            f"voxel spacing differs: real {', '.join(map(_format, distinct['real']))}, generated "
            f"{', '.join(map(_format, distinct['generated']))}; all measures were compared in µm"
        )
    info = {
        role: {"spacing": [list(s) for s in distinct[role]], "assumed": assumed[role]} for role in resolved
    }
    return resolved, {**info, "match": match}, notes


def _distinct(spacings: list[Spacing]) -> list[Spacing]:
    out: list[Spacing] = []
    for s in spacings:
        if not any(np.allclose(s, o, rtol=1e-6) for o in out):
            out.append(tuple(float(v) for v in s))
    return sorted(out)


def _format(spacing: Spacing) -> str:
    return "(" + ", ".join(f"{v:.4g}" for v in spacing) + ") µm"
