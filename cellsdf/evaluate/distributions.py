"""How far the distribution of one descriptor over generated cells lies from that over real cells."""

from __future__ import annotations

import numpy as np
from scipy import stats


def distribution_distances(real: np.ndarray, generated: np.ndarray) -> dict[str, float | int | None]:
    """Compare two samples of one descriptor.

    Parameters
    ----------
    real, generated : np.ndarray
        Values (any length; non-finite values are ignored).

    Returns
    -------
    dict
        ``wasserstein`` (1-Wasserstein distance, in the descriptor's unit); ``wasserstein_normalised``
        (divided by the standard deviation of the real values, or of both samples pooled when the real
        values do not vary; 0 when neither varies and they agree); ``ks`` and ``ks_pvalue`` (two-sample
        Kolmogorov-Smirnov); the means and standard deviations; sample sizes. Distances are None when a
        sample is empty.
    """
    real = np.asarray(real, dtype=np.float64)
    generated = np.asarray(generated, dtype=np.float64)
    real, generated = real[np.isfinite(real)], generated[np.isfinite(generated)]
    out: dict[str, float | int | None] = {
        "n_real": len(real),
        "n_generated": len(generated),
        "mean_real": float(real.mean()) if len(real) else None,
        "mean_generated": float(generated.mean()) if len(generated) else None,
        "std_real": float(real.std()) if len(real) else None,
        "std_generated": float(generated.std()) if len(generated) else None,
    }
    if not len(real) or not len(generated):
        return {**out, "wasserstein": None, "wasserstein_normalised": None, "ks": None, "ks_pvalue": None}
    distance = float(stats.wasserstein_distance(real, generated))
    spread = real.std() or np.concatenate([real, generated]).std()
    ks = stats.ks_2samp(real, generated)
    return {
        **out,
        "wasserstein": distance,
        "wasserstein_normalised": float(distance / spread) if spread > 0 else 0.0,
        "ks": float(ks.statistic),
        "ks_pvalue": float(ks.pvalue),
    }
