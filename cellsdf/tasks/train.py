"""``cellsdf train``: fit the auto-decoder to a prepared dataset with Lightning, configured by Hydra."""

from __future__ import annotations

import contextlib
import shutil
import sys
import time
from pathlib import Path

import pytorch_lightning as pl
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from pytorch_lightning.callbacks import Timer
from pytorch_lightning.loggers import Logger
from pytorch_lightning.utilities.rank_zero import rank_zero_only

from cellsdf.dataset.prepared import read_prepared
from cellsdf.dataset.training import line_topology, simulation_recipe, training_file
from cellsdf.errors import InputError
from cellsdf.io.lock import writing_folder
from cellsdf.io.manifest import write_manifest
from cellsdf.model.autodecoder import AutoDecoder
from cellsdf.model.callbacks import FinalValidation
from cellsdf.model.checkpoint import AtomicCheckpointIO, check_compatible, export_model, read_checkpoint
from cellsdf.model.parts import attach_protrusions
from cellsdf.model.precision import training_precision
from cellsdf.model.progress import progress_bar


def _loggers(cfg: DictConfig, out: Path, resume_epoch: int | None) -> list[Logger]:
    # The CSV log of a resumed run keeps the rows of the epochs before the one it resumes at.
    loggers = []
    for name, spec in cfg.logger.items():
        extra = {"resume_epoch": resume_epoch} if name == "csv" else {}
        loggers.append(instantiate(spec, save_dir=str(out), **extra))
    return loggers


def _epochs_in(checkpoint: dict) -> int:
    # Checkpoints are written at the end of an epoch and count from 0.
    return int(checkpoint["epoch"]) + 1


def _epochs_done(trainer: pl.Trainer, last: Path) -> int:
    # Under ddp_spawn the epochs ran in worker processes and this process's trainer still counts 0; the last
    # checkpoint, written at the end of every epoch, holds the count.
    return _epochs_in(read_checkpoint(last)) if last.is_file() else trainer.current_epoch


def _run_folder(cfg: DictConfig) -> Path:
    out = Path(cfg.out)
    if HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN:
        out = out / str(HydraConfig.get().job.num)
    return out


def _clear_previous_run(cfg: DictConfig, out: Path) -> None:
    last = out / "checkpoints" / "last.ckpt"
    if last.exists() and cfg.ckpt_path is None:
        if not cfg.overwrite:
            raise InputError(
                out, f"holds a previous run; resume with ckpt_path={last} or start again with overwrite=true"
            )
        # A fresh run must not mix its checkpoints and logs with the old run's.
        for folder in ("checkpoints", "logs"):
            shutil.rmtree(out / folder, ignore_errors=True)


def _cell_line_on_command_line(cfg: DictConfig) -> str | None:
    """Return the cell line the user named with ``cellline=`` (None when it is the default)."""
    if not HydraConfig.initialized():
        return None
    keys = {o.split("=", 1)[0].lstrip("+~") for o in HydraConfig.get().overrides.task}
    return cfg.cellline.name if "cellline" in keys else None


def _resumed_data(cfg: DictConfig, record: dict) -> tuple[str | None, dict | None]:
    """Return the dataset and recipe of the run that ``ckpt_path`` resumes, as its model recorded them."""
    recipe = record.get("recipe")
    trained_on = recipe["cell_line"] if recipe else None
    chosen = _cell_line_on_command_line(cfg)
    if chosen is not None and chosen != trained_on:
        what = f"cell line {trained_on}" if trained_on else f"its own data ({record.get('path')})"
        raise InputError(
            "cellline",
            f"{chosen} differs from the run being resumed ({cfg.ckpt_path} trained on {what}); "
            "leave cellline= out to resume it",
        )
    if cfg.data.path is not None:
        return cfg.data.path, recipe
    path = record.get("path")
    if path is not None and Path(path).is_file():
        return path, recipe
    if recipe is None:
        raise InputError(path, "the dataset of the run being resumed is missing; pass data.path=<dataset>")
    return None, recipe


def run(cfg: DictConfig) -> dict:
    """Train as configured in ``conf/train.yaml``; return the run folder, model file and timings."""
    out = _run_folder(cfg)
    # Other ranks of a distributed run (torchrun, srun) start the same command on the same folder.
    lock = writing_folder(out) if rank_zero_only.rank == 0 else contextlib.nullcontext()
    with lock:
        return _train(cfg, out)


