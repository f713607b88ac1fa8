"""Scoring a trained model's generation against held-out reference cells of its cell line.

Generated cells are the sampler's first draws, decoded on a grid whose voxel size equals the reference's, so
every descriptor compares like with like in µm; with ``max_draws`` they are the cells ``cellsdf generate``
writes, each drawn again until it passes the frame and topology checks. For a built-in line the references are
fresh simulator seeds (two disjoint draws: the reference and its floor), and the training sequences are made
again from the model's recipe for the novelty figures. For a user's own data the references are held-out
folders.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cellsdf.errors import InputError
from cellsdf.evaluate.fidelity import describe_masks, score_generation
from cellsdf.evaluate.inputs import iter_masks, list_sequences
from cellsdf.generate.cell import RejectedCell, passes_checks
from cellsdf.generate.draw import Draw, accepted, draw_accepted
from cellsdf.generate.options import Drawing
from cellsdf.generate.sampling import model_sampler
from cellsdf.geometry.grid import frame_times, grid_spacing
from cellsdf.geometry.topology import RULES
from cellsdf.model.trained import TrainedModel
from cellsdf.progress import track
from cellsdf.simulate import sequence_rng, simulate_frames
from cellsdf.simulate.lines import LINES, line_spacing

# Simulator seeds of the two reference draws, offset from the training seed so that no sequence repeats.
REFERENCE_SEEDS = (1001, 2002)


@dataclass(frozen=True)
class ScoredSets:
    """The mask sequences that a scorecard compares, with their voxel sizes (µm)."""

    generated: list[np.ndarray]
    reference: list[np.ndarray]
    reference_b: list[np.ndarray]
    training: list[np.ndarray] | None
    spacing: tuple[float, float, float]
    generated_spacing: tuple[float, float, float]
    rejected: int | None = None  # draws rejected before the generated cells passed (None: first draws)


def simulated_sequences(
    cell_line: str, *, count: int, frames: int, size: int, seed: int, progress: bool = False
) -> list[np.ndarray]:
    """Simulate sequences ``0 .. count - 1`` of ``seed`` (each independent of the others) in memory.

    Examples
    --------
    >>> [s.shape for s in simulated_sequences("plat", count=1, frames=2, size=16, seed=0)]
    [(2, 16, 16, 16)]
    """
    out = []
    for i in track(range(count), f"simulating {cell_line} (seed {seed})", show=progress):
        stream, _, _ = simulate_frames(cell_line, frames, size, sequence_rng(seed, i))
        out.append(np.stack(list(stream)))
    return out


def matching_resolution(model: TrainedModel, voxel: float) -> int:
    """Grid side over the model's cube whose voxel is ``voxel`` µm (the reference's), at least 8.

    The model's cube spans 2 / scale µm, so the side is that over the voxel size, plus one.
    """
    return max(8, int(round(2.0 / (model.scale() * voxel))) + 1)


def generated_sequences(
    model: TrainedModel,
    drawing: Drawing,
    *,
    count: int,
    frames: int,
    voxel: float,
    seed: int,
    progress: bool = False,
) -> tuple[list[np.ndarray], tuple[float, float, float], int | None]:
    """Decode generated cells ``0 .. count - 1`` as ``cellsdf generate`` seeds and checks them.

    Cells are decoded on the grid whose voxel is closest to ``voxel`` µm (:func:`matching_resolution`),
    with fragments joined as ``cellsdf generate join=`` does. With ``drawing.max_draws`` above 1, a cell with
    an empty frame, a frame touching the grid border or components that break ``drawing.rule`` is drawn again
    from its generator, as ``generate`` does (the last draw is kept if none passes).

    Returns
    -------
    tuple
        bool (T, R, R, R) masks per cell, their voxel size (z, y, x) in µm, and the draws rejected (None
        for first draws).
    """
    resolution = matching_resolution(model, voxel)
    sampler = model_sampler(drawing.sampler, model.sampler, source=str(model.file))
    times = frame_times(frames)
    out, rejected = [], 0
    for i in track(range(count), "decoding generated cells", show=progress):

        def attempt(draw: Draw) -> np.ndarray:
            decoded, log = model.decode_masks(
                draw.latent,
                times,
                resolution=resolution,
                rotation=draw.rotation,
                join=drawing.join,
                count_components=True,
            )
            masks = np.stack(list(decoded))
            if drawing.max_draws > 1 and not passes_checks(masks, log.components, drawing.rule):
                raise RejectedCell(0, "fails the frame checks", value=masks)
            return masks

        cell = accepted(
            draw_accepted(
                attempt,
                latents=model.latents,
                sampler=sampler,
                rotation=drawing.rotation,
                rng=np.random.default_rng([seed, i]),
                index=i,
                count=count,
                max_draws=drawing.max_draws,
                name=f"cell {i}",
                keep_last=True,
            )
        )
        rejected += len(cell.rejected)
        out.append(cell.value)
    return out, grid_spacing(resolution, model.scale()), rejected if drawing.max_draws > 1 else None


def folder_sequences(path: str | Path) -> tuple[list[np.ndarray], tuple[float, float, float]]:
    """Read a folder's mask sequences (anything ``cellsdf evaluate`` reads) and their common voxel size."""
    specs = list_sequences(path)
    spacings = {s.spacing for s in specs if s.spacing is not None}
    if len(spacings) != 1:
        raise ValueError(f"{path}: sequences must share one voxel size, found {sorted(spacings) or 'none'}")
    sequences = [np.stack(list(iter_masks(s))) for s in specs]
    return sequences, tuple(float(v) for v in spacings.pop())


