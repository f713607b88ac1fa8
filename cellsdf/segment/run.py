"""One segment run: train on sets (or take a trained model), segment a test set, score it beside Otsu's."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import tifffile
import torch

from cellsdf.benchmark.seg import otsu_baseline
from cellsdf.io.atomic import atomic_path
from cellsdf.io.manifest import write_manifest
from cellsdf.progress import track
from cellsdf.segment.module import Segmenter
from cellsdf.segment.scores import segmentation_scores
from cellsdf.segment.sets import Annotated
from cellsdf.segment.training import TrainingOptions, save_segmenter, train_segmenter


def segment_run(
    sets: Sequence[Sequence[Annotated]],
    test: Sequence[Annotated],
    *,
    out: Path,
    options: TrainingOptions,
    model: Segmenter | None = None,
    min_size: int = 8,
    progress: bool = False,
    config: dict | None = None,
) -> dict:
    """Train a segmenter on ``sets`` (unless ``model`` is given), score it on ``test``; write the run folder.

    Parameters
    ----------
    sets : sequence of sequences of Annotated
        Training sets (:func:`cellsdf.segment.sets.annotated_frames`), each drawn equally often.
    test : sequence of Annotated
        Frames to segment and score; empty: train only.
    out : Path
        Run folder: ``model.pt``, ``scores.json``, ``test/NN_RES/maskT.tif``, ``logs/``, ``manifest.json``.
    options : TrainingOptions
        How to train.
    model : Segmenter, optional
        A trained segmenter to score instead of training one.
    min_size : int
        Predicted cells of fewer pixels are dropped.
    progress : bool
        Progress bars.
    config : dict, optional
        Recorded in the manifest.

    Returns
    -------
    dict
        ``training_seconds``, ``frames`` (training), and with a test set ``scores`` and ``otsu``
        (:func:`cellsdf.segment.scores.segmentation_scores`) and ``test_frames``.
    """
    out.mkdir(parents=True, exist_ok=True)
    result: dict = {"training_seconds": 0.0, "frames": sum(len(s) for s in sets)}
    items = []
    if model is None:
        start = time.perf_counter()
        model = train_segmenter(sets, options=options, out=out, progress=progress)
        result["training_seconds"] = round(time.perf_counter() - start, 1)
        save_segmenter(model, out / "model.pt", sources=[f.source for s in sets for f in s])
        items.append({"file": "model.pt"})
    if test:
        # Predict where training ran: a GPU's sliding windows over 3D stacks are many times faster.
        on_gpu = options.accelerator != "cpu" and torch.cuda.is_available()
        model = model.to("cuda" if on_gpu else "cpu")
        result.update(_score(model, test, out=out, min_size=min_size, progress=progress))
        with atomic_path(out / "scores.json") as tmp:
            tmp.write_text(json.dumps(result, indent=2) + "\n")
        items += [{"file": "scores.json"}, {"file": "test"}]
    write_manifest(out, "segment", config or {}, options.seed, items, **result)
    return result


def result_path(out: Path, frame: Annotated) -> Path:
    """Return where a run in ``out`` writes its labels of a test frame (``test/NN_RES/maskT.tif``)."""
    _, sequence, name = frame.source.rsplit("/", 2)
    return out / "test" / f"{sequence}_RES" / f"mask{name[1:]}.tif"


def _score(
    model: Segmenter, frames: Sequence[Annotated], *, out: Path, min_size: int, progress: bool
) -> dict:
    """Segment the test frames, write them as CTC results under ``out/test``, and score them and Otsu's."""
    predicted = []
    for frame in track(frames, "segmenting", show=progress):
        labels = model.segment(frame.image, min_size=min_size)
        predicted.append(labels)
        path = result_path(out, frame)
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as tmp:
            tifffile.imwrite(tmp, labels.astype(np.uint16), compression="zlib")
    truths = [f.labels for f in frames]
    return {
        "test_frames": len(frames),
        "scores": segmentation_scores(zip(truths, predicted, strict=True)),
        "otsu": segmentation_scores(zip(truths, (otsu_baseline(f.image) for f in frames), strict=True)),
    }
