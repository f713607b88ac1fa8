"""All the rows of ``cellsdf bench`` in one call, each reported as soon as it is measured."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial

from cellsdf.bench.decode import decode_rows, tracking_rows, untrained_row
from cellsdf.bench.descriptors import descriptors_row
from cellsdf.bench.end_to_end import benchmark_row, generate_cells_row, generate_memory_row, generate_row
from cellsdf.bench.gpu import gpu_decode_rows
from cellsdf.bench.lift import lift_row
from cellsdf.bench.measure import TARGET_SIZE
from cellsdf.bench.mesh import mesh_row
from cellsdf.bench.prepare import prepare_row, sdf_row, simulate_row
from cellsdf.bench.row import Row
from cellsdf.bench.threads import COMMANDS, threads_rows
from cellsdf.bench.training import training_rows
from cellsdf.bench.volume import volume_rows
from cellsdf.progress import track
from cellsdf.texture.models import Texture


def bench_rows(
    *,
    decoder: dict,
    texture: Texture,
    size: int = 256,
    seed: int = 0,
    cell_lines: Sequence[str] = ("plat", "cele", "filo"),
    simulate_frames: int = 5,
    prepare_cell_line: str = "plat",
    prepare_frames: int = 30,
    points_per_frame: int = 16384,
    evaluate_frames: int = 5,
    clamp: float = 0.1,
    train_frames: int = 8,
    train_points: int = 4096,
    train_warmup: int = 2,
    train_steps: int = 3,
    train_rounds: int = 2,
    compile_limit_s: float | None = 150.0,
    decode_model: str = "plat",
    decode_sequence: int = 0,
    decode_t: float = 0.0,
    decode_sizes: Sequence[int] = (128, 256),
    generate_frames: int = 30,
    generate_cells: int = 3,
    memory_frames: int = 4,
    benchmark_sequences: int = 33,
    benchmark_frames: int = 30,
    benchmark_distinct: int = 3,
    volume_frames: int = 30,
    lift_model: str = "plat",
    lift_hypotheses: int = 4,
    threads_commands: Sequence[str] = COMMANDS,
    fit_iterations: int = 100,
    on_row: Callable[[Row], None] | None = None,
    progress: bool = False,
) -> list[Row]:
    """Measure every row of ``cellsdf bench``, in the order of its table.

    Verdicts are given at ``size`` 256, the size the targets are stated for; smaller sizes scale the training
    batch, the decode grids and the lift mask down with ``size`` for a quick look.

    Parameters
    ----------
    decoder : dict
        Keyword arguments of :class:`~cellsdf.model.siren.SirenDecoder` for the training rows.
    texture : Texture
        Texture model of the benchmark row.
    size : int
        Grid side in voxels.
    seed : int
        Seed of every row (the lift row's held-out cell uses ``seed + 1``).
    cell_lines : sequence of str
        One simulate row each.
    simulate_frames : int
        Frames timed per cell line.
    prepare_cell_line : str
        Line of the signed distance and prepare rows.
    prepare_frames, points_per_frame : int
        Sequence length and points per frame of the prepare row.
    evaluate_frames : int
        Frames timed for the descriptors row.
    clamp : float
        Loss clamp distance of the training rows.
    train_frames, train_points : int
        Training batch: frames, and points per frame at size 256.
    train_warmup, train_steps, train_rounds : int
        Untimed steps per variant, timed steps per round, rounds (each variant's fastest round counts).
    compile_limit_s : float or None
        Seconds the ``torch.compile`` row may take, compiling included; None leaves it out.
    decode_model : str
        Built-in model or checkpoint of the decode, mesh and generate rows.
    decode_sequence : int
        Its training sequence whose learned latent and rotation are decoded.
    decode_t : float
        Time of the decoded frame, in [-1, 1].
    decode_sizes : sequence of int
        Decode grid sides at size 256.
    generate_frames : int
        Frames of the generated cell.
    generate_cells : int
        Cells of the timed part of a 33-cell run (with as many workers as cores).
    memory_frames : int
        Frames of the base run of the generate memory row (doubled in frames and in cells).
    benchmark_sequences, benchmark_frames, benchmark_distinct : int
        Benchmark row input: time-lapses, their frames, and the simulated sequences they are copied from.
    volume_frames : int
        Frames of the one cele cell of the 3D benchmark rows (:func:`cellsdf.bench.volume.volume_rows`).
    lift_model : str
        Built-in model (and simulated line) of the lift row.
    lift_hypotheses : int
        Hypotheses fitted as one batch.
    threads_commands : sequence of str
        Commands timed at the default threads and at one thread, quiet and loaded
        (:func:`cellsdf.bench.threads.threads_rows`); empty: no thread rows.
    fit_iterations : int
        Adam steps of the ``fit`` thread rows.
    on_row : callable, optional
        Called with each row as soon as it is measured.
    progress : bool
        A progress bar over the steps (groups of rows).

    Returns
    -------
    list of Row
        Simulate rows, signed distance, prepare, descriptors, training, decode, tracking, untrained decoder,
        decode on CUDA
        (a row saying it was not run without CUDA), mesh, generate, generate cells, generate memory,
        benchmark, lift.

    Raises
    ------
    InputError
        If the decode options do not fit the model.
    """
    judge = size == TARGET_SIZE
    rows: list[Row] = []

    def report(new: Row | list[Row]) -> None:
        for row in new if isinstance(new, list) else [new]:
            rows.append(row)
            if on_row is not None:
                on_row(row)

    steps: list[tuple[str, Callable[[], Row | list[Row]]]] = [
        (f"simulate {line}", partial(simulate_row, line, size=size, frames=simulate_frames, seed=seed))
        for line in cell_lines
    ]
    steps.append(("signed distance", partial(sdf_row, prepare_cell_line, size=size, seed=seed)))
    steps.append(
        (
            "prepare",
            partial(
                prepare_row,
                prepare_cell_line,
                size=size,
                frames=prepare_frames,
                seed=seed,
                points_per_frame=points_per_frame,
            ),
        )
    )
    steps.append(("descriptors", partial(descriptors_row, size=size, frames=evaluate_frames, seed=seed)))
    steps.append(
        (
            "training",
            partial(
                training_rows,
                decoder,
                frames=train_frames,
                # The target is stated for 4096 points per frame; smaller sizes scale the batch down.
                points=max(64, train_points * size // TARGET_SIZE),
                seed=seed,
                clamp=clamp,
                warmup=train_warmup,
                steps=train_steps,
                rounds=train_rounds,
                compile_limit_s=compile_limit_s,
                judge=judge,
            ),
        )
    )
    steps.append(
        (
            "decode",
            partial(
                decode_rows,
                model=decode_model,
                # The targets are stated for 128³ and 256³; smaller sizes scale the grids down.
                sizes=[max(8, s * size // TARGET_SIZE) for s in decode_sizes],
                sequence=decode_sequence,
                t=decode_t,
                judge=judge,
            ),
        )
    )
    steps.append(
        (
            "tracking",
            partial(
                tracking_rows,
                model=decode_model,
                size=max(8, size),
                sequence=decode_sequence,
                t=decode_t,
                judge=judge,
            ),
        )
    )
    steps.append(
        (
            "untrained decoder",
            partial(
                untrained_row,
                model=decode_model,
                size=max(8, 64 * size // TARGET_SIZE),
                seed=seed,
                judge=judge,
            ),
        )
    )
    steps.append(
        (
            "decode on CUDA",
            partial(gpu_decode_rows, model=decode_model, size=size, sequence=decode_sequence, t=decode_t),
        )
    )
    steps.append(
        (
            "mesh",
            partial(mesh_row, decode_model, size=size, sequence=decode_sequence, t=decode_t, judge=judge),
        )
    )
    steps.append(
        ("generate", partial(generate_row, decode_model, size=size, frames=generate_frames, seed=seed))
    )
    steps.append(
        (
            "generate cells",
            partial(
                generate_cells_row,
                decode_model,
                size=size,
                frames=generate_frames,
                cells=generate_cells,
                seed=seed,
            ),
        )
    )
    steps.append(
        (
            "generate memory",
            partial(
                generate_memory_row, decode_model, size=size, frames=memory_frames, seed=seed, judge=judge
            ),
        )
    )
    steps.append(
        (
            "benchmark",
            partial(
                benchmark_row,
                texture,
                sequences=benchmark_sequences,
                frames=benchmark_frames,
                size=size,
                distinct=benchmark_distinct,
                seed=seed,
            ),
        )
    )
    steps.append(("benchmark 3D", partial(volume_rows, frames=volume_frames, size=size, seed=seed)))
    lift_size = max(16, 64 * size // TARGET_SIZE)  # the target is stated for a 64² mask
    steps.append(
        (
            "lift",
            partial(
                lift_row, cell_line=lift_model, size=lift_size, hypotheses=lift_hypotheses, seed=seed + 1
            ),
        )
    )
    if threads_commands:
        steps.append(
            (
                "threads",
                partial(threads_rows, seed=seed, commands=threads_commands, fit_iterations=fit_iterations),
            )
        )
    for _, step in track(steps, "cellsdf bench", show=progress):
        report(step())
    return rows
