"""Evaluation of generated cells against real ones, and of reconstructions against their targets.

Modules: ``descriptors`` (per-frame shape measures; meshes come from :mod:`cellsdf.geometry.surface`),
``temporal`` (growth, smoothness, divisions), ``distributions`` (Wasserstein, KS), ``shapes`` (MMD, coverage,
1-NNA), ``reconstruction`` (IoU, Dice, Chamfer, 95% Hausdorff), ``inputs``, ``sequence``, ``spacing``,
``metrics``, ``figures``, ``report``, ``pipeline`` (:func:`evaluate_folders`, what ``cellsdf evaluate`` runs).
"""

from cellsdf.evaluate.descriptors import DESCRIPTORS, frame_descriptors
from cellsdf.evaluate.pipeline import evaluate_folders
from cellsdf.evaluate.reconstruction import reconstruction_metrics

__all__ = ["DESCRIPTORS", "evaluate_folders", "frame_descriptors", "reconstruction_metrics"]
