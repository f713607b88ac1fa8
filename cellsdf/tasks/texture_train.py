"""``cellsdf texture-train``: train the pix2pixHD-style texture GAN on real image + instance-mask pairs.

The run folder gets ``last.ckpt`` (Lightning, for ``resume=true``), ``model.pt`` (what ``texture=gan`` loads),
``logs/metrics.csv`` (losses per step), ``preview.png`` (held-out real quarter | GAN | procedural) and
``manifest.json`` with the realism figures of both texture models on the held-out quarter.
"""

from __future__ import annotations

import shutil
import time
import warnings
from pathlib import Path

import numpy as np
import pytorch_lightning as pl
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from pytorch_lightning.callbacks import ModelCheckpoint
from pytorch_lightning.loggers import CSVLogger
from torch.utils.data import DataLoader

from cellsdf.benchmark.texture_eval import evaluate_texture_model
from cellsdf.errors import InputError
from cellsdf.io.atomic import atomic_path
from cellsdf.io.csvlog import RESUMED_LOG, merge_resumed_log
from cellsdf.io.folders import check_out_folder
from cellsdf.io.lock import writing_folder
from cellsdf.io.manifest import write_manifest
from cellsdf.io.stacks import read_stack_pair
from cellsdf.model.checkpoint import AtomicCheckpointIO
from cellsdf.model.progress import progress_bar
from cellsdf.texture.gan import export_texture_model
from cellsdf.texture.gan_module import TextureGAN
from cellsdf.texture.pairs import (
    CropDataset,
    read_pairs,
    shipped_pairs,
    training_region,
)
from cellsdf.texture.training import resumed_steps
from cellsdf.texture.volume_pairs import VolumeCropDataset

LAST = "last.ckpt"


def _build_model(cfg: DictConfig, intensity_scale: float, *, volume: bool = False) -> TextureGAN:
    g, d = cfg.generator, cfg.discriminator
    if d.n_scales not in (1, 2, 3):
        raise InputError("discriminator.n_scales", f"must be 1, 2 or 3, got {d.n_scales!r}")
    try:
        return TextureGAN(
            ngf=g.ngf,
            n_downsample=g.n_downsample,
            n_blocks=g.n_blocks,
            local_enhancer=g.local_enhancer,
            n_blocks_local=g.n_blocks_local,
            ndf=d.ndf,
            n_layers_d=d.n_layers,
            n_scales_d=d.n_scales,
            feature_matching=float(cfg.feature_matching),
            lr=float(cfg.lr),
            intensity_scale=intensity_scale,
            crop=cfg.crop,
            volume=volume,
        )
    except (TypeError, ValueError, RuntimeError) as err:
        raise InputError("generator/discriminator", f"cannot build the networks: {err}") from err


def _prepare_folder(cfg: DictConfig) -> Path:
    out = Path(cfg.out)
    if cfg.resume:
        return out
    out = check_out_folder(out, cfg.overwrite)
    # A fresh run must not continue the old run's log or checkpoint.
    shutil.rmtree(out / "logs", ignore_errors=True)
    (out / LAST).unlink(missing_ok=True)
    return out


def run(cfg: DictConfig) -> dict:
    """Train as configured in ``conf/texture_train.yaml``; return the run folder, model, steps and time."""
    # One run at a time writes the output, and what killed runs left there goes first.
    with writing_folder(cfg.out):
        return _run(cfg)


