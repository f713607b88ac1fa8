"""Decode rows: narrow-band decoding against the dense reference, same model, latent and run.

Each decoder runs in its own freshly spawned process, and its peak memory is read from the operating system
(see :mod:`cellsdf.bench.measure`): torch allocates CPU tensors where ``tracemalloc`` does not see them.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np
import torch

from cellsdf.bench.measure import TARGET_SIZE, in_fresh_process, reset_peak, resident_mib
from cellsdf.bench.row import Row
from cellsdf.decode.dense import bf16_fast, decode_dense, decode_points
from cellsdf.decode.narrowband import decode_narrowband, decode_tracked
from cellsdf.errors import InputError
from cellsdf.geometry.surface import surface_shell
from cellsdf.model.siren import SirenDecoder
from cellsdf.model.trained import load_trained

TARGET_AGREEMENT = 99.99  # % of voxels equal to the dense decoder's mask
TARGET_BF16_AGREEMENT = 99.99  # % of voxels of the bf16 narrow-band mask equal to the float32 one
TARGET_SPEEDUP = 100.0  # dense seconds / narrow-band seconds at 256³
TARGET_PEAK_MIB = 2048.0  # peak memory of a narrow-band 256³ decode
TARGET_WORST_CASE = 1.3  # narrow-band seconds / dense seconds where no block settles
TARGET_POINTS_RATIO = 1.5  # points decoded per 256³ frame / voxels within one voxel of the surface

_MEMORY = "peak resident memory of a fresh process during the decode, minus its level before it"


def decode_in_fresh_process(
    kind: str,
    model: str,
    sequence: int,
    t: float,
    sizes: Sequence[int],
    threads: int,
    *,
    precision: str = "32",
) -> list[dict]:
    """Decode one frame of a trained model at each size, timing each decode and recording peak memory.

    Meant to run as the only task of a spawned worker, so that nothing else has shaped its memory.

    Parameters
    ----------
    kind : {'dense', 'narrowband'}
        Decoder: :func:`~cellsdf.decode.dense.decode_dense` (then ``<= 0``) or
        :func:`~cellsdf.decode.narrowband.decode_narrowband`, with their default settings.
    model : str
        Checkpoint path or built-in model name.
    sequence : int
        Training sequence whose learned latent and rotation are decoded.
    t : float
        Time in [-1, 1].
    sizes : sequence of int
        Grid sides.
    threads : int
        Torch threads, as in the parent process.
    precision : {'32', 'bf16'}
        Decoder arithmetic (:func:`~cellsdf.decode.dense.decode_points`).

    Returns
    -------
    list of dict
        Per size, in the order of ``sizes``: ``seconds``, ``peak_mib`` (peak resident memory during the
        decode minus the resident memory just before it), ``process_peak_mib`` (the peak itself, the
        process's imports and model included), ``points`` (points decoded) and ``mask`` (``np.packbits``
        of the mask).
    """
    torch.set_num_threads(threads)
    autodecoder = load_trained(model).module
    index = torch.tensor([sequence])
    latent = autodecoder.latents(index)[0].detach()
    rotation = autodecoder.rotation_matrices(index)
    rotation = None if rotation is None else rotation[0]
    # A few points first, so that one-off set-up (thread pools, kernels) is in the baseline, not the decode.
    decode_points(autodecoder.decoder, latent, t, np.zeros((64, 3)), rotation=rotation)
    results = {}
    # Largest first: memory that a decode frees can stay with the process and hide part of a later one's rise.
    for size in sorted(sizes, reverse=True):
        counts: list[int] = []
        reset_peak()
        baseline, _ = resident_mib()
        start = time.perf_counter()
        if kind == "dense":
            mask = (
                decode_dense(autodecoder.decoder, latent, t, size, rotation=rotation, precision=precision)
                <= 0
            )
            counts.append(size**3)
        else:
            mask = decode_narrowband(
                autodecoder.decoder, latent, t, size, rotation=rotation, counts=counts, precision=precision
            )
        seconds = time.perf_counter() - start
        _, peak = resident_mib()
        results[size] = {
            "seconds": seconds,
            # Resident memory can shrink between the reset and the reading before the decode: never below 0.
            "peak_mib": max(peak - baseline, 0.0),
            "process_peak_mib": peak,
            "points": sum(counts),
            "mask": np.packbits(mask),
        }
    return [results[size] for size in sizes]


def _run_fresh(
    kind: str, model: str, sequence: int, t: float, sizes: Sequence[int], precision: str = "32"
) -> list[dict]:
    threads = torch.get_num_threads()
    return in_fresh_process(
        decode_in_fresh_process, kind, model, sequence, t, sizes, threads, precision=precision
    )


def _agreement(mask: np.ndarray, reference: np.ndarray, size: int) -> float:
    """Percentage of equal voxels of two packed masks (8 voxels a byte, the last one padded)."""
    equal = np.unpackbits(mask) == np.unpackbits(reference)
    return 100.0 * float(equal[: size**3].mean())


def decode_rows(
    *,
    model: str = "plat",
    sizes: Sequence[int] = (128, 256),
    sequence: int = 0,
    t: float = 0.0,
    judge: bool = True,
) -> list[Row]:
    """Compare narrow-band and dense decoding of one frame: voxel agreement, speed, points and peak memory.

    The narrow band is also run with bf16 products (where the CPU has native bf16) against its float32 self.

    Parameters
    ----------
    model : str
        Checkpoint path or built-in model name.
    sizes : sequence of int
        Grid sides; one agreement row each, and speed and memory rows at the largest.
    sequence : int
        Training sequence whose learned latent and rotation are decoded.
    t : float
        Time in [-1, 1].
    judge : bool
        Give the rows a verdict (the targets are stated for 128³ and 256³ grids).

    Returns
    -------
    list of Row
        Per size: agreement with dense and bf16 agreement with float32 (% voxels); then at the largest size
        seconds per frame against dense and bf16 against float32, points decoded against voxels within one
        voxel of the surface (:func:`~cellsdf.geometry.surface.surface_shell`), peak MiB. Rows also carry
        ``points`` decoded (and ``reference_points``), the memory row ``process_peak_mib``.

    Raises
    ------
    InputError
        If the model cannot be loaded, or ``sequence`` or ``sizes`` do not fit.
    """
    sizes = sorted(set(sizes))
    # Check the inputs here, so that a wrong option stops with one line instead of a worker's traceback.
    n_sequences = len(load_trained(model).latents)
    if not 0 <= sequence < n_sequences:
        problem = f"must be in [0, {n_sequences - 1}] for model {model}, got {sequence}"
        raise InputError("decode_sequence", problem)
    if not sizes or sizes[0] < 2:
        raise InputError("decode_sizes", f"needs grid sides >= 2, got {sizes}")
    ours = _run_fresh("narrowband", model, sequence, t, sizes)
    dense = _run_fresh("dense", model, sequence, t, sizes)
    # bf16 where the CPU computes it natively; elsewhere it would be emulated, slower than float32.
    low = _run_fresh("narrowband", model, sequence, t, sizes, "bf16") if bf16_fast("cpu") else None
    label = f"decode {model} sequence {sequence} t={t:g}"
    rows = []
    for k, (size, narrow, reference) in enumerate(zip(sizes, ours, dense, strict=True)):
        agreement = _agreement(narrow["mask"], reference["mask"], size)
        rows.append(
            Row(
                name=f"{label}, narrow-band vs dense {size}³ (% voxels equal)",
                ours=agreement,
                reference=None,
                ratio=None,
                target=f">= {TARGET_AGREEMENT} % of voxels",
                passed=agreement >= TARGET_AGREEMENT if judge else None,
                peak_mib=narrow["peak_mib"],
                points=narrow["points"],
                reference_points=reference["points"],
            )
        )
        rows.append(_bf16_agreement_row(label, size, None if low is None else low[k], narrow, judge))
    size, narrow, reference = sizes[-1], ours[-1], dense[-1]
    speedup = reference["seconds"] / narrow["seconds"]
    rows.append(
        Row(
            name=f"{label}, narrow-band {size}³ (s/frame)",
            ours=narrow["seconds"],
            reference=reference["seconds"],
            ratio=speedup,
            target=f">= {TARGET_SPEEDUP:g}x faster than dense at {TARGET_SIZE}³",
            passed=speedup >= TARGET_SPEEDUP if judge else None,
            peak_mib=narrow["peak_mib"],
            points=narrow["points"],
            reference_points=reference["points"],
        )
    )
    bf16 = None if low is None else low[-1]
    rows.append(
        Row(
            name=f"{label}, narrow-band bf16 vs float32 {size}³ (s/frame)",
            ours=None if bf16 is None else bf16["seconds"],
            reference=narrow["seconds"],
            ratio=None if bf16 is None else narrow["seconds"] / bf16["seconds"],
            target="(bf16 products, float32 near the zero level; no native bf16 here)"
            if bf16 is None
            else "(bf16 products, float32 near the zero level)",
            passed=None,
            peak_mib=None if bf16 is None else bf16["peak_mib"],
            points=None if bf16 is None else bf16["points"],
            reference_points=narrow["points"],
        )
    )
    shell = int(surface_shell(np.unpackbits(reference["mask"])[: size**3].reshape((size,) * 3) > 0).sum())
    spent = narrow["points"] / shell if shell else None
    rows.append(
        Row(
            name=f"{label}, narrow-band {size}³ points decoded vs voxels within one voxel of the surface",
            ours=float(narrow["points"]),
            reference=float(shell),
            ratio=spent,
            target=f"<= {TARGET_POINTS_RATIO:g}x the voxels at {TARGET_SIZE}³ (voxels with an 18-neighbour "
            "of the other sign in the dense mask)",
            passed=spent <= TARGET_POINTS_RATIO if judge and spent is not None else None,
            peak_mib=None,
            points=narrow["points"],
            reference_points=shell,
        )
    )
    rows.append(
        Row(
            name=f"{label}, narrow-band {size}³ peak memory (MiB)",
            ours=narrow["peak_mib"],
            reference=reference["peak_mib"],
            # Tiny grids can fit in memory the process already holds: no rise, no ratio.
            ratio=reference["peak_mib"] / narrow["peak_mib"] if narrow["peak_mib"] > 0 else None,
            target=f"< {TARGET_PEAK_MIB:g} MiB at {TARGET_SIZE}³ ({_MEMORY}; whole process "
            f"{narrow['process_peak_mib']:.0f} MiB)",
            passed=narrow["peak_mib"] < TARGET_PEAK_MIB if judge else None,
            peak_mib=narrow["peak_mib"],
            process_peak_mib=narrow["process_peak_mib"],
        )
    )
    return rows


def _bf16_agreement_row(label: str, size: int, low: dict | None, narrow: dict, judge: bool) -> Row:
    """Agreement of the bf16 narrow-band mask with the float32 one at ``size``; no figure without bf16."""
    agreement = None if low is None else _agreement(low["mask"], narrow["mask"], size)
    return Row(
        name=f"{label}, narrow-band bf16 vs float32 {size}³ (% voxels equal)",
        ours=agreement,
        reference=None,
        ratio=None,
        target=f">= {TARGET_BF16_AGREEMENT} % of voxels"
        + ("" if low is not None else " (no native bf16 here: not run)"),
        passed=agreement >= TARGET_BF16_AGREEMENT if judge and agreement is not None else None,
        peak_mib=None if low is None else low["peak_mib"],
        points=None if low is None else low["points"],
        reference_points=narrow["points"],
    )


def tracking_rows(
    *,
    model: str = "plat",
    size: int = 256,
    sequence: int = 0,
    t: float = 0.0,
    step: float = 2.0 / 29.0,
    judge: bool = True,
) -> list[Row]:
    """Time a frame decoded by following the previous frame's surface against the full narrow band.

    The previous frame (``t - step``, one frame of a 30-frame sequence by default) is decoded narrow-band,
    untimed; then frame ``t`` both ways, float32, in this process.

    Parameters
    ----------
    model : str
        Checkpoint path or built-in model name.
    size : int
        Grid side.
    sequence : int
        Training sequence whose learned latent and rotation are decoded.
    t : float
        Time of the timed frame, in [-1, 1].
    step : float
        Time between the two frames.
    judge : bool
        Give the rows a verdict (the targets are stated for 256³).

    Returns
    -------
    list of Row
        Agreement of the tracked mask with the narrow-band one (% voxels), seconds per frame against the
        narrow band, and points decoded against the voxels within one voxel of the surface.
    """
    trained = load_trained(model)
    index = torch.tensor([sequence])
    latent = trained.module.latents(index)[0].detach()
    rotation = trained.module.rotation_matrices(index)
    rotation = None if rotation is None else rotation[0]
    decoder, clamp = trained.decoder, trained.clamp
    previous = decode_narrowband(decoder, latent, t - step, size, rotation=rotation, clamp=clamp)
    full: list[int] = []
    start = time.perf_counter()
    reference = decode_narrowband(decoder, latent, t, size, rotation=rotation, clamp=clamp, counts=full)
    plain_seconds = time.perf_counter() - start
    counts: list[int] = []
    start = time.perf_counter()
    mask = decode_tracked(decoder, latent, t, previous, rotation=rotation, clamp=clamp, counts=counts)
    seconds = time.perf_counter() - start
    label = f"decode {model} sequence {sequence} t={t:g} after t={t - step:.3g}, tracked {size}³"
    agreement = 100.0 * float((mask == reference).mean())
    shell = int(surface_shell(reference).sum())
    spent = sum(counts) / shell if shell else None
    return [
        Row(
            name=f"{label} vs narrow-band (% voxels equal)",
            ours=agreement,
            reference=None,
            ratio=None,
            target=f">= {TARGET_BF16_AGREEMENT} % of voxels",
            passed=agreement >= TARGET_BF16_AGREEMENT if judge else None,
            peak_mib=None,
            points=sum(counts),
            reference_points=sum(full),
        ),
        Row(
            name=f"{label} (s/frame)",
            ours=seconds,
            reference=plain_seconds,
            ratio=plain_seconds / seconds,
            target="(narrow band from the coarse grid as the plain way)",
            passed=None,
            peak_mib=None,
            points=sum(counts),
            reference_points=sum(full),
        ),
        Row(
            name=f"{label} points decoded vs voxels within one voxel of the surface",
            ours=float(sum(counts)),
            reference=float(shell),
            ratio=spent,
            target=f"<= {TARGET_POINTS_RATIO:g}x the voxels at {TARGET_SIZE}³",
            passed=spent <= TARGET_POINTS_RATIO if judge and spent is not None else None,
            peak_mib=None,
            points=sum(counts),
            reference_points=shell,
        ),
    ]


def untrained_row(*, model: str = "plat", size: int = 64, seed: int = 0, judge: bool = True) -> Row:
    """Time the narrow band against dense on an untrained decoder, whose field settles no block.

    A decoder of ``model``'s shape with fresh weights outputs values within the clamp everywhere, as the noisy
    field of a briefly trained model does in places: the narrow band then refines every block down to every
    voxel, its worst case, and must stay close to the dense decode (1 + 1/8 + 1/64 ... of its points).

    Parameters
    ----------
    model : str
        Checkpoint path or built-in model name whose decoder shape is used.
    size : int
        Grid side.
    seed : int
        Seed of the fresh weights and code.
    judge : bool
        Give the row a verdict.

    Returns
    -------
    Row
        Seconds per frame of the narrow band against dense, points of both.
    """
    shape = load_trained(model).module.hparams.decoder
    torch.manual_seed(seed)
    decoder = SirenDecoder(**shape)
    latent = torch.randn(decoder.latent_size) * 0.1
    counts: list[int] = []
    start = time.perf_counter()
    mask = decode_narrowband(decoder, latent, 0.0, size, counts=counts)
    seconds = time.perf_counter() - start
    start = time.perf_counter()
    dense = decode_dense(decoder, latent, 0.0, size) <= 0
    dense_seconds = time.perf_counter() - start
    slower = seconds / dense_seconds
    agreement = 100.0 * float((mask == dense).mean())
    return Row(
        name=f"decode untrained {model}-shaped decoder, narrow-band vs dense {size}³ (s/frame)",
        ours=seconds,
        reference=dense_seconds,
        ratio=dense_seconds / seconds,
        target=f"<= {TARGET_WORST_CASE:g}x the dense time ({agreement:.3f} % voxels equal)",
        passed=slower <= TARGET_WORST_CASE if judge else None,
        peak_mib=None,
        points=sum(counts),
        reference_points=size**3,
    )
