"""``cellsdf segment``: train the baseline segmenter on CTC sets, score it on another beside Otsu's floor."""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from cellsdf.errors import InputError
from cellsdf.io.folders import check_out_folder
from cellsdf.io.lock import writing_folder
from cellsdf.options import as_list, pick
from cellsdf.segment.run import segment_run
from cellsdf.segment.scores import score_line
from cellsdf.segment.sets import annotated_frames
from cellsdf.segment.training import TrainingOptions, load_segmenter


def run(cfg: DictConfig) -> dict:
    """Train and/or score as configured in ``conf/segment.yaml``; return the output folder and scores."""
    if cfg.out is None:
        raise InputError("segment", "needs out=<folder>, with train=[<CTC set>, ...] or ckpt=<model.pt>")
    # One run at a time writes the output, and what killed runs left there goes first.
    with writing_folder(cfg.out):
        return _run(cfg)


def _run(cfg: DictConfig) -> dict:
    folders = as_list(cfg.train) if cfg.train is not None else []
    if bool(folders) == (cfg.ckpt is not None):
        raise InputError("segment", "needs either train=[<CTC set>, ...] or ckpt=<segment model.pt>")
    if not folders and cfg.test is None:
        raise InputError("segment", "ckpt= needs test=<CTC set> to score on")
    options = TrainingOptions(**pick(cfg, TrainingOptions))
    # Every input is read and checked before anything is written.
    sets = [annotated_frames(folder) for folder in folders]
    test = annotated_frames(cfg.test) if cfg.test is not None else []
    model = load_segmenter(cfg.ckpt) if cfg.ckpt is not None else None
    dims = {f.image.ndim for s in [*sets, test] for f in s}
    dims |= {len(model.hparams.patch)} if model is not None else set()
    if len(dims) > 1:
        raise InputError("test" if test else "train", "mixes 2D and 3D frames with the training's")
    out = check_out_folder(cfg.out, cfg.overwrite)
    result = segment_run(
        sets,
        test,
        out=out,
        options=options,
        model=model,
        min_size=cfg.min_size,
        progress=cfg.progress,
        config=OmegaConf.to_container(cfg, resolve=True),
    )
    if model is None:
        frames, seconds = result["frames"], result["training_seconds"]
        print(f"trained {options.steps} steps on {frames} frames in {seconds:.0f} s")
        print(f"  model: {(out / 'model.pt').resolve()}")
    if test:
        cells = result["scores"]["objects"]
        print(f"on {cfg.test} ({len(test)} frames, {cells} cells): {score_line(result['scores'])}")
        print(f"  Otsu threshold (the floor): {score_line(result['otsu'])}")
        print(f"  scores: {(out / 'scores.json').resolve()}   labels: {(out / 'test').resolve()}")
    return {"out": Path(out), **result}
