"""Training rows: decoder training throughput with the folded latent, the plain way, bf16, compiled.

Every variant starts from the same weights and trains on the same batch: embedding lookup of the latents,
forward pass, clamped L1 loss, backward pass and Adam step, as in training.
"""

from __future__ import annotations

import copy
import multiprocessing
import time
from collections.abc import Callable

import torch
from torch import nn

from cellsdf.bench.measure import fastest
from cellsdf.bench.row import Row
from cellsdf.model.autodecoder import clamped_l1
from cellsdf.model.siren import SirenDecoder, plain_forward

TARGET_RATIO = 1.5  # folded latent vs plain way, training step of the reference preset

Forward = Callable[[SirenDecoder, torch.Tensor, torch.Tensor], torch.Tensor]


def training_batch(frames: int, points: int, seed: int) -> dict[str, torch.Tensor]:
    """Return a batch of ``frames`` items (one sequence each) of ``points`` points with a sphere's distances.

    Parameters
    ----------
    frames : int
        Items in the batch.
    points : int
        Points per item, uniform in [-1, 1]³; each item has its own time t in [-1, 1].
    seed : int
        Seed of the points.

    Returns
    -------
    dict
        ``sequence`` (B,), ``coords`` (B, P, 4), ``sdf`` (B, P).
    """
    generator = torch.Generator().manual_seed(seed)
    xyz = torch.rand(frames, points, 3, generator=generator) * 2 - 1
    t = torch.linspace(-1.0, 1.0, frames)[:, None, None].expand(-1, points, 1)
    return {
        "sequence": torch.arange(frames),
        "coords": torch.cat([xyz, t], dim=-1),
        "sdf": xyz.norm(dim=-1) - 0.5,
    }


def _folded(decoder: SirenDecoder, latent: torch.Tensor, coords: torch.Tensor) -> torch.Tensor:
    return decoder(latent, coords)


def training_step(
    decoder: SirenDecoder,
    latents: nn.Embedding,
    forward: Forward,
    batch: dict[str, torch.Tensor],
    *,
    clamp: float,
    bf16: bool = False,
) -> Callable[[], None]:
    """Return a function that runs one training step of ``decoder`` and ``latents`` on ``batch`` in place.

    Parameters
    ----------
    decoder : SirenDecoder
        Trained in place.
    latents : nn.Embedding
        One code per sequence, trained in place.
    forward : callable
        ``forward(decoder, latent, coords)``: the decoding under test.
    batch : dict
        From :func:`training_batch`.
    clamp : float
        Loss clamp distance.
    bf16 : bool
        Run the forward pass under CPU bf16 autocast (the loss and the Adam step stay in float32).

    Returns
    -------
    callable
        The step, taking no arguments.
    """
    optimizer = torch.optim.Adam(
        [{"params": decoder.parameters(), "lr": 1e-4}, {"params": latents.parameters(), "lr": 1e-3}]
    )

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            predicted = forward(decoder, latents(batch["sequence"]), batch["coords"])
        clamped_l1(predicted.float(), batch["sdf"], clamp).backward()
        optimizer.step()

    return step


def _compiled_seconds(
    decoder_kwargs: dict,
    state: dict,
    batch: dict[str, torch.Tensor],
    clamp: float,
    warmup: int,
    timed: int,
    rounds: int,
    threads: int,
) -> tuple[float, float, float] | str:
    """Compile the folded forward, then time steps: (compile s, s/step, peak MiB), or why it is not available.

    Runs in a worker process, which the caller stops when it takes too long.
    """
    torch.set_num_threads(threads)
    # Compile in this process: a pool of compile workers would be orphaned when the caller stops this one.
    torch._inductor.config.compile_threads = 1
    decoder = SirenDecoder(**decoder_kwargs)
    latents = nn.Embedding(len(batch["sequence"]), decoder.latent_size)
    decoder.load_state_dict(state["decoder"])
    latents.load_state_dict(state["latents"])
    compiled = torch.compile(decoder)
    step = training_step(decoder, latents, lambda _, z, x: compiled(z, x), batch, clamp=clamp)
    start = time.perf_counter()
    try:
        step()
    except torch._dynamo.exc.BackendCompilerFailed as err:  # e.g. no working C++ compiler
        return f"compiling failed: {str(err).strip().splitlines()[0]}"
    compile_seconds = time.perf_counter() - start
    seconds, peak = fastest({"compiled": step}, warmup=warmup, timed=timed, rounds=rounds)["compiled"]
    return compile_seconds, seconds, peak


