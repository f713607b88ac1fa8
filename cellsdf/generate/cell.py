"""Writing one generated cell: decode frame by frame, check every frame, write files and a preview."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from cellsdf.decode.join import JOIN_TOLERANCE
from cellsdf.decode.options import DEFAULT_MESH, MeshOptions
from cellsdf.decode.volumes import DecodeLog, write_volumes
from cellsdf.geometry.topology import check_rule
from cellsdf.io.preview import PreviewRow, preview_frames, write_preview_rows
from cellsdf.model.trained import TrainedModel
from cellsdf.progress import track


def frame_problem(mask: np.ndarray) -> str | None:
    """Say why a generated frame is unusable: empty, or touching the grid border (cut off); None if fine."""
    if not mask.any():
        return "empty"
    faces = (mask[0], mask[-1], mask[:, 0], mask[:, -1], mask[:, :, 0], mask[:, :, -1])
    if any(face.any() for face in faces):
        return "touches the grid border"
    return None


class RejectedCell(Exception):
    """A generated cell failed a frame check and has to be redrawn.

    Parameters
    ----------
    frame : int
        The first failing frame.
    problem : str
        What is wrong with it.
    value : object, optional
        What the draw made (its masks), for a caller that keeps the last draw when none passes.
    """

    def __init__(self, frame: int, problem: str, value: object = None):
        self.frame, self.problem, self.value = frame, problem, value
        super().__init__(f"frame {frame} {problem}")


@dataclass
class _Watcher:
    """Checks frames as they stream past (and, with a rule, their topology) and keeps the preview's frames."""

    picks: list[int]
    frames: int
    rule: str | None = None
    projections: dict[int, np.ndarray] = field(default_factory=dict)
    last: np.ndarray | None = None
    components: list[int] = field(default_factory=list)  # per frame, filled by the decoder before it yields

    def decode(
        self, model: TrainedModel, latent: np.ndarray, times: Sequence[float], **options: object
    ) -> tuple[Iterator[np.ndarray], DecodeLog]:
        """Decode with ``model.decode_masks(**options)``, checking each frame as it streams past.

        Returns the checked frames and the decode's log, whose component counts the topology check reads.
        """
        masks, log = model.decode_masks(latent, times, count_components=True, **options)
        self.components = log.components
        return self.watch(masks), log

    def watch(self, masks: Iterable[np.ndarray]) -> Iterator[np.ndarray]:
        for index, mask in enumerate(masks):
            problem = frame_problem(mask)
            if problem is not None:
                raise RejectedCell(index, problem)
            if self.rule is not None:
                verdict = check_rule(self.components[: index + 1], self.rule)
                # A dividing line may still divide in a later frame; only a whole sequence of two or more
                # frames can fail that.
                later = index < self.frames - 1 or self.frames == 1
                pending = verdict["reason"] == "never divides" and later
                if not verdict["keeps"] and not pending:
                    where = index if verdict["first_break"] is None else verdict["first_break"]
                    raise RejectedCell(where, f"breaks the {self.rule} topology rule ({verdict['reason']})")
            if index in self.picks:
                self.projections[index] = mask.max(axis=0)
            self.last = mask
            yield mask


def passes_checks(masks: Sequence[np.ndarray], components: Sequence[int], rule: str | None) -> bool:
    """Whether ``generate`` would keep a decoded cell: the checks its frames get as they stream past.

    Parameters
    ----------
    masks : sequence of np.ndarray
        bool (Z, Y, X) frames of one cell.
    components : sequence of int
        Their 26-connected component counts (as the decoder reports them).
    rule : {'single', 'divide_once'}, optional
        The cell line's topology rule; None checks the frames only.

    Returns
    -------
    bool
        False if a frame is empty or touches the grid border, or the components break ``rule``.
    """
    watcher = _Watcher([], len(masks), rule, components=list(components))
    try:
        for _ in watcher.watch(masks):
            pass
    except RejectedCell:
        return False
    return True


def write_cell(
    model: TrainedModel,
    latent: np.ndarray,
    rotation: np.ndarray | None,
    times: Sequence[float],
    folder: str | Path,
    *,
    resolution: int,
    spacing: tuple[float, float, float],
    frame_interval: float,
    formats: Sequence[str] = ("tiff", "mesh"),
    mesh: MeshOptions = DEFAULT_MESH,
    title: str = "cell",
    progress: bool = False,
    topology: str | None = None,
    precision: str = "32",
    tracking: bool = False,
    join: float = JOIN_TOLERANCE,
) -> list[dict]:
    """Decode one generated cell frame by frame and write its files and ``preview.png`` into ``folder``.

    Parameters
    ----------
    model : TrainedModel
        The trained model (decodes with its own clamp).
    latent : np.ndarray
        (L,) code.
    rotation : np.ndarray or None
        (3,) rotation vector applied to the coordinates, or None.
    times : sequence of float
        Frame times in [-1, 1].
    resolution : int
        Grid side.
    folder : str or Path
        Output folder.
    spacing : tuple of float
        Voxel size (z, y, x) in µm.
    frame_interval : float
        Seconds between frames.
    formats : sequence of {'tiff', 'mesh', 'sdf', 'omezarr'}
        Files to write (see :func:`cellsdf.decode.volumes.write_volumes`).
    mesh : MeshOptions
        Mesh file type, smoothing and decimation.
    title : str
        Name on the progress bar and the preview.
    progress : bool
        Show a progress bar over frames.
    topology : {'single', 'divide_once'}, optional
        The cell line's rule (:mod:`cellsdf.evaluate.topology`): a cell whose connected components break
        it (floating fragments, a division that merges back or never happens) is rejected.
    precision : {'auto', '32', 'bf16'}
        Decode precision (:meth:`~cellsdf.model.trained.TrainedModel.decode_masks`).
    tracking : bool
        Decode each frame after the first by following the previous frame's surface.
    join : float
        Join fragments to their cell where the field stays within this many voxels of zero
        (:func:`~cellsdf.decode.join.join_fragments`); the topology check sees the joined frames.

    Returns
    -------
    list of dict
        Per frame: ``voxels``, ``components`` (26-connected components),
        ``mesh`` (file name or None), ``joined`` (fragments joined to the cell) and ``decode``
        (``narrow-band``, ``tracked``, or ``narrow-band, tracking lost`` where the coarse check found a
        surface that tracking missed).

    Raises
    ------
    RejectedCell
        If a frame is empty, touches the grid border or breaks ``topology``; files written so far are left
        for the caller to remove.
    """
    folder = Path(folder)
    watcher = _Watcher(preview_frames(len(times)), len(times), topology)
    masks, log = watcher.decode(
        model,
        latent,
        times,
        resolution=resolution,
        rotation=rotation,
        precision=precision,
        tracking=tracking,
        join=join,
    )
    masks = track(masks, title, total=len(times), show=progress)
    frames = write_volumes(
        masks,
        folder,
        len(times),
        resolution,
        spacing,
        frame_interval,
        formats=formats,
        mesh=mesh,
        components=log.components,
    )
    for index, frame in enumerate(frames):
        method = "tracked" if tracking and index > 0 else "narrow-band"
        frame["decode"] = "narrow-band, tracking lost" if index in log.lost else method
        frame["joined"] = log.joined[index] if log.joined else 0
    row = PreviewRow(title, watcher.projections, watcher.last, len(times) - 1, spacing, frame_interval)
    write_preview_rows(folder / "preview.png", [row])
    return frames
