"""Reconstructing a model's own training sequences from their learned codes."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from cellsdf.errors import InputError
from cellsdf.model.trained import TrainedModel
from cellsdf.reconstruct.outputs import OutputOptions, SequenceCode
from cellsdf.reconstruct.score import training_dataset, write_and_score


def reconstruct_sequences(
    model: TrainedModel,
    out: Path,
    options: OutputOptions,
    *,
    sequences: Sequence[str] | None = None,
    dataset: str | Path | None = None,
    remake_in: str | Path | None = None,
) -> tuple[dict, list[dict], Path]:
    """Decode learned sequences of ``model`` into ``out`` and score them against the training data.

    Parameters
    ----------
    model : TrainedModel
        The trained model.
    out : Path
        Output folder (checked by the caller).
    options : OutputOptions
        Resolution, frames, formats.
    sequences : sequence of str, optional
        Names of the training sequences to decode; None: all.
    dataset : str or Path, optional
        The prepared training dataset; None: the one the model records, or its recipe's data made again.
    remake_in : str or Path, optional
        Where data made again from the recipe go (see :func:`cellsdf.reconstruct.score.training_dataset`).

    Returns
    -------
    tuple
        ``metrics.json`` content, manifest items, and the dataset file used.
    """
    override = None if dataset is None else str(dataset)
    path, data = training_dataset(model, override=override, remake_in=remake_in, progress=options.progress)
    names = [s.name for s in data.sequences]
    chosen = names if sequences is None else list(sequences)
    unknown = [n for n in chosen if n not in names]
    if unknown:
        shown = ", ".join(names[:10]) + (" ..." if len(names) > 10 else "")
        raise InputError("sequences", f"unknown sequence(s) {', '.join(unknown)}; the model has {shown}")
    indices = [names.index(name) for name in chosen]
    codes = [
        SequenceCode(name, i, *model.code(i), protrusions=i) for name, i in zip(chosen, indices, strict=True)
    ]
    metrics, items = write_and_score(model, codes, path, out, options, data=data)
    return metrics, items, path
