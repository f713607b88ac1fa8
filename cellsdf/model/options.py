"""The auto-decoder's hyper-parameters and their rules, for the command line and for model files alike.

A model file carries its hyper-parameters; they pass the rules the same options pass on the command line
before a model is built from them (:func:`check_hyper_parameters`). Light: no torch.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from cellsdf.errors import InputError
from cellsdf.options import NONNEG, POSITIVE, Flag, ListOf, Real, Rule, Whole

MODEL_RULES: dict[str, Rule] = {
    "decoder.latent_size": Whole(1),
    "decoder.widths": ListOf(Whole(1), least=1),
    "decoder.omega_first": POSITIVE,
    "decoder.omega_hidden": POSITIVE,
    "decoder.inject": ListOf(Whole(0)),
    "decoder.coords_every_layer": Flag(),
    "latent_std": NONNEG,
    "lr.decoder": POSITIVE,
    "lr.latent": POSITIVE,
    "lr.rotation": POSITIVE,
    "lr_step": Whole(1),
    "lr_gamma": Real(0, 1, above=True),
    "clamp": POSITIVE,
    "code_reg": NONNEG,
    "code_reg_warmup": Whole(0),
    "code_noise": NONNEG,
    "rotations": Flag(),
    "rotation_epochs": Whole(0),
    "eikonal_weight": NONNEG,
    "eikonal_fraction": Real(0, 1, above=True),
}


def check_hyper_parameters(hparams: object, source: str | Path) -> None:
    """Check a model file's hyper-parameters against :data:`MODEL_RULES`, naming the file and the field.

    Fields a file lacks are left to the model's defaults; a value present must pass its rule.

    Examples
    --------
    >>> check_hyper_parameters({"clamp": -1.0}, "m.pt")
    Traceback (most recent call last):
    ...
    cellsdf.errors.InputError: m.pt: hyper_parameters.clamp: must be a number > 0, got -1.0
    """
    if not isinstance(hparams, Mapping):
        raise InputError(source, f"hyper_parameters: must be a mapping, got {type(hparams).__name__}")
    for key, rule in MODEL_RULES.items():
        value: object = hparams
        for part in key.split("."):
            value = value.get(part, _ABSENT) if isinstance(value, Mapping) else _ABSENT
        if value is _ABSENT:
            continue
        try:
            rule(f"hyper_parameters.{key}", value)
        except InputError as err:
            raise InputError(source, str(err)) from None


_ABSENT = object()
