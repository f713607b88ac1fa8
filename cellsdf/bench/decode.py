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
from cellsdf.decode.dense import decode_dense, decode_points
from cellsdf.decode.narrowband import decode_narrowband
from cellsdf.errors import InputError
from cellsdf.model.checkpoint import load_autodecoder

TARGET_AGREEMENT = 99.9  # % of voxels equal to the dense decoder's mask
TARGET_SPEEDUP = 20.0  # dense seconds / narrow-band seconds at 256³
TARGET_PEAK_MIB = 2048.0  # peak memory of a narrow-band 256³ decode

_MEMORY = "peak resident memory of a fresh process during the decode, minus its level before it"


def decode_in_fresh_process(
    kind: str, model: str, sequence: int, t: float, sizes: Sequence[int], threads: int
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

    Returns
    -------
    list of dict
        Per size, in the order of ``sizes``: ``seconds``, ``peak_mib`` (peak resident memory during the
        decode minus the resident memory just before it), ``process_peak_mib`` (the peak itself, the
        process's imports and model included), ``points`` (points decoded) and ``mask`` (``np.packbits``
        of the mask).
    """
    torch.set_num_threads(threads)
    autodecoder = load_autodecoder(model)
    index = torch.tensor([sequence])
    latent = autodecoder.latents(index)[0].detach()
    rotation = autodecoder.rotation_matrices(index)
    rotation = None if rotation is None else rotation[0]
    # A few points first, so that one-off set-up (thread pools, kernels) is in the baseline, not the decode.
    decode_points(autodecoder.decoder, latent, t, np.zeros((64, 3)), rotation)
    results = {}
    # Largest first: memory that a decode frees can stay with the process and hide part of a later one's rise.
    for size in sorted(sizes, reverse=True):
        counts: list[int] = []
        reset_peak()
        baseline, _ = resident_mib()
        start = time.perf_counter()
        if kind == "dense":
            mask = decode_dense(autodecoder.decoder, latent, t, size, rotation) <= 0
            counts.append(size**3)
        else:
            mask = decode_narrowband(autodecoder.decoder, latent, t, size, rotation, counts=counts)
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


def _run_fresh(kind: str, model: str, sequence: int, t: float, sizes: Sequence[int]) -> list[dict]:
    return in_fresh_process(decode_in_fresh_process, kind, model, sequence, t, sizes, torch.get_num_threads())


def decode_rows(
    model: str = "plat",
    *,
    sizes: Sequence[int] = (128, 256),
    sequence: int = 0,
    t: float = 0.0,
    judge: bool = True,
) -> list[Row]:
    """Compare narrow-band and dense decoding of one frame: voxel agreement, speed and peak memory.

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
        Agreement in % of voxels per size, then seconds per frame, then peak MiB, at the largest size.
        Rows also carry ``points`` decoded (and ``reference_points``), the memory row ``process_peak_mib``.

    Raises
    ------
    InputError
        If the model cannot be loaded, or ``sequence`` or ``sizes`` do not fit.
    """
    sizes = sorted(set(sizes))
    # Check the inputs here, so that a wrong option stops with one line instead of a worker's traceback.
    n_sequences = load_autodecoder(model).latents.num_embeddings
    if not 0 <= sequence < n_sequences:
        problem = f"must be in [0, {n_sequences - 1}] for model {model}, got {sequence}"
        raise InputError("decode_sequence", problem)
    if not sizes or sizes[0] < 2:
        raise InputError("decode_sizes", f"needs grid sides >= 2, got {sizes}")
    ours = _run_fresh("narrowband", model, sequence, t, sizes)
    dense = _run_fresh("dense", model, sequence, t, sizes)
    label = f"decode {model} sequence {sequence} t={t:g}"
    rows = []
    for size, narrow, reference in zip(sizes, ours, dense, strict=True):
        # Packed bytes hold 8 voxels each (the last one padded): compare voxel by voxel.
        equal = np.unpackbits(narrow["mask"]) == np.unpackbits(reference["mask"])
        agreement = 100.0 * float(equal[: size**3].mean())
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
