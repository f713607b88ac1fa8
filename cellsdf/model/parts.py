"""A composed model's second part: its training cells' protrusions measured and stored in its model file."""

from __future__ import annotations

from pathlib import Path

from cellsdf.dataset.prepared import read_index
from cellsdf.dataset.protrusions import measure_tracks
from cellsdf.dataset.training import training_masks
from cellsdf.model.checkpoint import record_protrusions
from cellsdf.model.protrusions import Noise, ProtrusionModel


def attach_protrusions(
    model: str | Path,
    dataset: str | Path,
    *,
    source: str | Path | None,
    folder: str | Path,
    prepare: dict,
    reach: float,
    gate: float,
    blend: float,
    noise: dict,
    progress: bool = False,
) -> ProtrusionModel:
    """Measure the protrusion tracks of a body model's training cells and store them in its model file.

    Parameters
    ----------
    model : str or Path
        The ``model.pt`` whose auto-decoder learned the bodies (``prepare['body_radius']`` set).
    dataset : str or Path
        The prepared dataset it trained on (its centres, times and scale place the tracks).
    source, folder, prepare
        Where the masks are, as :func:`cellsdf.dataset.training.training_masks` finds them.
    reach, gate : float
        Least reach beyond the body and largest move of a base between frames, µm.
    blend : float
        Width of the smooth union of body and tubes, µm.
    noise : dict
        :class:`~cellsdf.model.protrusions.Noise` fields.
    progress : bool
        Show a progress bar.

    Returns
    -------
    ProtrusionModel
        What was stored.
    """
    radius = float(prepare["body_radius"])
    sequences = measure_tracks(
        training_masks(source, folder, prepare=prepare),
        dataset,
        radius=radius,
        reach=reach,
        gate=gate,
        progress=progress,
    )
    settings = {
        "radius": radius,
        "reach": float(reach),
        "gate": float(gate),
        "blend": float(blend) * read_index(dataset).scale,
        "noise": vars(Noise(**noise)),
    }
    parts = ProtrusionModel(sequences, settings)
    record_protrusions(model, parts.to_file())
    return parts
