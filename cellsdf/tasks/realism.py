"""``cellsdf realism``: how real synthetic 3D images look, texture by texture, against held-out frames."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from cellsdf.benchmark.realism3d import realism_markdown, realism_table, write_realism_preview
from cellsdf.errors import InputError
from cellsdf.io.atomic import atomic_path
from cellsdf.io.folders import check_out_folder
from cellsdf.io.hashing import file_sha256
from cellsdf.io.lock import writing_folder
from cellsdf.io.manifest import write_manifest
from cellsdf.io.stacks import read_stack_pair
from cellsdf.texture.gan import load_texture_model
from cellsdf.texture.microscope import Microscope


def run(cfg: DictConfig) -> dict:
    """Score the textures configured in ``conf/realism.yaml``; return the output folder and the table."""
    if cfg.image is None or cfg.labels is None or cfg.out is None:
        raise InputError("realism", "needs image=<TZYX tif>, labels=<its labels tif> and out=<folder>")
    with writing_folder(cfg.out):
        return _run(cfg)


def _run(cfg: DictConfig) -> dict:
    image, labels = read_stack_pair(cfg.image, cfg.labels)
    if not 2 <= cfg.heldout <= len(image):
        raise InputError("heldout", f"must lie in 2 .. {len(image)} (the frames), got {cfg.heldout}")
    out = check_out_folder(cfg.out, cfg.overwrite)
    microscope: Microscope = instantiate(cfg.microscope, _convert_="all")

    def micro(frame: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        return microscope.image(frame, frame > 0, rng, factors=microscope.brightness(rng, int(frame.max())))

    textures = {f"microscope ({microscope.name})": micro}
    if cfg.learned is not None:
        learned = load_texture_model(cfg.learned)
        if not learned.volume:
            raise InputError(cfg.learned, "is a 2D texture model; train a 3D one with texture-train dims=3")
        textures["learned (slice-wise pix2pixHD)"] = learned.render_volume
    real, truth = image[-cfg.heldout :], labels[-cfg.heldout :]
    try:
        table = realism_table(real, truth, textures, seeds=cfg.seeds, patches=cfg.patches, epochs=cfg.epochs)
    except ValueError as err:
        raise InputError(cfg.image, str(err)) from None
    table.update(image=str(Path(cfg.image).resolve()), heldout_frames=list(range(len(image))[-cfg.heldout :]))
    out.mkdir(parents=True, exist_ok=True)
    with atomic_path(out / "realism.json") as tmp:
        tmp.write_text(json.dumps(table, indent=2) + "\n")
    markdown = realism_markdown(table)
    with atomic_path(out / "realism.md") as tmp:
        tmp.write_text(markdown + "\n")
    rng = np.random.default_rng(cfg.seed)
    write_realism_preview(
        out / "preview.png", real[-1], {name: r(truth[-1], rng) for name, r in textures.items()}
    )
    write_manifest(
        out,
        "realism",
        OmegaConf.to_container(cfg, resolve=True),
        cfg.seed,
        [{"file": f} for f in ("realism.json", "realism.md", "preview.png")],
        image_sha256=file_sha256(cfg.image),
    )
    print(markdown)
    print(f"wrote realism.json, realism.md and preview.png to {out.resolve()}")
    return {"out": out, "realism": table}
