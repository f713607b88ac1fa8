"""GPU rows: one frame decoded on CUDA against the same frame on this machine's CPU, when there is a GPU.

Without CUDA the rows say so and carry no figures; ``cellsdf bench`` runs them everywhere, and on a machine
with a GPU they are the short check of ``device=cuda``.
"""

from __future__ import annotations

import time

import numpy as np
import torch

from cellsdf.bench.row import Row
from cellsdf.decode.dense import bf16_fast, decode_dense
from cellsdf.decode.narrowband import decode_narrowband
from cellsdf.model.trained import load_trained

GPU_CHUNK = 1 << 18  # points per decoder call on a GPU: enough to fill it, small enough for any card


def _timed(work, device: torch.device) -> tuple[float, np.ndarray]:
    """Run ``work`` (returning a mask) once, waiting for the device; return seconds and the mask."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    mask = work()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - start, mask


def gpu_decode_rows(*, model: str = "plat", size: int = 256, sequence: int = 0, t: float = 0.0) -> list[Row]:
    """Time one frame decoded on CUDA (narrow band float32 and bf16, dense) against the CPU narrow band.

    Parameters
    ----------
    model : str
        Checkpoint path or built-in model name.
    size : int
        Grid side.
    sequence : int
        Training sequence whose learned latent and rotation are decoded.
    t : float
        Time in [-1, 1].

    Returns
    -------
    list of Row
        Without CUDA, one row that says so. Otherwise: narrow band on the GPU (s/frame) against the CPU
        narrow band, with the masks' agreement in the target text; bf16 on the GPU against float32 on the GPU;
        dense on the GPU against the GPU narrow band.

    Examples
    --------
    >>> rows = gpu_decode_rows(size=16)
    >>> torch.cuda.is_available() or rows[0].ours is None
    True
    """
    label = f"decode {model} sequence {sequence} t={t:g} {size}³ on CUDA"
    if not torch.cuda.is_available():
        return [Row(f"{label} (s/frame)", None, None, None, "(no CUDA device here: not run)", None, None)]
    device = torch.device("cuda")
    autodecoder = load_trained(model).module
    index = torch.tensor([sequence])
    latent = autodecoder.latents(index)[0].detach()
    rotation = autodecoder.rotation_matrices(index)
    rotation = None if rotation is None else rotation[0].detach()
    decoder = autodecoder.decoder
    cpu_seconds, cpu_mask = _timed(
        lambda: decode_narrowband(decoder, latent, t, size, rotation=rotation), torch.device("cpu")
    )
    decoder = decoder.to(device)
    latent = latent.to(device)

    def narrow(precision: str) -> np.ndarray:
        return decode_narrowband(
            decoder, latent, t, size, rotation=rotation, chunk=GPU_CHUNK, precision=precision
        )

    narrow("32")  # CUDA context, kernels and caches, outside the timing
    seconds, mask = _timed(lambda: narrow("32"), device)
    agreement = 100.0 * float((mask == cpu_mask).mean())
    rows = [
        Row(
            f"{label}: narrow band, GPU vs CPU (s/frame)",
            seconds,
            cpu_seconds,
            cpu_seconds / seconds,
            f"({agreement:.4f} % of voxels equal to the CPU mask)",
            None,
            torch.cuda.max_memory_allocated(device) / 2**20,
        )
    ]
    if bf16_fast(device):
        narrow("bf16")
        low_seconds, low_mask = _timed(lambda: narrow("bf16"), device)
        low_agreement = 100.0 * float((low_mask == mask).mean())
        rows.append(
            Row(
                f"{label}: narrow band bf16 vs float32 on the GPU (s/frame)",
                low_seconds,
                seconds,
                seconds / low_seconds,
                f"({low_agreement:.4f} % of voxels equal to float32)",
                None,
                None,
            )
        )
    dense_seconds, _ = _timed(
        lambda: decode_dense(decoder, latent, t, size, rotation=rotation, chunk=GPU_CHUNK) <= 0, device
    )
    rows.append(
        Row(
            f"{label}: narrow band vs dense on the GPU (s/frame)",
            seconds,
            dense_seconds,
            dense_seconds / seconds,
            "(the plain way on the same GPU)",
            None,
            None,
        )
    )
    return rows
