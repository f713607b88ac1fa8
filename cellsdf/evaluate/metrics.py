"""Metric names a user can ask for, and checking them (light: the command line checks them before work)."""

from __future__ import annotations

from collections.abc import Iterable

from cellsdf.errors import InputError
from cellsdf.evaluate.shapes import SHAPE_METRICS
from cellsdf.evaluate.temporal import TEMPORAL

# Per-frame shape descriptors (:mod:`cellsdf.evaluate.descriptors` computes them); named here so that the
# command line checks a selection without loading the mesh libraries.
DESCRIPTORS = (
    "volume",
    "area",
    "sphericity",
    "elongation",
    "flatness",
    "solidity",
    "mean_curvature",
    "components",
    "euler",
    "end_points",
)
METRICS = (*DESCRIPTORS, *TEMPORAL, *SHAPE_METRICS)


def select_metrics(metrics: str | Iterable[str]) -> tuple[str, ...]:
    """Check a metric selection and return it in the canonical order.

    Parameters
    ----------
    metrics : str or iterable of str
        ``"all"``, or names from :data:`METRICS` (frame descriptors, over-time measures, shape-set metrics).

    Returns
    -------
    tuple of str
        The selected names.

    Raises
    ------
    InputError
        Naming the unknown metrics and listing the valid ones.
    """
    if isinstance(metrics, str):
        metrics = list(METRICS) if metrics == "all" else [metrics]
    chosen = [str(m) for m in metrics]
    unknown = [m for m in chosen if m not in METRICS]
    if unknown:
        raise InputError(
            "metrics", f"unknown metric(s) {', '.join(unknown)}; valid: all, {', '.join(METRICS)}"
        )
    if not chosen:
        raise InputError("metrics", f"no metric selected; valid: all, {', '.join(METRICS)}")
    return tuple(m for m in METRICS if m in chosen)