def _compile_outcome(
    decoder: dict,
    state: dict,
    batch: dict[str, torch.Tensor],
    *,
    clamp: float,
    warmup: int,
    steps: int,
    rounds: int,
    limit_s: float,
) -> tuple[float, float, float] | str:
    """Run :func:`_compiled_seconds` in a worker process that is stopped after ``limit_s`` seconds."""
    args = (decoder, state, batch, clamp, warmup, steps, rounds, torch.get_num_threads())
    # A worker process, so that a compile that runs too long can be stopped.
    pool = multiprocessing.get_context("spawn").Pool(1)
    finished = False
    try:
        outcome = pool.apply_async(_compiled_seconds, args).get(timeout=limit_s)
        finished = True
    except multiprocessing.TimeoutError:
        outcome = f"took over {limit_s:g} s"
    finally:
        # A finished worker exits by itself and releases what compiling allocated; a busy one is stopped.
        (pool.close if finished else pool.terminate)()
        pool.join()
    return outcome


def training_rows(
    decoder: dict,
    *,
    frames: int,
    points: int,
    seed: int,
    clamp: float = 0.1,
    warmup: int = 2,
    steps: int = 3,
    rounds: int = 2,
    compile_limit_s: float | None = 150.0,
    judge: bool = True,
) -> list[Row]:
    """Time training steps of the decoder: folded latent vs plain way, bf16 autocast, ``torch.compile``.

    Parameters
    ----------
    decoder : dict
        Keyword arguments of :class:`~cellsdf.model.siren.SirenDecoder` (a model preset's ``decoder``).
    frames, points : int
        Batch: ``frames`` items of ``points`` points each.
    seed : int
        Seed of the weights and points.
    clamp : float
        Loss clamp distance.
    warmup, steps, rounds : int
        Untimed steps per variant, then ``rounds`` rounds of ``steps`` timed steps; the fastest round counts.
    compile_limit_s : float or None
        Seconds the ``torch.compile`` row may take, compiling included, in a worker process that is stopped
        after that; None leaves the row out.
    judge : bool
        Give the folded-latent row a verdict (the target is stated for 8 x 4096 points).

    Returns
    -------
    list of Row
        Speeds in points per second; ``ours`` is None for a variant that is not available here. The bf16 row
        also has ``sdf_max_abs_deviation`` and ``sdf_mean_abs_deviation`` from float32 on the same inputs,
        the compiled row ``compile_seconds``.
    """
    torch.manual_seed(seed)
    model = SirenDecoder(**decoder)
    codes = nn.Embedding(frames, model.latent_size)
    nn.init.normal_(codes.weight, 0.0, 0.01)
    batch = training_batch(frames, points, seed)
    with torch.no_grad():
        exact = model(codes(batch["sequence"]), batch["coords"])
        with torch.autocast("cpu", dtype=torch.bfloat16):
            deviation = (model(codes(batch["sequence"]), batch["coords"]).float() - exact).abs()
    variants = {"folded": (_folded, False), "plain": (plain_forward, False), "bf16": (_folded, True)}
    timings = fastest(
        {
            name: training_step(
                copy.deepcopy(model), copy.deepcopy(codes), forward, batch, clamp=clamp, bf16=bf16
            )
            for name, (forward, bf16) in variants.items()
        },
        warmup=warmup,
        timed=steps,
        rounds=rounds,
    )
    speed = {name: points * frames / seconds for name, (seconds, _) in timings.items()}
    label = (
        f"train step {len(model.layers)}-layer SIREN, latent {model.latent_size}, {frames}x{points} points"
    )
    ratio = speed["folded"] / speed["plain"]
    rows = [
        Row(
            name=f"{label}, folded latent (points/s)",
            ours=speed["folded"],
            reference=speed["plain"],
            ratio=ratio,
            target=f">= {TARGET_RATIO}x the plain way (8x4096 points)",
            passed=ratio >= TARGET_RATIO if judge else None,
            peak_mib=timings["folded"][1],
        ),
        Row(
            name=f"{label}, bf16 autocast (points/s)",
            ours=speed["bf16"],
            reference=speed["folded"],
            ratio=speed["bf16"] / speed["folded"],
            target=f"(vs float32: |Δsdf| max {deviation.max():.1e}, mean {deviation.mean():.1e})",
            passed=None,
            peak_mib=timings["bf16"][1],
            sdf_max_abs_deviation=float(deviation.max()),
            sdf_mean_abs_deviation=float(deviation.mean()),
        ),
    ]
    if compile_limit_s is None:
        return rows
    state = {"decoder": model.state_dict(), "latents": codes.state_dict()}
    outcome = _compile_outcome(
        decoder, state, batch, clamp=clamp, warmup=warmup, steps=steps, rounds=rounds, limit_s=compile_limit_s
    )
    name = f"{label}, torch.compile (points/s)"
    if isinstance(outcome, str):
        target = f"(not available: {outcome})"
        rows.append(Row(name, None, speed["folded"], None, target, passed=None, peak_mib=None))
    else:
        compile_seconds, seconds, peak = outcome
        compiled = points * frames / seconds
        rows.append(
            Row(
                name=name,
                ours=compiled,
                reference=speed["folded"],
                ratio=compiled / speed["folded"],
                target=f"(vs eager folded; compiling took {compile_seconds:.0f} s)",
                passed=None,
                peak_mib=peak,
                compile_seconds=compile_seconds,
            )
        )
    return rows
