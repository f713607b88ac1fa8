"""The trained shape model as one object: decoder, codes, rotations and what it knows about its data."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from cellsdf.dataset.options import check_recipe
from cellsdf.decode.dense import resolve_precision
from cellsdf.decode.join import JOIN_TOLERANCE
from cellsdf.decode.volumes import DecodeLog, decode_masks
from cellsdf.errors import InputError
from cellsdf.geometry.rotation import axis_angle_matrix
from cellsdf.geometry.topology import RULES
from cellsdf.model.autodecoder import AutoDecoder
from cellsdf.model.checkpoint import autodecoder_from, read_checkpoint, resolve_checkpoint
from cellsdf.model.placement import PlacedDecoder
from cellsdf.model.protrusions import ComposedField, ProtrusionModel, code_rng, drawn_tubes
from cellsdf.model.siren import SirenDecoder
from cellsdf.options import ListOf, OneOf, Real, Text, Whole
from cellsdf.simulate.lines import LINES


@dataclass(frozen=True)
class TrainingRecord:
    """What a model was trained on, as stored in its checkpoint.

    Attributes
    ----------
    path : str or None
        The prepared dataset file on the machine that trained the model.
    sequences : tuple of str
        Names of the training sequences, in latent order.
    frames : tuple of int
        Frames per sequence.
    frame_interval : tuple of float
        Seconds between frames per sequence.
    scale : float or None
        Normalised units per µm of the prepared data.
    recipe : dict or None
        How the data were simulated and prepared (``None`` for a user's own data): enough to make them again.
    cell_line : str or None
        The line the data are (a registered one, or the user's own named with ``cellline=own``).
    topology : str or None
        The rule its cells keep (:mod:`cellsdf.geometry.topology`); files from before it was recorded take
        their recipe's line's rule.
    """

    path: str | None
    sequences: tuple[str, ...]
    frames: tuple[int, ...]
    frame_interval: tuple[float, ...]
    scale: float | None
    recipe: dict | None
    cell_line: str | None = None
    topology: str | None = None

    @classmethod
    def from_hparams(cls, data: dict | None, *, source: str | Path = "model") -> TrainingRecord:
        """Build the record from a checkpoint's ``dataset`` hyper-parameter (older files lack some keys).

        Every value passes the rule its option passes on the command line, so that a model file cannot set
        what an option may not (a NaN frame interval, an infinite scale, a recipe that asks for 95 GiB).

        Raises
        ------
        InputError
            ``<source>: dataset.<field>: <rule>`` for the first value that breaks its rule.
        """
        data = data or {}
        if not isinstance(data, dict):
            raise InputError(source, f"dataset: must be a mapping, got {type(data).__name__}")
        recipe = data.get("recipe")
        if recipe is not None:
            check_recipe(recipe, source)
        line = data.get("cell_line", (recipe or {}).get("cell_line"))
        if "topology" in data:
            topology = data["topology"]
        else:
            known = LINES.get(line) if isinstance(line, str) else None
            topology = None if known is None else known.topology
        rules = {
            "path": (Text(), data.get("path")),
            "sequences": (ListOf(Text(null=False)), list(data.get("sequences") or ())),
            "frames": (ListOf(Whole(1)), list(data.get("frames") or ())),
            "frame_interval": (ListOf(Real(0, above=True)), list(data.get("frame_interval") or ())),
            "scale": (Real(0, above=True, null=True), data.get("scale")),
            "cell_line": (Text(), line),
            "topology": (OneOf(RULES, null=True), topology),
        }
        for key, (rule, value) in rules.items():
            try:
                rule(f"dataset.{key}", value)
            except InputError as err:
                raise InputError(source, str(err)) from None
        return cls(
            data.get("path"),
            tuple(data.get("sequences") or ()),
            tuple(int(f) for f in data.get("frames") or ()),
            tuple(float(f) for f in data.get("frame_interval") or ()),
            None if data.get("scale") is None else float(data["scale"]),
            recipe,
            line,
            topology,
        )

    def mean_span(self) -> float | None:
        """Mean duration of the training sequences in seconds; None when the record lacks frame intervals."""
        if not self.frame_interval or len(self.frame_interval) != len(self.frames):
            return None
        return float(np.mean([(f - 1) * dt for f, dt in zip(self.frames, self.frame_interval, strict=True)]))


class TrainedModel:
    """A trained auto-decoder with the settings that belong to it (the clamp, the data's scale and times).

    Load one with :func:`load_trained`. Decoding goes through :meth:`decode_masks`, which always uses the
    model's own training clamp.

    Parameters
    ----------
    module : AutoDecoder
        The trained Lightning module.
    file : Path
        The checkpoint it was loaded from (named in errors and manifests).
    sampler : dict, optional
        The latent sampler chosen for this model by its fidelity scores (``name`` and its settings, as
        ``cellsdf generate``'s ``sampler``), stored in the model file; None when none was chosen.
    parts : ProtrusionModel, optional
        For a composed model (a body and protrusions), its protrusions: the auto-decoder then learned the
        cells' bodies, and every decoded cell is its body joined with tubes (:meth:`field`).
    """

    def __init__(
        self,
        module: AutoDecoder,
        file: Path,
        sampler: dict | None = None,
        parts: ProtrusionModel | None = None,
    ):
        self.module = module
        self.file = file
        self.sampler = sampler
        self.parts = parts
        self.data = TrainingRecord.from_hparams(module.hparams.get("dataset"), source=file)
        if parts is not None and len(parts.sequences) != self.module.latents.num_embeddings:
            raise InputError(file, "protrusions: one track record per training sequence is needed")

    @property
    def decoder(self) -> SirenDecoder:
        """The shared SIREN decoder."""
        return self.module.decoder

    @property
    def clamp(self) -> float:
        """Distance (normalised units) up to which the decoder's outputs are trained distances."""
        return float(self.module.hparams.clamp)

    @property
    def code_reg(self) -> float:
        """Weight of the latent prior used in training."""
        return float(self.module.hparams.code_reg)

    @property
    def latent_std(self) -> float:
        """Standard deviation of the codes' initialisation."""
        return float(self.module.hparams.latent_std)

    @property
    def latents(self) -> np.ndarray:
        """(S, L) learned codes, float64."""
        return self.module.latents.weight.detach().cpu().double().numpy()

    @property
    def rotations(self) -> np.ndarray | None:
        """(S, 3) learned rotation vectors, or None when the model learned none."""
        rotations = self.module.rotations
        return None if rotations is None else rotations.weight.detach().cpu().double().numpy()

    @property
    def device(self) -> torch.device:
        """Where the decoder's weights are."""
        return next(self.decoder.parameters()).device

    def scale(self) -> float:
        """Normalised units per µm of the training data; InputError when the checkpoint does not say."""
        if self.data.scale is None:
            raise InputError(self.file, "the checkpoint does not record its training data's voxel scale")
        return self.data.scale

    def code(self, index: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Return learned sequence ``index``'s code (L,) and rotation vector (3,) or None, as tensors."""
        latent = self.module.latents.weight[index].detach()
        rotation = None if self.module.rotations is None else self.module.rotations.weight[index].detach()
        return latent, rotation

    def require_whole_cells(self, command: str) -> None:
        """Refuse a body-and-protrusions model where ``command`` fits the decoder to whole cells.

        Raises
        ------
        InputError
            Naming the model file and the whole-cell model to use instead.
        """
        if self.parts is not None:
            raise InputError(
                self.file,
                f"is a body-and-protrusions model, whose decoder knows only bodies; {command} needs a model "
                "of whole cells (for filo: ckpt=filo_whole)",
            )

    def field(
        self, code: torch.Tensor, *, sequence: int | None = None, rotation: torch.Tensor | None = None
    ) -> torch.nn.Module:
        """Return the field that decodes ``code``: the decoder, or for a composed model its body and tubes.

        Parameters
        ----------
        code : torch.Tensor
            (L,) code.
        sequence : int, optional
            A composed model's training sequence whose measured protrusions join the body; None: new ones
            drawn from the protrusion model with a generator seeded by the code (one code, one cell).
        rotation : torch.Tensor, optional
            (3, 3) rotation the decoder applies to the coordinates (measured tubes are turned with it).
        """
        if self.parts is None:
            return self.decoder
        if sequence is None:
            tubes = drawn_tubes(self.decoder, code, self.parts.draw(code_rng(code.detach().cpu().numpy())))
        else:
            tubes = self.parts.training_tubes(sequence, None if rotation is None else rotation.numpy())
        return ComposedField(self.decoder, tubes, float(self.parts.settings["blend"]))

    def decode_masks(
        self,
        latent: np.ndarray | torch.Tensor,
        times: Iterable[float],
        *,
        resolution: int,
        sequence: int | None = None,
        rotation: np.ndarray | torch.Tensor | None = None,
        scale: float = 1.0,
        translation: np.ndarray | torch.Tensor | None = None,
        precision: str = "32",
        tracking: bool = False,
        join: float = JOIN_TOLERANCE,
        count_components: bool = False,
    ) -> tuple[Iterator[np.ndarray], DecodeLog]:
        """Decode a code frame by frame into binary masks with this model's clamp.

        With a scale or a translation the cell is placed in the grid's frame
        (:mod:`cellsdf.model.placement`): grid point p shows the model point R·(p − c) / s.

        Parameters
        ----------
        latent : array or tensor
            (L,) code.
        times : iterable of float
            Times in [-1, 1].
        resolution : int
            Grid side over [-1, 1]³.
        sequence : int, optional
            For a composed model, the training sequence whose measured protrusions to use (:meth:`field`).
        rotation : array or tensor, optional
            (3,) rotation vector the model applies to the coordinates.
        scale : float
            Placement scale s (grid units per model unit).
        translation : array or tensor, optional
            (3,) placement translation c (grid units); default the origin.
        precision : {'auto', '32', 'bf16'}
            Type of the decoder's hidden products; ``auto``: bf16 where this device computes it natively
            (:func:`~cellsdf.decode.dense.resolve_precision`).
        tracking : bool
            Follow each frame's surface from the previous one (:func:`~cellsdf.decode.volumes.decode_masks`).
        join : float
            Join fragments to their cell where the field stays within this many voxels of zero between them
            (:func:`~cellsdf.decode.join.join_fragments`); 0: the plain ``sdf <= 0`` mask.
        count_components : bool
            Count every frame's 26-connected components into the log even with ``join`` 0 (joining counts
            them anyway).

        Returns
        -------
        masks : iterator of np.ndarray
            bool (R, R, R) mask per time, ``sdf <= 0`` with any joining paths, decoded as it is drawn.
        log : DecodeLog
            Frames where tracking was lost (decoded from the coarse grid instead) and, when joining or
            counting, each frame's fragments joined and 26-connected components, filled as ``masks`` yields
            (:class:`~cellsdf.decode.volumes.DecodeLog`).
        """
        parameter = next(self.decoder.parameters())
        precision = resolve_precision(precision, parameter.device)
        code = torch.as_tensor(latent, dtype=parameter.dtype, device=parameter.device)
        matrix = None
        if rotation is not None:
            matrix = axis_angle_matrix(torch.as_tensor(rotation, dtype=torch.float32).detach().cpu())
        field = self.field(code, sequence=sequence, rotation=matrix)
        if scale == 1.0 and translation is None:
            return decode_masks(
                field,
                code,
                times,
                resolution,
                rotation=matrix,
                clamp=self.clamp,
                precision=precision,
                tracking=tracking,
                join=join,
                count_components=count_components,
            )
        placed = PlacedDecoder(
            field,
            np.eye(3),
            np.eye(3) if matrix is None else matrix.double().numpy(),
            scale,
            np.zeros(3) if translation is None else np.asarray(translation, np.float64),
        )
        # Distances come out in grid units, so the narrow band's blocks grow with the scale.
        return decode_masks(
            placed,
            code,
            times,
            resolution,
            clamp=self.clamp * scale,
            precision=precision,
            tracking=tracking,
            join=join,
            count_components=count_components,
        )

    def to(self, device: torch.device | str) -> TrainedModel:
        """Move the weights to ``device``; return self."""
        self.module.to(device)
        return self


def load_trained(name: str | Path, *, device: torch.device | str = "cpu") -> TrainedModel:
    """Load a trained model from a checkpoint file or a built-in name (``plat``, ``cele``, ``filo``).

    Parameters
    ----------
    name : str or Path
        ``model.pt``, a Lightning checkpoint, or a built-in model name.
    device : torch.device or str
        Where to put the weights.

    Returns
    -------
    TrainedModel

    Examples
    --------
    >>> model = load_trained("plat")
    >>> model.clamp, model.latents.shape[0] > 0
    (0.1, True)
    """
    file = resolve_checkpoint(name)
    checkpoint = read_checkpoint(file)
    parts = checkpoint.get("protrusions")
    parts = None if parts is None else ProtrusionModel.from_file(parts, file)
    return TrainedModel(autodecoder_from(checkpoint, file), file, checkpoint.get("sampler"), parts).to(device)


def select_device(name: str) -> torch.device:
    """Return the torch device for ``auto``, ``cpu`` or ``cuda[:i]``; auto takes CUDA when there is one.

    Examples
    --------
    >>> select_device("cpu")
    device(type='cpu')
    """
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError as err:
        raise InputError("device", f"unknown device {name!r} ({err})") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise InputError("device", "CUDA was asked for but is not available; use device=cpu or device=auto")
    return device
