"""``cellsdf train``: fit the auto-decoder to a prepared dataset with Lightning, configured by Hydra."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import h5py
import pytorch_lightning as pl
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from pytorch_lightning.callbacks import ModelCheckpoint, RichProgressBar
from pytorch_lightning.loggers import CSVLogger, Logger

from cellsdf.dataset.datamodule import PreparedDataModule
from cellsdf.dataset.prepare import prepare_dataset
from cellsdf.dataset.prepared import FORMAT as PREPARED_FORMAT
from cellsdf.dataset.prepared import read_prepared
from cellsdf.dataset.sources import find_sequences
from cellsdf.errors import InputError
from cellsdf.io.manifest import write_manifest
from cellsdf.model.autodecoder import AutoDecoder
from cellsdf.model.checkpoint import check_compatible, export_model
from cellsdf.tasks.simulate import scaled_spacing, simulate_to_folder


def _is_prepared(path: Path) -> bool:
    if path.suffix.lower() not in (".h5", ".hdf5") or not path.is_file():
        return False
    try:
        with h5py.File(path, "r") as f:
            return f.attrs.get("format") == PREPARED_FORMAT
    except OSError as err:
        raise InputError(path, f"unreadable HDF5 file ({err})") from None


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
    if data.path is not None and _is_prepared(Path(data.path)):
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
    p = data.prepare
    loaders = find_sequences(
        source,
        label=p.label,
        threshold=p.threshold,
        components=p.components,
        spacing=None if p.spacing is None else tuple(p.spacing),
    )
    return prepare_dataset(
        loaders,
        prepared,
        centre=p.centre,
        margin=p.margin,
        points_per_frame=p.points_per_frame,
        surface_fraction=p.surface_fraction,
        surface_sigmas=tuple(p.surface_sigmas),
        exact_band=p.exact_band,
        eval_size=p.eval_size,
        seed=cfg.seed,
        overwrite=True,
        progress=cfg.progress,
    )


def _loggers(out: Path) -> list[Logger]:
    loggers: list[Logger] = [CSVLogger(out, name="logs", version="")]
    try:
        from pytorch_lightning.loggers import TensorBoardLogger

        loggers.append(TensorBoardLogger(out, name="logs", version="tensorboard"))
    except ModuleNotFoundError:
        pass  # TensorBoard is optional; the CSV log is always written
    return loggers


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
            "scale": float(data.scale),
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
        ModelCheckpoint(
            checkpoints,
            save_last=True,
            save_top_k=0,
            save_on_train_epoch_end=True,
            enable_version_counter=False,
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
        logger=_loggers(out),
        enable_progress_bar=bool(cfg.progress),
        enable_model_summary=bool(cfg.progress),
        # EpochSampler shards the frames over processes itself, so Lightning must not wrap it.
        use_distributed_sampler=False,
    )
    start = time.perf_counter()
    trainer.fit(model, datamodule, ckpt_path=cfg.ckpt_path, weights_only=True)
    seconds = time.perf_counter() - start
    result = {"out": out, "dataset": dataset, "seconds": seconds, "epochs": trainer.current_epoch}
    if trainer.is_global_zero:
        result["model"] = export_model(model, out / "model.pt")
        write_manifest(
            out,
            "train",
            OmegaConf.to_container(cfg, resolve=True),
            cfg.seed,
            [{"file": "model.pt", "sequences": data.n_sequences, "frames": len(data.frame_t)}],
            training_seconds=round(seconds, 1),
            epochs=trainer.current_epoch,
            val_loss=_metric(trainer, "val/loss"),
        )
        if cfg.progress:
            print(f"\ntrained {trainer.current_epoch} epochs in {seconds:.0f} s; model: {result['model']}")
            print(f"checkpoints: {checkpoints.resolve()}; logs: {(out / 'logs').resolve()}")
    return result


def _metric(trainer: pl.Trainer, name: str) -> float | None:
    value = trainer.callback_metrics.get(name)
    return None if value is None else float(value)
