"""Topology over a set of sequences: the share that keeps a cell line's rule, and fragments per frame.

The rules themselves (:mod:`cellsdf.geometry.topology`) sit below every stage that checks a cell.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from cellsdf.geometry.topology import check_rule, fragments_per_frame


def topology_summary(counts: Sequence[Sequence[int]], rule: str) -> dict[str, object]:
    """Share of sequences that keep the rule, and fragments per frame, over a set of sequences.

    Parameters
    ----------
    counts : sequence of sequence of int
        Components per frame of each sequence.
    rule : str
        ``single`` or ``divide_once``.

    Returns
    -------
    dict
        ``rule``, ``kept`` (fraction of sequences keeping it), ``fragments_per_frame`` (mean over all frames),
        ``sequences`` (per sequence: ``keeps``, ``first_break``, ``reason``, ``counts``).

    Examples
    --------
    >>> topology_summary([[1, 1], [1, 2]], "single")["kept"]
    0.5
    """
    rows = [{**check_rule(c, rule), "counts": [int(x) for x in c]} for c in counts]
    frames = [f for c in counts for f in fragments_per_frame(c, rule)]
    return {
        "rule": rule,
        "kept": float(np.mean([r["keeps"] for r in rows])) if rows else float("nan"),
        "fragments_per_frame": float(np.mean(frames)) if frames else float("nan"),
        "sequences": rows,
    }
