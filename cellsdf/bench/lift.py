"""Lift row: seconds to fit one latent hypothesis to a 64² mask (target: under 30 s)."""

from __future__ import annotations

import numpy as np

from cellsdf.bench.measure import measure
from cellsdf.bench.row import Row
from cellsdf.lift.evaluation import EvalSettings, truth_cell
from cellsdf.lift.latent import FitOptions, fit_hypotheses
from cellsdf.lift.render import project_volume
from cellsdf.lift.views import View
from cellsdf.model.trained import load_trained

TARGET_SECONDS = 30.0
TARGET_MASK_SIZE = 64  # the side of the mask the target is stated for


def lift_row(*, cell_line: str = "plat", size: int = 64, hypotheses: int = 4, seed: int = 1) -> Row:
    """Time a default latent lift of K hypotheses (one batch) from one view; report seconds per hypothesis.

    The time covers the whole :func:`~cellsdf.lift.latent.fit_hypotheses` call: the starts, the Adam steps
    and the decoded silhouettes that rank the hypotheses. There is no plain reference to compare with.

    Parameters
    ----------
    cell_line : str
        Built-in model and simulated line of the held-out cell.
    size : int
        Mask side (64 for the target).
    hypotheses : int
        K, fitted as one batch.
    seed : int
        Seed of the held-out cell (not 0) and of the fit.

    Returns
    -------
    Row
        ``ours`` in s per hypothesis, peak traced MiB.
    """
    model = load_trained(cell_line)
    truth = truth_cell(cell_line, seed, 0, EvalSettings(size=size))
    views = [View(project_volume(truth, np.eye(3)), np.eye(3), "top")]
    options = FitOptions()
    seconds, peak = measure(
        lambda: fit_hypotheses(model, views, hypotheses=hypotheses, options=options, seed=seed)
    )
    per_hypothesis = seconds / hypotheses
    return Row(
        name=f"lift {cell_line} {size}² mask, {options.steps} steps (s/hypothesis, batch of {hypotheses})",
        ours=per_hypothesis,
        reference=None,
        ratio=None,
        target=f"< {TARGET_SECONDS:.0f} s/hypothesis at {TARGET_MASK_SIZE}³ on 2 cores",
        passed=per_hypothesis < TARGET_SECONDS if size == TARGET_MASK_SIZE else None,
        peak_mib=peak,
    )
