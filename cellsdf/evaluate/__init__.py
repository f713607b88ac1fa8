"""Evaluation of generated cells against real ones, and of reconstructions against their targets.

Modules: ``descriptors`` (per-frame shape measures; meshes come from :mod:`cellsdf.geometry.surface`),
``temporal`` (growth, smoothness, divisions), ``distributions`` (Wasserstein, KS), ``twosample``
(sequence-level 1-NNA, coverage, MMD² with bootstrap intervals), ``shapes`` (point-cloud MMD, coverage,
1-NNA), ``topology`` (how a set of sequences keeps its line's rule), ``novelty`` (copies of training
cells), ``fidelity`` (the scorecard: :func:`score_generation`, each figure beside its floor),
``reconstruction`` (IoU, Dice, Chamfer, 95% Hausdorff), ``inputs``, ``sequence``, ``spacing``, ``metrics``,
``figures``, ``report``, ``pipeline`` (:func:`evaluate_folders`, what ``cellsdf evaluate`` runs).
"""
