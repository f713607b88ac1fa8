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
from pytorch_lightning.callbacks import ModelCheckpoint, RichProgressBar
from pytorch_lightning.loggers import CSVLogger, Logger

from cellsdf.dataset.datamodule import PreparedDataModule
from cellsdf.dataset.prepared import is_prepared, read_prepared
from cellsdf.errors import InputError
from cellsdf.io.csvlog import RESUMED_LOG, merge_resumed_log
from cellsdf.io.manifest import write_manifest
from cellsdf.model.autodecoder import AutoDecoder
from cellsdf.model.checkpoint import check_compatible, export_model, read_checkpoint
from cellsdf.tasks.prepare import prepare_with
from cellsdf.tasks.simulate import scaled_spacing, simulate_to_folder


def training_data(cfg: DictConfig, out: Path) -> Path:
    """Return the prepared dataset to train on, simulating and preparing it into ``out`` when needed.

    Parameters
    ----------
    cfg : DictConfig
        The train config (``data``, ``cellline``, ``seed``, ``progress``).
    out : Path
        Run folder; on-the-fly data go to ``out/simulated`` and ``out/dataset.h5``.

    Returns
    -------
    Path
        A prepared-dataset file.
    """
    data = cfg.data
    if data.path is not None and is_prepared(Path(data.path)):
        return Path(data.path)
    prepared = out / "dataset.h5"
    if cfg.ckpt_path is not None and prepared.is_file():
        return prepared  # resuming: the run's own data, made by the same deterministic steps
    if data.path is None:
        source = out / "simulated"
        simulate_to_folder(
            cfg.cellline.name,
            source,
            sequences=data.simulate.sequences,
            frames=data.simulate.frames,
            size=data.simulate.size,
            spacing=scaled_spacing(cfg.cellline.spacing_at_256, data.simulate.size),
            frame_interval=float(cfg.cellline.frame_interval),
            seed=cfg.seed,
            overwrite=True,
            progress=cfg.progress,
        )
    else:
        source = Path(data.path)
    return prepare_with(source, prepared, data.prepare, cfg.seed, overwrite=True, progress=cfg.progress)


def _loggers(out: Path, resuming: bool) -> list[Logger]:
    # Lightning's CSV logger deletes an existing metrics.csv, so a resumed run logs beside it and
    # merge_resumed_log appends its rows afterwards.
    keep = resuming and (out / "logs" / "metrics.csv").is_file()
    loggers: list[Logger] = [CSVLogger(out, name="logs", version=RESUMED_LOG if keep else "")]
    try:
        from pytorch_lightning.loggers import TensorBoardLogger

        loggers.append(TensorBoardLogger(out, name="logs", version="tensorboard"))
    except ModuleNotFoundError:
        pass  # TensorBoard is optional; the CSV log is always written
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
    dataset = training_data(cfg, out)
    data = read_prepared(dataset)
    pl.seed_everything(cfg.seed, workers=True, verbose=False)
    model_cfg = OmegaConf.to_container(cfg.model, resolve=True)
    model = AutoDecoder(
        n_sequences=data.n_sequences,
        **model_cfg,
        dataset={
            "path": str(dataset.resolve()),
            "sequences": [s.name for s in data.sequences],
            "spacing": [[float(v) for v in s.spacing] for s in data.sequences],
            "frames": [int(s.frames) for s in data.sequences],
            "frame_interval": [float(s.frame_interval) for s in data.sequences],
            "scale": float(data.scale),
            # What re-makes the data on another machine: the simulation and preparation, when simulated.
            "recipe": _recipe(cfg),
        },
    )
    if cfg.ckpt_path is not None:
        check_compatible(cfg.ckpt_path, model)
    d = cfg.data
    datamodule = PreparedDataModule(
        dataset, d.batch_size, d.points_per_item, d.repeats, d.num_workers, seed=cfg.seed
    )
    checkpoints = out / "checkpoints"
    callbacks = [
        # Without a monitored metric, the one kept checkpoint is the newest: last.ckpt, every epoch.
        # (save_last=True would only write it in epochs that also save a top-k checkpoint.)
        ModelCheckpoint(
            checkpoints, "last", save_top_k=1, save_on_train_epoch_end=True, enable_version_counter=False
        ),
        ModelCheckpoint(
            checkpoints, "best", monitor="val/loss", mode="min", save_top_k=1, enable_version_counter=False
        ),
    ]
    if cfg.progress:
        callbacks.append(RichProgressBar())
    trainer: pl.Trainer = instantiate(
        cfg.trainer,
        default_root_dir=str(out),
        callbacks=callbacks,
        logger=_loggers(out, resuming=cfg.ckpt_path is not None),
        enable_progress_bar=bool(cfg.progress),
        enable_model_summary=bool(cfg.progress),
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


def _recipe(cfg: DictConfig) -> dict | None:
    if cfg.data.path is not None:
        return None
    simulate = OmegaConf.to_container(cfg.data.simulate, resolve=True)
    return {
        "cell_line": cfg.cellline.name,
        "seed": int(cfg.seed),
        "simulate": {
            **simulate,
            "spacing": list(scaled_spacing(cfg.cellline.spacing_at_256, simulate["size"])),
            "frame_interval": float(cfg.cellline.frame_interval),
        },
        "prepare": OmegaConf.to_container(cfg.data.prepare, resolve=True),
    }


def _metric(trainer: pl.Trainer, name: str) -> float | None:
    value = trainer.callback_metrics.get(name)
    return None if value is None else float(value)