def simulated_sets(
    model: TrainedModel,
    drawing: Drawing,
    *,
    cell_line: str,
    count: int,
    frames: int,
    size: int,
    seed: int,
    progress: bool = False,
) -> ScoredSets:
    """Make generated cells, two fresh simulator draws of a built-in line and the recipe's training cells."""
    spacing = line_spacing(cell_line, size)
    recipe = model.data.recipe
    training = None
    if recipe is not None and recipe.get("cell_line") == cell_line:
        # Every training sequence, whatever ``count``: a sampler draws near any learned code, and a copy of a
        # training cell left out would count as new.
        trained = int(recipe["simulate"]["sequences"])
        training = simulated_sequences(
            cell_line, count=trained, frames=frames, size=size, seed=int(recipe["seed"]), progress=progress
        )
    references = [
        simulated_sequences(cell_line, count=count, frames=frames, size=size, seed=s, progress=progress)
        for s in REFERENCE_SEEDS
    ]
    generated, voxels, rejected = generated_sequences(
        model, drawing, count=count, frames=frames, voxel=spacing[0], seed=seed, progress=progress
    )
    return ScoredSets(generated, *references, training, spacing, voxels, rejected)


def folder_sets(
    model: TrainedModel,
    drawing: Drawing,
    *,
    reference: str | Path,
    reference_b: str | Path,
    training: str | Path | None,
    count: int,
    frames: int,
    seed: int,
    progress: bool = False,
) -> ScoredSets:
    """Make generated cells and read a user's held-out reference folders (two disjoint parts of the data)."""
    first, spacing = folder_sequences(reference)
    second, spacing_b = folder_sequences(reference_b)
    if not np.allclose(spacing, spacing_b):
        raise ValueError(f"{reference_b}: voxel size {spacing_b} differs from {reference}'s {spacing}")
    trained = None if training is None else folder_sequences(training)[0]
    generated, voxels, rejected = generated_sequences(
        model, drawing, count=count, frames=frames, voxel=min(spacing), seed=seed, progress=progress
    )
    return ScoredSets(generated, first, second, trained, spacing, voxels, rejected)


def score_sets(sets: ScoredSets, *, rule: str, seed: int, resamples: int = 1000) -> dict:
    """Describe every set in µm with its own voxel size and score them (:func:`score_generation`)."""
    described = {
        "generated": describe_masks(sets.generated, spacing=sets.generated_spacing),
        "reference": describe_masks(sets.reference, spacing=sets.spacing),
        "reference_b": describe_masks(sets.reference_b, spacing=sets.spacing),
    }
    training = None if sets.training is None else describe_masks(sets.training, spacing=sets.spacing)
    card = score_generation(
        described["generated"],
        described["reference"],
        described["reference_b"],
        training=training,
        spacing=sets.spacing,
        rule=rule,
        resamples=resamples,
        seed=seed,
    )
    card["generated_spacing"] = [float(v) for v in sets.generated_spacing]
    if sets.rejected is not None:
        _mark_redrawn(card, sets.rejected, len(sets.generated))
    return card


def _mark_redrawn(card: dict, rejected: int, cells: int) -> None:
    """Say in the scorecard that its cells were redrawn until they passed, and how often that took."""
    for row in card["figures"]:
        if row["key"] == "topology_kept":
            # Every scored cell passed the rule by construction; the first-draw figure is the target's.
            row.update(name=row["name"] + " (after redraws: by construction)", meets=None, target=None)
    card["figures"].append(
        {
            "key": "rejected_draws",
            "name": "draws rejected before each cell passed the checks (the cells generate writes)",
            "value": 100.0 * rejected / (rejected + cells),
            "interval": None,
            "floor": None,
            "floor_interval": None,
            "unit": "% of draws",
            "good": "0 %",
            "target": None,
            "meets": None,
        }
    )


def line_rule(cell_line: str | None, rule: str | None) -> str:
    """Return the topology rule: ``rule`` when given, else the registered line's."""
    if rule is not None:
        if rule not in RULES:
            raise InputError("topology", f"choose one of {', '.join(RULES)}, got {rule!r}")
        return rule
    known = LINES.get(cell_line) if cell_line is not None else None
    if known is None or known.topology is None:
        raise InputError("topology", "pass topology=single|divide_once for cells of your own line")
    return known.topology


def model_cell_line(model: TrainedModel, cell_line: str | None) -> str | None:
    """Return the built-in line a model was trained on (its recipe), or ``cell_line`` when given."""
    if cell_line is not None:
        return cell_line
    recipe = model.data.recipe
    return None if recipe is None else recipe.get("cell_line")
