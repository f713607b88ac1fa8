"""``cellsdf generate``: new cells from random latents of a trained model (TIFFs, meshes, SDF volumes)."""

from __future__ import annotations

import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from cellsdf.errors import InputError
from cellsdf.generate.options import Request
from cellsdf.generate.run import NOT_IN_KEY, cell_name, default_parallelism, generate_cells
from cellsdf.io.lock import writing_folder
from cellsdf.options import pick


def run(cfg: DictConfig) -> dict:
    """Generate as configured in ``conf/generate.yaml``; return the output folder and the cells written."""
    if cfg.ckpt is None or cfg.out is None:
        raise InputError("generate", "needs ckpt=<model file or plat|cele|filo> and out=<folder>")
    request = Request(**{**pick(cfg, Request), "sampler": instantiate(cfg.sampler, _convert_="all")})
    config = {k: v for k, v in OmegaConf.to_container(cfg, resolve=True).items() if k not in NOT_IN_KEY}
    # Shards of one run write their own cells into the same folder at the same time: each shard has its lock.
    part = f"shard{cfg.shard}" if isinstance(cfg.shard, int) else ""
    mine = len(range(cfg.shard, request.n, cfg.num_shards)) if isinstance(cfg.shard, int) else request.n
    # The command line set torch's threads by the thread policy; generate spends them as workers first.
    workers, threads = default_parallelism(
        mine, torch.get_num_threads(), frames=request.frames, resolution=request.resolution
    )
    # Shards run side by side are the parallelism already; workers inside each would only compete.
    workers = (1 if cfg.num_shards > 1 else workers) if cfg.workers is None else cfg.workers
    with writing_folder(cfg.out, part=part):
        result = generate_cells(
            request,
            cfg.out,
            config,
            shard=cfg.shard,
            num_shards=cfg.num_shards,
            overwrite=cfg.overwrite,
            device=cfg.device,
            progress=cfg.progress,
            workers=workers,
            threads=threads,
        )
    out = result["out"]
    shards = f" (shard {cfg.shard} of {cfg.num_shards})" if cfg.num_shards > 1 else ""
    print(
        f"wrote {len(result['written'])} cell(s), skipped {len(result['skipped'])} already complete, "
        f"in {out.resolve()}{shards}"
    )
    if result["manifest"] is None:
        print("  manifest.json is written when every shard has finished")
    else:
        first = out / cell_name(0)
        print(f"  {request.n} cells complete; manifest: {result['manifest'].resolve()}")
        print(f"  picture: {(first / 'preview.png').resolve()}   meshes: {(first / 'mesh').resolve()}")
    return result