def _run(cfg: DictConfig) -> dict:
    crop, batch, steps, checkpoint_every = cfg.crop, cfg.batch, cfg.steps, cfg.checkpoint_every
    if cfg.dims == 3:
        images, labels = _volume_pairs(cfg)
        pairs, source = [], cfg.image
        intensity_scale = float(max(frame.max() for frame in images))
    else:
        pairs = read_pairs(shipped_pairs() if cfg.pairs is None else cfg.pairs)
        source = cfg.pairs or shipped_pairs()
        intensity_scale = float(
            max(p.image[training_region(p.image.shape, cfg.holdout)].max() for p in pairs)
        )
    if not intensity_scale > 0:
        raise InputError(source, "training images are all zero")
    model = _build_model(cfg, intensity_scale, volume=cfg.dims == 3)
    multiple = model.generator.side_multiple
    if crop % multiple:
        raise InputError(
            "crop", f"must be a multiple of {multiple} (2**n_downsample, x2 with the enhancer), got {crop}"
        )
    if cfg.dims == 3:
        dataset = VolumeCropDataset(images, labels, crop, intensity_scale, steps * batch, seed=cfg.seed)
    else:
        dataset = CropDataset(
            pairs, crop, intensity_scale, length=steps * batch, seed=cfg.seed, holdout=cfg.holdout
        )
    out = _prepare_folder(cfg)
    last = out / LAST
    if cfg.resume:
        dataset.start = resumed_steps(last, model) * batch
    out.mkdir(parents=True, exist_ok=True)

    pl.seed_everything(cfg.seed, workers=True, verbose=False)
    # Lightning counts one global step per optimiser step: a GAN iteration is two.
    callbacks = [
        ModelCheckpoint(
            out,
            "last",
            save_top_k=1,
            every_n_train_steps=2 * checkpoint_every,
            save_on_train_epoch_end=False,
            enable_version_counter=False,
        )
    ]
    if cfg.progress:
        callbacks.append(progress_bar())
    # Lightning's CSV logger deletes an existing metrics.csv, so a resumed run logs beside it and the rows are
    # merged afterwards.
    keep = cfg.resume and (out / "logs" / "metrics.csv").is_file()
    trainer = pl.Trainer(
        accelerator=cfg.accelerator,
        devices=cfg.devices,
        max_steps=2 * steps,
        max_epochs=-1,
        default_root_dir=str(out),
        callbacks=callbacks,
        logger=CSVLogger(out, name="logs", version=RESUMED_LOG if keep else ""),
        plugins=[AtomicCheckpointIO(folder=out)],
        log_every_n_steps=1,
        enable_progress_bar=bool(cfg.progress),
        enable_model_summary=bool(cfg.verbose),
    )
    loader = DataLoader(dataset, batch_size=batch, shuffle=False, num_workers=0)
    start = time.perf_counter()
    try:
        with warnings.catch_warnings():
            # Checkpoints after the optimiser steps are what resuming needs; Lightning warns about it anyway.
            warnings.filterwarnings("ignore", "Using ModelCheckpoint with manual optimization")
            # The dataset continues the crop sequence at the resumed step itself (CropDataset start).
            warnings.filterwarnings(
                "ignore", "You're resuming from a checkpoint that ended before the epoch ended"
            )
            trainer.fit(model, loader, ckpt_path=last if cfg.resume else None, weights_only=True)
    finally:
        merge_resumed_log(out / "logs", "step")
    seconds = time.perf_counter() - start
    done = trainer.global_step // 2
    with atomic_path(last) as tmp:
        trainer.save_checkpoint(tmp, weights_only=False)
    model_file = export_texture_model(model, out / "model.pt")
    if cfg.dims == 3:
        return _finish_volume_run(cfg, out, model_file, done, seconds, intensity_scale, multiple)
    figures = evaluate_texture_model(
        model_file,
        instantiate(cfg.baseline),
        pairs[0],
        out,
        side_multiple=multiple,
        seed=cfg.seed,
        holdout=cfg.holdout,
    )
    write_manifest(
        out,
        "texture-train",
        OmegaConf.to_container(cfg, resolve=True),
        cfg.seed,
        [{"file": "model.pt", "steps": done, "pairs": [p.name for p in pairs]}],
        training_seconds=round(seconds, 1),
        steps=done,
        intensity_scale=intensity_scale,
        side_multiple=multiple,
        realism={"held_out": bool(cfg.holdout), "pair": pairs[0].name, **figures},
    )
    print(f"trained {done} steps in {seconds:.0f} s; model: {model_file.resolve()}")
    print(f"  preview (held-out real | GAN | procedural): {(out / 'preview.png').resolve()}")
    for name, f in figures.items():
        print(
            f"  {name:>10}: W1 foreground {f['w1_foreground']:.2f}, background {f['w1_background']:.2f} ADU, "
            f"spectrum distance {f['spectrum_distance']:.3f}"
        )
    return {"out": out, "model": model_file, "steps": done, "seconds": seconds, "realism": figures}


def _volume_pairs(cfg: DictConfig) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Read the 3D+t training pair and keep its last ``heldout_frames`` frames out."""
    if cfg.image is None or cfg.labels is None:
        raise InputError("texture-train", "dims=3 needs image=<TZYX tif> and labels=<its labels tif>")
    image, labels = read_stack_pair(cfg.image, cfg.labels)
    if image.shape[1] < 2:
        raise InputError(cfg.image, f"has {image.shape[1]} slice per frame; a 3D pair needs at least 2")
    keep = len(image) - cfg.heldout_frames
    if keep < 1:
        raise InputError("heldout_frames", f"leaves no frame to train on ({len(image)} frames)")
    return [f.astype(np.float32) for f in image[:keep]], list(labels[:keep])


def _finish_volume_run(
    cfg: DictConfig, out: Path, model_file: Path, done: int, seconds: float, scale: float, multiple: int
) -> dict:
    """Record a 3D texture run; its realism is scored by ``cellsdf realism learned=<model.pt>``."""
    write_manifest(
        out,
        "texture-train",
        OmegaConf.to_container(cfg, resolve=True),
        cfg.seed,
        [{"file": "model.pt", "steps": done, "image": str(cfg.image), "heldout_frames": cfg.heldout_frames}],
        training_seconds=round(seconds, 1),
        steps=done,
        intensity_scale=scale,
        side_multiple=multiple,
    )
    print(f"trained {done} steps in {seconds:.0f} s; model: {model_file.resolve()}")
    print(
        f"  its realism on the {cfg.heldout_frames} held-out frames: cellsdf realism image={cfg.image} "
        f"labels={cfg.labels} heldout={cfg.heldout_frames} learned={model_file} out=<folder>"
    )
    return {"out": out, "model": model_file, "steps": done, "seconds": seconds}
