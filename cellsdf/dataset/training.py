"""The data a model trains on: a prepared file, masks prepared on the fly, or a simulated cell line.

A simulated line is recorded as a recipe (line, seed, simulation and preparation settings) in the trained
model, so that the same data can be made again on any machine.
"""

from __future__ import annotations

from pathlib import Path

from cellsdf.dataset.prepare import prepare_source
from cellsdf.dataset.prepared import is_prepared, iter_eval_masks, read_index
from cellsdf.dataset.sources import SequenceLoader, scan_sequences
from cellsdf.errors import InputError
from cellsdf.geometry.topology import RULES, component_counts, infer_rule
from cellsdf.simulate.lines import get_line, line_spacing
from cellsdf.simulate.write import simulate_to_folder


def simulation_recipe(*, cell_line: str, seed: int, simulate: dict, prepare: dict) -> dict:
    """Return the recipe of a simulated training set: everything that decides its files.

    Examples
    --------
    >>> r = simulation_recipe(cell_line="plat", seed=0, simulate={"sequences": 2, "frames": 3, "size": 32},
    ...                       prepare={"eval_size": 16})
    >>> r["simulate"]["spacing"], r["simulate"]["frame_interval"]
    ([0.8, 0.8, 0.8], 870.0)
    """
    return {
        "cell_line": cell_line,
        "seed": int(seed),
        "simulate": {
            **simulate,
            "spacing": list(line_spacing(cell_line, int(simulate["size"]))),
            "frame_interval": get_line(cell_line).interval(int(simulate["frames"])),
        },
        "prepare": dict(prepare),
    }


def make_from_recipe(
    recipe: dict, folder: str | Path, *, overwrite: bool = False, progress: bool = False
) -> Path:
    """Simulate and prepare a recipe's data into ``folder`` (``simulated/`` and ``dataset.h5``).

    Parameters
    ----------
    recipe : dict
        From :func:`simulation_recipe` (as stored in a trained model).
    folder : str or Path
        Where the TIFFs and the prepared file go.
    overwrite, progress : bool
        Replace existing files; show progress bars.

    Returns
    -------
    Path
        The prepared dataset.
    """
    folder = Path(folder)
    simulate = recipe["simulate"]
    simulate_to_folder(
        recipe["cell_line"],
        folder / "simulated",
        sequences=int(simulate["sequences"]),
        frames=int(simulate["frames"]),
        size=int(simulate["size"]),
        spacing=tuple(simulate["spacing"]),
        frame_interval=float(simulate["frame_interval"]),
        seed=int(recipe["seed"]),
        overwrite=overwrite,
        progress=progress,
    )
    return prepare_source(
        folder / "simulated",
        folder / "dataset.h5",
        **recipe["prepare"],
        seed=int(recipe["seed"]),
        overwrite=overwrite,
        progress=progress,
    )


def training_file(
    source: str | Path | None,
    folder: str | Path,
    *,
    recipe: dict | None,
    prepare: dict,
    seed: int,
    resuming: bool = False,
    progress: bool = False,
) -> Path:
    """Return the prepared dataset to train on, making it in ``folder`` when needed.

    Parameters
    ----------
    source : str or Path or None
        A prepared dataset (used as it is), masks (prepared into ``folder/dataset.h5``), or None to make
        ``recipe``'s simulated data.
    folder : str or Path
        The run folder.
    recipe : dict or None
        Simulated data (:func:`simulation_recipe`), used when ``source`` is None.
    prepare : dict
        Preparation settings for masks (``conf/prepare/default.yaml``).
    seed : int
        Sampling seed.
    resuming : bool
        A resumed run reuses ``folder/dataset.h5``, made by the same deterministic steps.
    progress : bool
        Show progress bars.

    Returns
    -------
    Path
    """
    folder = Path(folder)
    if source is not None and is_prepared(Path(source)):
        return Path(source)
    prepared = folder / "dataset.h5"
    if resuming and prepared.is_file():
        return prepared
    if source is None:
        if recipe is None:
            raise ValueError("training data need a source or a simulation recipe")
        return make_from_recipe(recipe, folder, overwrite=True, progress=progress)
    return prepare_source(
        source, prepared, **prepare, seed=seed, overwrite=True, progress=progress, report=True
    )


# The preparation options that say how masks are read, as opposed to how they become samples.
_READING = ("label", "threshold", "components", "spacing", "link", "border", "axes")


def training_masks(source: str | Path | None, folder: str | Path, *, prepare: dict) -> list[SequenceLoader]:
    """Return the masks a training set was prepared from (:func:`training_file`), read as it read them.

    Parameters
    ----------
    source : str or Path or None
        The training data as given (None: the simulated data in ``folder/simulated``).
    folder : str or Path
        The run folder.
    prepare : dict
        Preparation settings (those that say how masks are read are used).

    Raises
    ------
    InputError
        If ``source`` is a prepared file, which keeps samples, not masks.
    """
    path = Path(folder) / "simulated" if source is None else Path(source)
    if is_prepared(path):
        raise InputError(
            path, "is a prepared dataset; measuring protrusions needs the masks it was made from"
        )
    reading = {key: prepare[key] for key in _READING if key in prepare}
    return scan_sequences(path, **reading).loaders


def line_topology(dataset: str | Path, *, recipe: dict | None, stated: str | None) -> str | None:
    """Return the topology rule a model's cells keep: its line's, the stated one, or the one its data keep.

    Parameters
    ----------
    dataset : str or Path
        The prepared dataset the model trains on (its evaluation masks are counted for ``auto``).
    recipe : dict or None
        A simulated line's recipe: the registered line's rule, whatever ``stated`` says.
    stated : str or None
        For the user's own line (``cellline=own``): ``auto`` (learned from the data,
        :func:`cellsdf.geometry.topology.infer_rule`), ``none``, or a rule; None for data that name no line.

    Returns
    -------
    str or None

    Raises
    ------
    InputError
        For a stated value that is not a rule, ``auto`` or ``none``.
    """
    if recipe is not None:
        return get_line(recipe["cell_line"]).topology
    if stated is None or stated == "none":
        return None
    if stated != "auto":
        if stated not in RULES:
            raise InputError(
                "cellline.topology", f"choose one of auto, none, {', '.join(RULES)}, got {stated!r}"
            )
        return stated
    index = read_index(dataset)
    counts = [component_counts(iter_eval_masks(dataset, index.rows(s))) for s in range(len(index.names))]
    return infer_rule([c.tolist() for c in counts])
