"""``cellsdf train``: fit the auto-decoder to a prepared dataset with Lightning, configured by Hydra."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytorch_lightning as pl
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from pytorch_lightning.callbacks import RichProgressBar
from pytorch_lightning.loggers import Logger

from cellsdf.dataset.prepared import read_prepared
from cellsdf.dataset.training import simulation_recipe, training_file
from cellsdf.errors import InputError
from cellsdf.io.csvlog import RESUMED_LOG, merge_resumed_log
from cellsdf.io.manifest import write_manifest
from cellsdf.model.autodecoder import AutoDecoder
from cellsdf.model.checkpoint import check_compatible, export_model, read_checkpoint


def _loggers(cfg: DictConfig, out: Path, resuming: bool) -> list[Logger]:
    # Lightning's CSV logger deletes an existing metrics.csv, so a resumed run logs beside it and
    # merge_resumed_log appends its rows afterwards.
    keep = resuming and (out / "logs" / "metrics.csv").is_file()
    loggers = []
    for name, spec in cfg.logger.items():
        extra = {"version": RESUMED_LOG if keep else ""} if name == "csv" else {}
        loggers.append(instantiate(spec, save_dir=str(out), **extra))
    return loggers


def _epochs_done(trainer: pl.Trainer, last: Path) -> int:
    # Under ddp_spawn the epochs ran in worker processes and this process's trainer still counts 0; the last
    # checkpoint, written at the end of every epoch, holds the count.
    return int(read_checkpoint(last)["epoch"]) + 1 if last.is_file() else trainer.current_epoch


def _run_folder(cfg: DictConfig) -> Path:
    out = Path(cfg.out)
    if HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN:
        out = out / str(HydraConfig.get().job.num)
    last = out / "checkpoints" / "last.ckpt"
    if last.exists() and cfg.ckpt_path is None:
        if not cfg.overwrite:
            raise InputError(
                out, f"holds a previous run; resume with ckpt_path={last} or start again with overwrite=true"
            )
        # A fresh run must not mix its checkpoints and logs with the old run's.
        for folder in ("checkpoints", "logs"):
            shutil.rmtree(out / folder, ignore_errors=True)
    return out


def run(cfg: DictConfig) -> dict:
    """Train as configured in ``conf/train.yaml``; return the run folder, model file and timings."""
    out = _run_folder(cfg)
    out.mkdir(parents=True, exist_ok=True)
    prepare = OmegaConf.to_container(cfg.data.prepare, resolve=True)
    recipe = None
    if cfg.data.path is None:
        simulate = OmegaConf.to_container(cfg.data.simulate, resolve=True)
        recipe = simulation_recipe(
            cell_line=cfg.cellline.name, seed=cfg.seed, simulate=simulate, prepare=prepare
        )
    dataset = training_file(
        cfg.data.path,
        out,
        recipe=recipe,
        prepare=prepare,
        seed=cfg.seed,
        resuming=cfg.ckpt_path is not None,
        progress=cfg.progress,
    )
    data = read_prepared(dataset)
    pl.seed_everything(cfg.seed, workers=True, verbose=False)
    model: AutoDecoder = instantiate(
        cfg.model,
        n_sequences=data.n_sequences,
        dataset={
            "path": str(dataset.resolve()),
            "sequences": [s.name for s in data.sequences],
            "spacing": [[float(v) for v in s.spacing] for s in data.sequences],
            "frames": [int(s.frames) for s in data.sequences],
            "frame_interval": [float(s.frame_interval) for s in data.sequences],
            "scale": float(data.scale),
            # What makes the same data again on another machine (None for the user's own data).
            "recipe": recipe,
        },
        _convert_="all",
    )
    if cfg.ckpt_path is not None:
        check_compatible(cfg.ckpt_path, model)
    datamodule = instantiate(cfg.data.loader, path=dataset, seed=cfg.seed)
    checkpoints = out / "checkpoints"
    callbacks = [instantiate(spec, dirpath=checkpoints) for spec in cfg.callbacks.values()]
    if cfg.progress:
        callbacks.append(RichProgressBar())
    trainer: pl.Trainer = instantiate(
        cfg.trainer,
        default_root_dir=str(out),
        callbacks=callbacks,
        logger=_loggers(cfg, out, resuming=cfg.ckpt_path is not None),
        enable_progress_bar=bool(cfg.progress),
        enable_model_summary=bool(cfg.verbose),
        # EpochSampler shards the frames over processes itself, so Lightning must not wrap it.
        use_distributed_sampler=False,
    )
    start = time.perf_counter()
    try:
        trainer.fit(model, datamodule, ckpt_path=cfg.ckpt_path, weights_only=True)
    finally:
        if trainer.is_global_zero:
            merge_resumed_log(out / "logs", "epoch")
    seconds = time.perf_counter() - start
    epochs = _epochs_done(trainer, checkpoints / "last.ckpt")
    result = {"out": out, "dataset": dataset, "seconds": seconds, "epochs": epochs}
    if trainer.is_global_zero:
        result["model"] = export_model(model, out / "model.pt")
        write_manifest(
            out,
            "train",
            OmegaConf.to_container(cfg, resolve=True),
            cfg.seed,
            [{"file": "model.pt", "sequences": data.n_sequences, "frames": len(data.frame_t)}],
            training_seconds=round(seconds, 1),
            epochs=epochs,
            val_loss=_metric(trainer, "val/loss"),
        )
        if cfg.progress:
            print(f"\ntrained {epochs} epochs in {seconds:.0f} s; model: {result['model']}")
            print(f"checkpoints: {checkpoints.resolve()}; logs: {(out / 'logs').resolve()}")
    return result


def _metric(trainer: pl.Trainer, name: str) -> float | None:
    value = trainer.callback_metrics.get(name)
    return None if value is None else float(value)
