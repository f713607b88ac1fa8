"""What a generate run writes and how fidelity draws its cells: the options, each stated once with its rule.

Light on purpose (numpy, no torch): the command line checks options against these before a model is loaded.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, replace

from cellsdf.decode.join import JOIN_TOLERANCE
from cellsdf.decode.options import (
    FORMATS,
    MESH_FORMATS,
    PRECISIONS,
    WRITE_BASE_BYTES,
    MeshOptions,
    bytes_per_voxel,
)
from cellsdf.errors import InputError
from cellsdf.generate.sampling import ROTATION, Auto, Sampler
from cellsdf.geometry.topology import RULES
from cellsdf.io.limits import check_grid
from cellsdf.options import (
    SEED_MAX,
    Checked,
    Flag,
    ListOf,
    OneOf,
    Real,
    Text,
    Whole,
    as_list,
    check_fields,
    nested,
    option,
)

TOPOLOGIES = ("auto", "none", *RULES)


def _precision(key: str, value: object) -> None:
    """Check a decode precision: ``auto``, or one of the decoder's (``32``, which YAML reads as a number)."""
    choices = ("auto", *PRECISIONS)
    if isinstance(value, bool) or not isinstance(value, (str, int)) or str(value) not in choices:
        raise InputError(key, f"choose one of {', '.join(choices)}, got {value!r}")


@dataclass(frozen=True, kw_only=True)
class Request:
    """What a generate run writes: the options that decide its files (shards of one run share them).

    Each field is stated once here, with its default and its rule; ``conf/generate.yaml`` holds the same
    defaults (a test compares them) and the command builds the request from its options as they are. A bad
    value raises InputError naming the option.

    Examples
    --------
    >>> Request(ckpt="plat", n=2, frames=3, resolution=32, formats=["tiff"]).n
    2
    >>> Request(n=0)
    Traceback (most recent call last):
    ...
    cellsdf.errors.InputError: n: must be an integer >= 1, got 0
    """

    ckpt: str = option("plat", Text(null=False))  # a model file or a built-in model's name
    n: int = option(4, Whole(1))
    frames: int = option(30, Whole(1))
    resolution: int = option(256, Whole(8))
    seed: int = option(0, Whole(0, SEED_MAX))
    frame_interval: float | None = option(None, Real(0, above=True, null=True))  # seconds
    sampler: Sampler = field(default_factory=Auto)
    rotation: str = option("uniform", ROTATION)
    formats: tuple[str, ...] = option(["tiff", "mesh"], ListOf(OneOf(FORMATS), least=1, one=True))
    mesh_format: str = option("ply", OneOf(MESH_FORMATS))
    mesh: MeshOptions = nested(MeshOptions)
    max_draws: int = option(50, Whole(1))
    topology: str = option("auto", OneOf(TOPOLOGIES))
    precision: str = option("auto", Checked(_precision, "auto, 32 or bf16"))
    tracking: bool = option(True, Flag())
    join: float = option(JOIN_TOLERANCE, Real(0, 10))  # voxels

    def __post_init__(self) -> None:
        check_fields(self)
        if not isinstance(self.sampler, Sampler):
            raise InputError("sampler", f"must be a Sampler, got {self.sampler!r}")
        mesh = self.mesh if isinstance(self.mesh, MeshOptions) else MeshOptions(**self.mesh)
        formats = tuple(str(f) for f in as_list(self.formats))
        # The mesh file type is a top-level option (shared with reconstruct and fit); the mesh carries it.
        object.__setattr__(self, "mesh", replace(mesh, format=self.mesh_format))
        object.__setattr__(self, "formats", formats)
        object.__setattr__(self, "precision", str(self.precision))
        object.__setattr__(self, "ckpt", str(self.ckpt))
        check_grid("resolution", self.resolution, bytes_per_voxel(formats), base=WRITE_BASE_BYTES)

    def key(self) -> dict:
        """Return the request as plain data (the sampler by name and options): what the run key hashes."""
        plain = {f.name: getattr(self, f.name) for f in fields(self)}
        plain.update(sampler=self.sampler.describe(), mesh=asdict(self.mesh), formats=list(self.formats))
        return plain


@dataclass(frozen=True, kw_only=True)
class Drawing:
    """How generated cells are drawn and decoded, as ``cellsdf generate`` does with the same options.

    Attributes
    ----------
    sampler : Sampler
        The sampler (``auto`` takes the model's own).
    rotation : {'uniform', 'none'}
        Rotation of each cell.
    join : float
        Fragment joining tolerance in voxels (:func:`~cellsdf.decode.join.join_fragments`).
    rule : str, optional
        Topology rule a redrawn cell must keep.
    max_draws : int
        1: every cell's first draw; more: draw again until the cell passes, at most this often.
    """

    sampler: Sampler = field(default_factory=Auto)
    rotation: str = option("uniform", ROTATION)
    join: float = option(JOIN_TOLERANCE, Real(0, 10))  # voxels
    rule: str | None = option(None, OneOf(RULES, null=True))
    max_draws: int = option(1, Whole(1))

    def __post_init__(self) -> None:
        check_fields(self)