def _train(cfg: DictConfig, out: Path) -> dict:
    _clear_previous_run(cfg, out)
    out.mkdir(parents=True, exist_ok=True)
    prepare = OmegaConf.to_container(cfg.data.prepare, resolve=True)
    config = OmegaConf.to_container(cfg, resolve=True)
    resumed = None if cfg.ckpt_path is None else read_checkpoint(cfg.ckpt_path)
    if resumed is not None:
        # The data are the resumed run's: its cell line and recipe, whatever the defaults say now.
        record = resumed["hyper_parameters"].get("dataset") or {}
        source, recipe = _resumed_data(cfg, record)
        if recipe is not None:
            config["cellline"]["name"] = recipe["cell_line"]
            config["data"]["simulate"] = {k: recipe["simulate"][k] for k in config["data"]["simulate"]}
            config["data"]["prepare"] = recipe["prepare"]
    else:
        source, recipe = cfg.data.path, None
        if source is None:
            simulate = OmegaConf.to_container(cfg.data.simulate, resolve=True)
            recipe = simulation_recipe(
                cell_line=cfg.cellline.name, seed=cfg.seed, simulate=simulate, prepare=prepare
            )
    dataset = training_file(
        source,
        out,
        recipe=recipe,
        prepare=prepare,
        seed=cfg.seed,
        resuming=resumed is not None,
        progress=cfg.progress,
    )
    data = read_prepared(dataset)
    names = [s.name for s in data.sequences]
    # cellline=own names the user's own data and states or learns their rule; other data name no line.
    own = recipe is None and "topology" in cfg.cellline
    own_line, stated_rule = (cfg.cellline.name, cfg.cellline.topology) if own else (None, None)
    if resumed is not None and names != record.get("sequences", names):
        raise InputError(dataset, f"holds other sequences than the run resumed from {cfg.ckpt_path}")
    if resumed is not None:
        config["data"]["path"] = str(dataset)
    pl.seed_everything(cfg.seed, workers=True, verbose=False)
    model: AutoDecoder = instantiate(
        cfg.model,
        n_sequences=data.n_sequences,
        dataset={
            "path": str(dataset.resolve()),
            "sequences": names,
            "spacing": [[float(v) for v in s.spacing] for s in data.sequences],
            "frames": [int(s.frames) for s in data.sequences],
            "frame_interval": [float(s.frame_interval) for s in data.sequences],
            "scale": float(data.scale),
            # What makes the same data again on another machine (None for the user's own data).
            "recipe": recipe,
            # The line and the rule its cells keep: generate's topology=auto checks new cells with it.
            "cell_line": recipe["cell_line"] if recipe is not None else own_line,
            "topology": line_topology(dataset, recipe=recipe, stated=stated_rule),
        },
        _convert_="all",
    )
    if cfg.ckpt_path is not None:
        check_compatible(cfg.ckpt_path, model)
    epochs_before = 0 if resumed is None else _epochs_in(resumed)
    datamodule = instantiate(cfg.data.loader, path=dataset, seed=cfg.seed)
    checkpoints = out / "checkpoints"
    # The Timer comes before FinalValidation, which must see the Timer's decision to stop in the same batch.
    callbacks = [] if cfg.trainer.max_time is None else [Timer(duration=cfg.trainer.max_time)]
    callbacks.append(FinalValidation())
    callbacks += [instantiate(spec, dirpath=checkpoints) for spec in cfg.callbacks.values()]
    if cfg.progress:
        callbacks.append(progress_bar())
    precision = training_precision(cfg.trainer.precision, cfg.trainer.accelerator)
    trainer: pl.Trainer = instantiate(
        cfg.trainer,
        max_time=None,
        precision=precision,
        default_root_dir=str(out),
        callbacks=callbacks,
        plugins=[AtomicCheckpointIO(folder=checkpoints)],
        logger=_loggers(cfg, out, resume_epoch=None if resumed is None else epochs_before),
        enable_progress_bar=bool(cfg.progress),
        enable_model_summary=bool(cfg.verbose),
        # EpochSampler shards the frames over processes itself, so Lightning must not wrap it.
        use_distributed_sampler=False,
    )
    start = time.perf_counter()
    try:
        trainer.fit(model, datamodule, ckpt_path=cfg.ckpt_path, weights_only=True)
    except SystemExit:
        # Lightning ends a Ctrl+C with sys.exit(1) after its own shutdown; the weights trained until then
        # still make a model file (the manifest says the run was interrupted).
        if not trainer.interrupted:
            raise
    seconds = time.perf_counter() - start
    epochs = _epochs_done(trainer, checkpoints / "last.ckpt")
    result = {"out": out, "dataset": dataset, "seconds": seconds, "epochs": epochs}
    if trainer.is_global_zero:
        result["model"] = export_model(model, out / "model.pt")
        if prepare.get("body_radius") is not None:
            parts = attach_protrusions(
                result["model"],
                dataset,
                source=source,
                folder=out,
                prepare=prepare,
                **OmegaConf.to_container(cfg.protrusions, resolve=True),
                progress=cfg.progress,
            )
            result["protrusion_tracks"] = len(parts.shapes)
        write_manifest(
            out,
            "train",
            config,
            cfg.seed,
            [{"file": "model.pt", "sequences": data.n_sequences, "frames": len(data.frame_t)}],
            training_seconds=round(seconds, 3),
            epochs=epochs,
            epochs_this_call=epochs - epochs_before,
            resumed_from=None if cfg.ckpt_path is None else str(cfg.ckpt_path),
            val_loss=_metric(trainer, "val/loss"),
            precision=precision,
            interrupted=bool(trainer.interrupted),
            **({"protrusion_tracks": result["protrusion_tracks"]} if "protrusion_tracks" in result else {}),
        )
        if cfg.progress:
            done = f"{epochs - epochs_before} epochs ({epochs} in all)"
            print(f"\ntrained {done} in {seconds:.0f} s; model: {result['model']}")
            print(f"checkpoints: {checkpoints.resolve()}; logs: {(out / 'logs').resolve()}")
    if trainer.interrupted:
        print(f"interrupted after {epochs} epochs; the weights so far: {out / 'model.pt'}", file=sys.stderr)
        raise SystemExit(130)
    return result


def _metric(trainer: pl.Trainer, name: str) -> float | None:
    value = trainer.callback_metrics.get(name)
    return None if value is None else float(value)
