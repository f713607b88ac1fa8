"""How the segmenter trains: its options, each stated once with its rule.

Light on purpose (no torch): the command line checks options against these before the network is loaded.
"""

from __future__ import annotations

from dataclasses import dataclass

from cellsdf.options import POSITIVE, SEED_MAX, OneOf, Whole, check_fields, option

PRECISIONS = ("auto", "32-true", "32", "bf16-mixed", "16-mixed")


@dataclass(frozen=True, kw_only=True)
class TrainingOptions:
    """How the segmenter trains.

    Attributes
    ----------
    steps : int
        Optimiser steps.
    batch : int
        Patches per step.
    patch : int
        Patch side along the fine axes; a coarse axis (the z of a confocal stack) is taken whole, up to it.
    width : int
        Filters of the U-Net's first level.
    lr : float
        Adam's initial learning rate.
    seed : int
        Seeds the weights and the patches.
    precision : str
        Lightning precision (``32-true``, ``bf16-mixed``, ...); ``auto``: bf16-mixed where the hardware
        multiplies bf16 natively (:func:`cellsdf.model.precision.training_precision`), except 3D on a CPU.
    accelerator : str
        Lightning accelerator (``cpu``, ``gpu``).
    """

    steps: int = option(600, Whole(1))
    batch: int = option(8, Whole(1))
    patch: int = option(128, Whole(16, 1024))
    width: int = option(16, Whole(4, 256))
    lr: float = option(1e-3, POSITIVE)
    seed: int = option(0, Whole(0, SEED_MAX))
    precision: str = option("auto", OneOf(PRECISIONS))
    accelerator: str = option("cpu", OneOf(("cpu", "gpu", "cuda", "auto")))

    def __post_init__(self) -> None:
        check_fields(self)
