"""Does a segmenter trained on cellsdf's synthetic cells work on real images? The data and the table.

The experiment splits a real annotated image (2D) or time-lapse (3D+t) into training and held-out test
parts, generates cells sized to the real ones, images them (a texture model trained on the real training part
only), builds the same data from ellipsoids matched to each generated cell, and trains the same segmenter
several ways, each scored on the held-out real part.
"""

from __future__ import annotations

import shlex
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tifffile
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from scipy import ndimage
from skimage.segmentation import find_boundaries

from cellsdf.benchmark.realism import holdout_quarter
from cellsdf.errors import InputError
from cellsdf.io.atomic import atomic_path
from cellsdf.io.stacks import read_stack_pair
from cellsdf.segment.sets import read_tiff
from cellsdf.texture.models import Texture

# The sets each way of training draws from (each set equally often).
CONDITIONS = {
    "real": ("real",),
    "synthetic": ("synthetic",),
    "real masks, synthetic texture": ("textured",),
    "ellipsoids": ("ellipsoids",),
    "few real": ("few",),
    "few real + synthetic": ("few", "synthetic"),
}
MEASURES = ("SEG", "DET", "AP50")


def write_annotated(folder: Path, images: Sequence[np.ndarray], labels: Sequence[np.ndarray], **meta) -> Path:
    """Write frames and their labels as sequence ``01`` of a CTC set (``01/tT.tif``, ``01_GT/SEG``).

    Parameters
    ----------
    folder : Path
        The set folder.
    images, labels : sequence of np.ndarray
        Frames (Y, X) or (Z, Y, X) and their instance labels.
    **meta
        ``spacing`` (z, y, x) in µm for 3D frames, written as ImageJ metadata.

    Returns
    -------
    Path
        ``folder``.
    """
    spacing = meta.get("spacing")
    for sub in ("01", "01_GT/SEG"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    for t, (image, label) in enumerate(zip(images, labels, strict=True)):
        for path, data in (
            (folder / "01" / f"t{t:03d}.tif", image),
            (folder / "01_GT/SEG" / f"man_seg{t:03d}.tif", label),
        ):
            with atomic_path(path) as tmp:
                if spacing is None:
                    tifffile.imwrite(tmp, data, compression="zlib")
                else:
                    tifffile.imwrite(
                        tmp,
                        data,
                        imagej=True,
                        resolution=(1 / spacing[2], 1 / spacing[1]),
                        metadata={"spacing": spacing[0], "unit": "um", "axes": "ZYX"},
                    )
    return folder


def read_real_pair(image: str | Path, labels: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Read a real image and its instance labels: 2D (Y, X) TIFFs, or 3D+t stacks (:func:`read_stack_pair`).

    Raises
    ------
    InputError
        Naming the file: missing or unreadable, shapes that differ, labels that are not integers.
    """
    if _dims_of(image) != 2:
        return read_stack_pair(image, labels)
    pixels, instances = read_tiff(image), read_tiff(labels)
    if instances.shape != pixels.shape:
        raise InputError(labels, f"labels of shape {instances.shape} do not match the image's {pixels.shape}")
    if instances.dtype.kind not in "ui" or (instances.size and instances.min() < 0):
        raise InputError(labels, f"labels must be non-negative integers, got {instances.dtype}")
    return pixels, instances


def _dims_of(path: str | Path) -> int:
    if not Path(path).is_file():
        raise InputError(path, "file not found")
    try:
        with tifffile.TiffFile(path) as tif:
            return len([n for n in tif.series[0].shape if n > 1])
    except (OSError, ValueError, KeyError, IndexError, tifffile.TiffFileError) as err:
        raise InputError(path, f"unreadable TIFF ({err})") from None


def real_sets_2d(image: np.ndarray, labels: np.ndarray, out: Path) -> dict[str, Path]:
    """Split a 2D annotated image into quarters: three to train on, the first of them alone, one held out.

    The held-out quarter is the bottom-right one, which the shipped 2D texture model never saw
    (:func:`cellsdf.benchmark.realism.holdout_quarter`).

    Returns
    -------
    dict
        ``real`` (three quarters), ``few`` (the top-left quarter), ``test`` (bottom-right): set folders.
    """
    y, x = (s // 2 for s in image.shape)
    quarters = [(slice(0, y), slice(0, x)), (slice(0, y), slice(x, 2 * x)), (slice(y, 2 * y), slice(0, x))]
    test_image, test_labels = holdout_quarter(image, labels)
    pieces = [(image[q].astype(np.uint16), labels[q].astype(np.uint16)) for q in quarters]
    return {
        "real": write_annotated(out / "real", *zip(*pieces, strict=True)),
        "few": write_annotated(out / "few", [pieces[0][0]], [pieces[0][1]]),
        "test": write_annotated(
            out / "test", [test_image.astype(np.uint16)], [test_labels.astype(np.uint16)]
        ),
    }


def real_sets_3d(
    image: np.ndarray, labels: np.ndarray, out: Path, *, heldout: int, few: int, spacing: tuple[float, ...]
) -> dict[str, Path]:
    """Split a 3D+t annotated time-lapse in time: the last ``heldout`` frames are the test set.

    Returns
    -------
    dict
        ``real`` (every training frame), ``few`` (the first ``few`` of them), ``test``: set folders.
    """
    if not 1 <= heldout < len(image) or not 1 <= few <= len(image) - heldout:
        raise InputError("heldout_frames", f"and few_frames must leave training frames of {len(image)}")
    train = slice(0, len(image) - heldout)
    as_uint16 = [f.astype(np.uint16) for f in labels]
    return {
        "real": write_annotated(out / "real", list(image[train]), as_uint16[train], spacing=spacing),
        "few": write_annotated(out / "few", list(image[:few]), as_uint16[:few], spacing=spacing),
        "test": write_annotated(
            out / "test", list(image[train.stop :]), as_uint16[train.stop :], spacing=spacing
        ),
    }


def textured_set(labels: Sequence[np.ndarray], texture: Texture, out: Path, *, seed: int) -> Path:
    """Texture real 2D masks with a texture model: real shapes and layout, synthetic images.

    Training on them separates what the synthetic images lack in texture from what they lack in shapes.

    Returns
    -------
    Path
        ``out``, a CTC set.
    """
    images = [
        texture.apply(np.asarray(frame, np.uint16)[None], np.random.default_rng([seed, k]))[0]
        for k, frame in enumerate(labels)
    ]
    return write_annotated(out, images, [np.asarray(frame, np.uint16) for frame in labels])


def median_object_size(labels: Sequence[np.ndarray], *, project: bool = False) -> float:
    """Median pixel (voxel) count of the labelled objects of some frames; ``project``: of their z projection.

    Examples
    --------
    >>> frame = np.zeros((4, 4), int); frame[:2, :2] = 1; frame[3, 3] = 2
    >>> median_object_size([frame])
    2.5
    """
    sizes = []
    for frame in labels:
        frame = np.asarray(frame)
        if project:
            ids, _ = ndimage.label(frame.max(axis=0) > 0, structure=np.ones((3, 3)))
            frame = ids
        counts = np.bincount(frame.ravel())[1:]
        sizes += list(counts[counts > 0])
    if not sizes:
        raise InputError("labels", "hold no object to size the generated cells by")
    return float(np.median(sizes))


def sized_resolution(pilot: float, real: float, *, pilot_resolution: int, dims: int) -> int:
    """Grid resolution at which generated cells are as large as real ones (size scales as resolution**dims).

    Examples
    --------
    >>> sized_resolution(1124.0, 440.0, pilot_resolution=64, dims=2)
    40
    """
    return max(8, round(pilot_resolution * (real / pilot) ** (1 / dims)))


@dataclass
class Recipe:
    """The cellsdf commands an experiment ran, in order, to write as a shell script beside its table."""

    lines: list[str]
    log: Path

    def __post_init__(self) -> None:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        self.log.write_text("")

    def run(self, command: str, *options: str, done: bool = False) -> None:
        """Run ``cellsdf <command> <options>`` in a fresh process; a failure ends the experiment.

        ``done``: an earlier run finished this step; it is only recorded.

        Raises
        ------
        InputError
            Naming the command that failed and quoting its error line.
        """
        self.lines.append(shlex.join(["cellsdf", command, *options]))
        if done:
            return
        args = [sys.executable, "-m", "cellsdf.cli", command, *options, "progress=false"]
        with self.log.open("a") as log:
            log.write(f"$ {self.lines[-1]}\n")
            log.flush()
            done = subprocess.run(args, stdout=log, stderr=subprocess.PIPE, text=True, check=False)
            log.write(done.stderr)
        if done.returncode:
            last = done.stderr.strip().splitlines()[-1] if done.stderr.strip() else f"exit {done.returncode}"
            raise InputError(self.lines[-1], f"failed: {last} (log: {self.log})")


def summary(runs: dict[str, list[dict]], floor: dict) -> dict:
    """Mean and standard deviation over seeds of each way of training, the floor and the targets' verdicts.

    Parameters
    ----------
    runs : dict
        Condition name to its runs' results (:func:`cellsdf.segment.run.segment_run`), one per seed.
    floor : dict
        Otsu's scores on the test set.

    Returns
    -------
    dict
        ``rows`` (name, seeds, mean and sd of each measure, mean training seconds), ``floor`` and
        ``targets``: synthetic SEG / real SEG (target >= 0.9), synthetic minus ellipsoid SEG against the
        larger of their sds, few + synthetic minus few SEG against the larger of their sds.
    """
    rows = {}
    for name, results in runs.items():
        values = {m: np.array([r["scores"][m] for r in results]) for m in MEASURES}
        rows[name] = {
            "seeds": len(results),
            **{
                m: {"mean": float(v.mean()), "sd": float(v.std(ddof=1)) if v.size > 1 else 0.0}
                for m, v in values.items()
            },
            "training_seconds": float(np.mean([r["training_seconds"] for r in results])),
        }
    seg = {name: row["SEG"] for name, row in rows.items()}
    targets = {}
    if {"real", "synthetic"} <= seg.keys():
        ratio = seg["synthetic"]["mean"] / seg["real"]["mean"]
        targets["synthetic / real SEG"] = {"value": ratio, "target": ">= 0.9", "met": ratio >= 0.9}
    judged = min((row["seeds"] for row in rows.values()), default=0) >= 2
    for better, worse in (("synthetic", "ellipsoids"), ("few real + synthetic", "few real")):
        if {better, worse} <= seg.keys():
            gap = seg[better]["mean"] - seg[worse]["mean"]
            spread = max(seg[better]["sd"], seg[worse]["sd"])
            if not judged:
                targets[f"{better} - {worse} SEG"] = {"value": gap, "target": "> the seeds' sd", "met": None}
                continue
            targets[f"{better} - {worse} SEG"] = {
                "value": gap,
                "target": f"> {spread:.3f} (larger sd)",
                "met": gap > spread,
            }
    return {"rows": rows, "floor": {m: floor[m] for m in MEASURES}, "targets": targets}


def table_markdown(table: dict) -> str:
    """Format the summary as a Markdown table (mean ± sd over seeds), the floor and the targets below it."""
    lines = ["| trained on | seeds | SEG | DET | AP50 | training (s) |", "|---|---|---|---|---|---|"]
    for name, row in table["rows"].items():
        cells = " | ".join(f"{row[m]['mean']:.3f} ± {row[m]['sd']:.3f}" for m in MEASURES)
        lines.append(f"| {name} | {row['seeds']} | {cells} | {row['training_seconds']:.0f} |")
    floor = " | ".join(f"{table['floor'][m]:.3f}" for m in MEASURES)
    lines.append(f"| Otsu threshold (floor, no training) | - | {floor} | - |")
    lines.append("")
    for name, target in table["targets"].items():
        verdict = {True: "met", False: "not met", None: "not judged (one seed has no spread)"}[target["met"]]
        lines.append(f"- {name}: {target['value']:.3f} (target {target['target']}): {verdict}")
    return "\n".join(lines) + "\n"


def write_preview(
    path: Path,
    examples: dict[str, np.ndarray],
    test: np.ndarray,
    truth: np.ndarray,
    predicted: dict[str, np.ndarray],
) -> Path:
    """Draw a training image of each kind, and the test image outlined by each way of training.

    Parameters
    ----------
    path : Path
        The PNG to write.
    examples : dict
        Kind of training data to one of its images (2D, or the middle slice of a stack).
    test, truth : np.ndarray
        The test image and its labels (same dimensions as ``examples``' sources).
    predicted : dict
        Way of training to its predicted labels of ``test`` (seed 0).

    Returns
    -------
    Path
        ``path``.
    """
    plane = [_middle(a) for a in (test, truth)]
    panels = [(f"train: {k}", _middle(v), None) for k, v in examples.items()]
    panels += [("test: truth", plane[0], plane[1])]
    panels += [(f"test: {k}", plane[0], _middle(v)) for k, v in predicted.items()]
    columns = 4
    rows = -(-len(panels) // columns)
    figure = Figure(figsize=(3.2 * columns, 3.2 * rows))
    FigureCanvasAgg(figure)
    for k, (title, image, labels) in enumerate(panels):
        axes = figure.add_subplot(rows, columns, k + 1)
        low, high = np.percentile(image, [1, 99.8])
        axes.imshow(image, cmap="gray", vmin=low, vmax=high)
        if labels is not None:
            axes.contour(
                find_boundaries(labels, mode="inner"), levels=[0.5], colors="tab:orange", linewidths=0.6
            )
        axes.set_title(title, fontsize=9)
        axes.set_axis_off()
    figure.tight_layout()
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png", dpi=90)
    return path


def _middle(array: np.ndarray) -> np.ndarray:
    array = np.asarray(array)
    return array[array.shape[0] // 2] if array.ndim == 3 else array
