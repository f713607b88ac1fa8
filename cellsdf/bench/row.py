"""One ``cellsdf bench`` row: what was timed, our figure against the plain way's, the target, the verdict."""

from __future__ import annotations

from dataclasses import KW_ONLY, dataclass, fields

from cellsdf.bench.measure import TARGET_SIZE

COLUMNS = ("row", "ours", "reference", "ratio", "target", "peak MiB", "passed")

# Fields that only some rows have: left out of the JSON when None, as they were before rows had a type.
_EXTRAS = (
    "points",
    "reference_points",
    "process_peak_mib",
    "sdf_max_abs_deviation",
    "sdf_mean_abs_deviation",
    "compile_seconds",
)


@dataclass(frozen=True)
class Row:
    """One measurement of ``cellsdf bench``.

    Parameters
    ----------
    name : str
        What was measured, with its unit in brackets (the ``row`` entry of ``bench.json``).
    ours : float or None
        Our figure; None when the variant is not available here.
    reference : float or None
        The plain way's figure on the same input, in the same run; None when there is none.
    ratio : float or None
        The comparison the target is stated in (a speed-up, a throughput ratio, a memory ratio).
    target : str
        The target in words; a text in brackets is a remark, not a target.
    passed : bool or None
        Verdict; None when not judged (sizes other than the one the target is stated for, or no target).
    peak_mib : float or None
        Peak memory of our way in MiB (how it is measured is said by the row function).
    points, reference_points : int, optional
        Decoder calls of our way and of the plain way (decode rows). This and the optional fields below are
        keyword-only.
    process_peak_mib : float, optional
        Peak resident memory of the whole decoding process (decode memory row).
    sdf_max_abs_deviation, sdf_mean_abs_deviation : float, optional
        Deviation of the SDF from float32 on the same inputs (bf16 training row).
    compile_seconds : float, optional
        Seconds spent compiling (``torch.compile`` training row).

    Examples
    --------
    >>> row = Row("simulate plat 32³ (s/frame)", 0.5, None, None, "<= 2 s/frame at 256³", None, 1.0)
    >>> row.to_dict()["row"], row.cells()[-1]
    ('simulate plat 32³ (s/frame)', '- (judged at 256³)')
    """

    name: str
    ours: float | None
    reference: float | None
    ratio: float | None
    target: str
    passed: bool | None
    peak_mib: float | None
    _: KW_ONLY
    points: int | None = None
    reference_points: int | None = None
    process_peak_mib: float | None = None
    sdf_max_abs_deviation: float | None = None
    sdf_mean_abs_deviation: float | None = None
    compile_seconds: float | None = None

    def to_dict(self) -> dict:
        """Return the row as ``bench.json`` holds it.

        Returns
        -------
        dict
            ``row``, ``ours``, ``reference``, ``ratio``, ``target``, ``passed``, ``peak_mib``, then those of
            the optional fields that are set.
        """
        entry: dict = {"row": self.name}
        for item in fields(self)[1:]:
            value = getattr(self, item.name)
            if item.name not in _EXTRAS or value is not None:
                entry[item.name] = value
        return entry

    def verdict(self) -> str:
        """Return the verdict in words: ``yes``, ``NO``, or ``-`` with why there is none."""
        if self.passed is None:
            return "-" if self.target.startswith("(") else f"- (judged at {TARGET_SIZE}³)"
        return "yes" if self.passed else "NO"

    def cells(self) -> tuple[str, ...]:
        """Return the row's table cells, in the order of :data:`COLUMNS`."""
        return (
            self.name,
            _number(self.ours),
            _number(self.reference),
            "-" if self.ratio is None else f"{self.ratio:.1f}x",
            self.target,
            _number(self.peak_mib, 0),
            self.verdict(),
        )


def _number(value: float | None, digits: int = 3) -> str:
    if value is None:
        return "-"
    return f"{value:.{digits}f}" if value < 1000 else f"{value:.0f}"
