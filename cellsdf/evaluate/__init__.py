"""Evaluation of generated cells against real ones, and of reconstructions against their targets.

Modules: ``descriptors`` (per-frame shape measures; meshes come from :mod:`cellsdf.geometry.surface`),
``temporal`` (growth, smoothness, divisions), ``distributions`` (Wasserstein, KS), ``twosample``
(sequence-level 1-NNA, coverage, MMD² with bootstrap intervals), ``shapes`` (point-cloud MMD, coverage,
1-NNA), ``topology`` (how a set of sequences keeps its line's rule), ``novelty`` (copies of training
cells), ``fidelity`` (the scorecard: :func:`score_generation`, each figure beside its floor),
``reconstruction`` (IoU, Dice, Chamfer, 95% Hausdorff), ``inputs``, ``sequence``, ``spacing``, ``metrics``,
``figures``, ``report``, ``pipeline`` (:func:`evaluate_folders`, what ``cellsdf evaluate`` runs).
"""

from cellsdf.evaluate.descriptors import DESCRIPTORS, frame_descriptors
from cellsdf.evaluate.fidelity import describe_masks, score_generation, scorecard_table
from cellsdf.evaluate.pipeline import evaluate_folders
from cellsdf.evaluate.reconstruction import reconstruction_metrics
from cellsdf.evaluate.topology import topology_summary

__all__ = [
    "DESCRIPTORS",
    "describe_masks",
    "evaluate_folders",
    "frame_descriptors",
    "reconstruction_metrics",
    "score_generation",
    "scorecard_table",
    "topology_summary",
]
