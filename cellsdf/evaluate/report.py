"""``report.html``: the evaluation's numbers and figures on one self-contained page (PNGs beside it)."""

from __future__ import annotations

import html
from pathlib import Path

from cellsdf.evaluate.descriptors import UNITS
from cellsdf.io.atomic import atomic_path

_STYLE = """
body { font-family: sans-serif; margin: 2em auto; max-width: 1200px; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: right; }
th { background: #f2f2f2; } td:first-child, th:first-child { text-align: left; }
img { max-width: 100%; border: 1px solid #eee; }
.note { color: #8a5300; } .small { color: #666; font-size: 0.85em; }
"""


def write_report(path: Path, metrics: dict, figures: dict[str, str]) -> Path:
    """Write the HTML report of an evaluation.

    Parameters
    ----------
    path : Path
        Output ``report.html``.
    metrics : dict
        The content of ``metrics.json``.
    figures : dict of str to str
        Caption to PNG file name (relative to the report).

    Returns
    -------
    Path
        The written report.
    """
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8"><title>cellsdf evaluation</title>',
        f"<style>{_STYLE}</style></head><body>",
        "<h1>cellsdf evaluation: generated vs real cells</h1>",
        _inputs(metrics),
        _notes(metrics),
        "<h2>Descriptor distributions</h2>",
        '<p class="small">W/σ: 1-Wasserstein distance divided by the spread (standard deviation) of the real '
        "values; KS: two-sample Kolmogorov–Smirnov statistic (0 for equal distributions, 1 for disjoint "
        "ones).</p>",
        _distribution_table(metrics["distributions"]),
        _sequence_set_section(metrics.get("sequence_sets")),
        _shape_section(metrics.get("shapes")),
    ]
    for caption, name in figures.items():
        parts.append(f"<h2>{html.escape(caption)}</h2>")
        parts.append(f'<img src="{html.escape(name)}" alt="{html.escape(caption)}">')
    parts.append("</body></html>")
    with atomic_path(path) as tmp:
        tmp.write_text("\n".join(parts) + "\n", encoding="utf-8")
    return Path(path)


def _inputs(metrics: dict) -> str:
    rows = []
    for role in ("real", "generated"):
        given = metrics["inputs"][role]
        spacing = "; ".join(
            "(" + ", ".join(f"{v:.4g}" for v in s) + ") µm" for s in metrics["spacing"][role]["spacing"]
        )
        rows.append(
            [role, given["path"], given["sequences"], given["frames"], spacing, given["sha256"][:12] + "…"]
        )
    return _table(["input", "path", "sequences", "frames", "voxel size", "SHA-256"], rows)


def _notes(metrics: dict) -> str:
    lines = [f'<p class="note">{html.escape(n)}</p>' for n in metrics["notes"]]
    problems = metrics["problems"]
    if problems:
        rows = [[p["input"], p["sequence"], p["frame"], p["problem"]] for p in problems]
        lines.append("<h3>Problems</h3>" + _table(["input", "sequence", "frame", "problem"], rows))
    return "\n".join(lines)


def _distribution_table(distributions: dict) -> str:
    rows = []
    for name, d in distributions.items():
        unit = UNITS.get(name, "")
        rows.append(
            [
                f"{name} ({unit})" if unit else name,
                _mean_sd(d["mean_real"], d["std_real"]),
                _mean_sd(d["mean_generated"], d["std_generated"]),
                _number(d["wasserstein_normalised"]),
                _number(d["ks"]),
                _number(d["ks_pvalue"]),
                f"{d['n_real']} / {d['n_generated']}",
            ]
        )
    note = (
        '<p class="small">Per frame, pooled over sequences. W/σ: 1-Wasserstein distance between the two '
        "sets of values divided by the real standard deviation (0 ideal; the fidelity command gives its "
        "floor). KS: Kolmogorov–Smirnov statistic; its p-value treats frames as independent, which frames of "
        "one cell are not, so it is optimistic. n: frames (real / generated).</p>"
    )
    header = ["measure (unit)", "real mean ± sd", "generated mean ± sd", "W/σ", "KS", "KS p", "n frames"]
    return _table(header, rows) + note


def _shape_section(shapes: dict | None) -> str:
    if not shapes:
        return ""
    head = (
        "<h2>Shape sets (Chamfer distance between surface point clouds)</h2>"
        f'<p class="small">{html.escape(shapes["description"])} MMD: mean Chamfer distance (µm) from each '
        "real shape to the closest generated one (lower is better); coverage: fraction of real shapes that "
        "are the closest to some generated shape (higher is better); 1-NNA: leave-one-out "
        "1-nearest-neighbour accuracy telling real from generated (50% is ideal, 100% means the sets are "
        "fully separable). Values in brackets: 95% bootstrap interval over sequences.</p>"
    )
    names = [n for n in ("mmd", "coverage", "1nna") if n in shapes["summary"]]
    intervals = shapes.get("intervals") or {}

    def shown(name: str, value: float | None, interval: list[float] | None = None) -> str:
        # Coverage and 1-NNA are fractions, shown in % as everywhere else in cellsdf.
        if name == "mmd" or value is None:
            return _number(value, interval)
        return _number(100 * value, _percent(interval))

    rows = [["sequences, real vs generated" if shapes["per_frame"] is None else "mean over frames"]]
    rows[0] += [shown(n, shapes["summary"][n], intervals.get(n)) for n in names]
    if shapes.get("floor"):
        rows.append(["floor: real half vs real half"] + [shown(n, shapes["floor"][n]) for n in names])
    for entry in shapes["per_frame"] or []:
        rows.append([f"frame {entry['frame']}"] + [shown(n, entry[n]) for n in names])
    header = {"mmd": "MMD (µm)", "coverage": "coverage (%)", "1nna": "1-NNA (%)"}
    return head + _table(["", *(header[n] for n in names)], rows)


def _sequence_set_section(sets: dict | None) -> str:
    if not sets:
        return ""
    head = (
        "<h2>Sequences as samples (descriptors over time)</h2>"
        f'<p class="small">{html.escape(sets["description"])} 1-NNA: 50% is ideal (indistinguishable), 100% '
        "means the sets are fully separable; coverage: fraction of real sequences that are the nearest real "
        "one of some generated sequence (higher is better); MMD²: about 0 for equal distributions "
        "(unitless). Values in brackets: 95% bootstrap interval.</p>"
    )
    rows = []
    for label, key in (
        ("real vs generated", "real_vs_generated"),
        ("floor: real half vs real half", "floor"),
    ):
        entry = sets.get(key)
        if entry:
            rows.append(
                [
                    label,
                    _number(100 * entry["one_nna"]["value"], _percent(entry["one_nna"]["interval"])),
                    _number(100 * entry["coverage"]["value"], _percent(entry["coverage"]["interval"])),
                    _number(entry["mmd"]["value"], entry["mmd"]["interval"]),
                    f"{entry['n_reference']} / {entry['n_other']}",
                ]
            )
    return head + _table(["", "1-NNA (%)", "coverage (%)", "MMD²", "n"], rows)


def _percent(interval: list[float] | None) -> list[float] | None:
    return None if interval is None else [100 * x for x in interval]


def _table(header: list[str], rows: list[list]) -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _number(value: float | None, interval: list[float] | None = None) -> str:
    if value is None:
        return "–"
    return f"{value:.3g}" + ("" if interval is None else f" [{interval[0]:.3g}–{interval[1]:.3g}]")


def _mean_sd(mean: float | None, sd: float | None) -> str:
    return "–" if mean is None else f"{mean:.4g} ± {sd:.2g}"
