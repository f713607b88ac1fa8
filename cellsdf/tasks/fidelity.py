"""``cellsdf fidelity``: a trained model's generated cells against held-out reference cells of its line."""

from __future__ import annotations

import json

from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from cellsdf.errors import InputError
from cellsdf.evaluate.fidelity import scorecard_table
from cellsdf.generate.fidelity import (
    Drawing,
    folder_sets,
    line_rule,
    model_cell_line,
    score_sets,
    simulated_sets,
)
from cellsdf.generate.sampling import model_sampler
from cellsdf.io.atomic import atomic_path
from cellsdf.io.folders import check_out_folder
from cellsdf.io.hashing import file_sha256
from cellsdf.io.lock import writing_folder
from cellsdf.io.manifest import write_manifest
from cellsdf.io.preview import write_preview
from cellsdf.model.trained import load_trained, select_device
from cellsdf.simulate.lines import get_line


def run(cfg: DictConfig) -> dict:
    """Score as configured in ``conf/fidelity.yaml``; return the output folder and the scorecard."""
    # One run at a time writes the output, and what killed runs left there goes first.
    with writing_folder(cfg.out):
        return _run(cfg)


def _run(cfg: DictConfig) -> dict:
    # n, frames and resamples keep their rules in schema.py, checked before the command starts.
    count, frames, resamples = cfg.n, cfg.frames, cfg.resamples
    sampler = instantiate(cfg.sampler, _convert_="all")
    model = load_trained(cfg.ckpt, device=select_device(cfg.device))
    own = cfg.reference is not None or cfg.reference_b is not None
    chosen = cfg.cellline.name if cfg.get("cellline") else None
    line = None if own else model_cell_line(model, chosen)
    if own and (cfg.reference is None or cfg.reference_b is None):
        raise InputError("reference", "own data needs both reference=<folder> and reference_b=<folder>")
    if not own and line is None:
        raise InputError(model.file, "names no built-in line; pass cellline=<line> or reference= folders")
    rule = line_rule(line, cfg.topology)
    out = check_out_folder(cfg.out, cfg.overwrite)
    drawing = Drawing(
        sampler=sampler, rotation=cfg.rotation, join=cfg.join, rule=rule, max_draws=cfg.max_draws
    )
    options = {
        "count": count,
        "frames": frames,
        "seed": cfg.seed,
        "progress": cfg.progress,
    }
    size = None
    if own:
        sets = folder_sets(
            model,
            drawing,
            reference=cfg.reference,
            reference_b=cfg.reference_b,
            training=cfg.training,
            **options,
        )
    else:
        size = get_line(line).score_size if cfg.size is None else cfg.size
        sets = simulated_sets(model, drawing, cell_line=line, size=size, **options)
    card = score_sets(sets, rule=rule, seed=cfg.seed, resamples=resamples)
    drawn = model_sampler(sampler, model.sampler, source=str(model.file))
    card.update(
        model=str(model.file),
        cell_line=line,
        grid=size,
        sampler={**drawn.describe(), "rotation": drawing.rotation},
        join=drawing.join,
    )
    out.mkdir(parents=True, exist_ok=True)
    with atomic_path(out / "fidelity.json") as tmp:
        tmp.write_text(json.dumps(card, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    for name, markup in (("scorecard.md", "markdown"), ("scorecard.html", "html")):
        with atomic_path(out / name) as tmp:
            tmp.write_text(scorecard_table(card, markup=markup) + "\n", encoding="utf-8")
    title = line or "reference"
    write_preview(
        out / "preview.png",
        {f"{title} reference": sets.reference[0], f"{title} generated": sets.generated[0]},
        {f"{title} reference": sets.spacing, f"{title} generated": sets.generated_spacing},
    )
    write_manifest(
        out,
        "fidelity",
        OmegaConf.to_container(cfg, resolve=True),
        cfg.seed,
        [{"file": f} for f in ("fidelity.json", "scorecard.md", "scorecard.html", "preview.png")],
        checkpoint=str(model.file),
        checkpoint_sha256=file_sha256(model.file),
    )
    print(scorecard_table(card, markup="markdown"))
    print(f"wrote fidelity.json, scorecard.md, scorecard.html and preview.png to {out.resolve()}")
    return {"out": out, "scorecard": card}
