"""Render the docs' tables from the files the commands wrote, so that no figure on the site is typed by hand.

A page asks for a table with one line of its own, ``{{ <kind> <argument> ... }}``; this MkDocs hook
(``hooks:`` in ``mkdocs.yml``) replaces the line by the table, followed by the command that made the file
(from ``docs/results/sources.yaml``). Kinds:

- ``options <command>``: every option of a command (``common``: those every command takes), its default
  (``conf/``), what it must be (the rule the command line checks it with) and its comment in ``conf/``.
- ``fidelity <fidelity.json>``: one scorecard, as ``cellsdf fidelity`` writes it.
- ``fidelity-summary <fidelity.json> ...``: one row per model.
- ``samplers <manifest.json> [key]``: the samplers a model's choice was made from (its manifest's scores), or
  another set of trials the manifest records under ``key`` (``protrusion_noise``).
- ``models <manifest.json> ...``: how each shipped model was trained and how well it reconstructs.
- ``bench <bench.json> [<row text> ...]``: ``cellsdf bench`` rows (those whose name contains a text).
- ``lift <lift.json> <line>``: ``cellsdf lift-eval`` means for one cell line.
- ``segment-eval <table.json>``: ``cellsdf segment-eval``'s summary.
- ``realism3d <json> <key>``: ``cellsdf realism``'s table (``key`` picks it out of a manifest, or ``.``).
- ``realism2d <manifest.json>``: the texture models against the held-out real quarter.

Run as a script, it prints a page with its tables: ``python tools/docs_tables.py docs/results/lift.md``.
"""

from __future__ import annotations

import json
import re
import shlex
import sys
import warnings
from collections.abc import Callable
from pathlib import Path

import yaml

DOCS = Path(__file__).resolve().parents[1] / "docs"
SOURCES = DOCS / "results" / "sources.yaml"
CONF = DOCS.parent / "conf"
_ENTRY = re.compile(r"^( *)([A-Za-z_][\w-]*):[^#]*?(?:#\s*(.*))?$")
MARKER = re.compile(r"^( *)\{\{ *([a-z0-9-]+) +(.+?) *\}\}$", re.MULTILINE)


def _load(path: str) -> dict:
    return json.loads((DOCS / path).read_text())


def _source(paths: list[str]) -> str:
    """Say which command made each file, when and where (from ``sources.yaml``)."""
    sources = yaml.safe_load(SOURCES.read_text())
    lines = []
    for path in paths:
        folder = str(Path(path).parent)
        if path in sources:
            entry = sources[path]
        elif folder in sources:
            entry = sources[folder]
        else:
            raise KeyError(f"{path}: no entry for it (or its folder) in {SOURCES.relative_to(DOCS.parent)}")
        if entry not in lines:
            lines.append(entry)
    return "".join(f"\n\n*Made by* `{e['command']}` ({e['when']}; {e['machine']})." for e in lines)


def _comments(path: Path) -> dict[str, str]:
    """Return the comment beside each option of a config file, by its dotted name (``mesh.faces``)."""
    comments: dict[str, str] = {}
    parents: list[tuple[int, str]] = []
    last = None
    for line in path.read_text().splitlines():
        if line.lstrip().startswith("#") and line.startswith(" ") and last in comments:
            # an indented comment line goes on with the comment of the entry above it
            comments[last] += " " + line.strip().lstrip("#").strip().replace("|", "\\|")
            continue
        match = _ENTRY.match(line)
        last = None
        if not match or line.lstrip().startswith("-"):
            continue
        indent, key, comment = len(match.group(1)), match.group(2), match.group(3)
        parents = [(i, k) for i, k in parents if i < indent]
        name = ".".join([k for _, k in parents] + [key])
        parents.append((indent, key))
        if comment:
            comments[name] = comment.replace("|", "\\|")
            last = name
    return comments


_GROUP = re.compile(r"^  - ([\w/]+)(?:@([\w.]+))?: *(\w+)", re.MULTILINE)


def _config_comments(path: Path) -> dict[str, str]:
    """Return the comments of a command's config and of the group files its defaults choose, by option."""
    comments = _comments(path)
    for match in _GROUP.finditer(path.read_text()):
        group, package, choice = match.groups()
        chosen = CONF / group / f"{choice}.yaml"
        if group != "hydra" and chosen.exists():
            prefix = (package or group).replace("/", ".")
            comments.update({f"{prefix}.{key}": text for key, text in _comments(chosen).items()})
    return comments


def options(command: str) -> str:
    """Every option of a command: name, default, what it must be."""
    from omegaconf import DictConfig, ListConfig, OmegaConf

    from cellsdf.cli import composed_defaults
    from cellsdf.schema import COMMON, SCHEMAS

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # common.yaml, composed alone, has no _self_ in its defaults
        config = composed_defaults(command.replace("-", "_"))
    comments = _config_comments(CONF / f"{command.replace('-', '_')}.yaml")
    # ``common`` is the options every command takes; a command's own table leaves them out.
    rules = COMMON if command == "common" else SCHEMAS[command]

    def flat(node: DictConfig, prefix: str = "") -> list[tuple[str, object]]:
        rows = []
        for key, value in node.items():
            if key == "_target_":
                continue
            name = f"{prefix}{key}"
            rows += flat(value, f"{name}.") if isinstance(value, DictConfig) else [(name, value)]
        return rows

    lines = ["| option | default | must be | what it is |", "|---|---|---|---|"]
    for name, value in flat(config):
        if name.startswith("hydra.") or (command != "common" and name in COMMON):
            continue
        rule = rules.get(name)
        expects = getattr(rule, "expects", "") if rule is not None else ""
        plain = OmegaConf.to_container(value) if isinstance(value, ListConfig) else value
        shown = json.dumps(plain, ensure_ascii=False).replace('"', "").replace("|", "\\|")
        lines.append(f"| `{name}` | `{shown}` | {expects} | {comments.get(name, '')} |")
    return "\n".join(lines)


def _by_key(figures: list[dict] | dict) -> dict:
    if isinstance(figures, dict):
        return figures
    return {figure["key"]: figure for figure in figures}


def _fig(figures: dict, key: str, digits: int = 1) -> str:
    figure = figures.get(key)
    if figure is None or figure.get("value") is None:
        return "–"
    return f"{figure['value']:.{digits}f} ({figure['floor']:.{digits}f})"


def _met(figures: dict) -> str:
    judged = [f["meets"] for f in figures.values() if f.get("meets") is not None]
    return f"{sum(judged)} of {len(judged)}"


def _misses(figures: dict) -> str:
    short = {"one_nna": "1-NNA", "topology_kept": "topology", "end_points_ratio": "end points"}
    missed = [
        short.get(key, key.removeprefix("w1/")) for key, f in figures.items() if f.get("meets") is False
    ]
    return ", ".join(missed) or "none"


_SUMMARY_HEADER = (
    "| 1-NNA % (floor) | topology kept % (floor) | end points × ref. | novelty × (floor) "
    "| copies % (floor) | not met | targets met |"
)


def _summary_cells(figures: dict) -> str:
    return (
        f"{_fig(figures, 'one_nna')} | {_fig(figures, 'topology_kept')} | "
        f"{figures['end_points_ratio']['value']:.2f} | {_fig(figures, 'novelty_ratio', 2)} | "
        f"{_fig(figures, 'copies')} | {_misses(figures)} | {_met(figures)}"
    )


def fidelity_summary(*paths: str) -> str:
    """One row per model: its sampler and the figures that decide whether its cells are new and faithful."""
    lines = ["| model (sampler), grid | " + _SUMMARY_HEADER[2:], "|---" * 8 + "|"]
    for path in paths:
        report = _load(path)
        sampler = ", ".join(f"{k} {v}" for k, v in report["sampler"].items() if k not in ("name", "rotation"))
        name = f"{report['cell_line']} ({report['sampler']['name']}{', ' + sampler if sampler else ''})"
        lines.append(f"| {name}, {report['grid']}³ | {_summary_cells(_by_key(report['figures']))} |")
    return "\n".join(lines) + _source(list(paths))


def fidelity(path: str) -> str:
    """One model's whole scorecard."""
    from cellsdf.evaluate.fidelity import scorecard_table

    return scorecard_table(_load(path)) + _source([path])


def samplers(path: str, key: str = "sampler_choice") -> str:
    """Every sampler tried for a shipped model as its manifest records them (or another set of trials)."""
    choice = _load(path)[key]
    lines = ["| sampler | " + _SUMMARY_HEADER[2:], "|---" * 8 + "|"]
    for name, figures in choice["scores"].items():
        shown = "learned codes (`around`, noise 0)" if name == "train" else name
        if name == choice["chosen"]:
            shown += " (chosen)"
        lines.append(f"| {shown} | {_summary_cells(figures)} |")
    return "\n".join(lines) + f"\n\n*Scored with* `{choice['command']}`; rule: {choice['rule']}."


def models(*paths: str) -> str:
    """Tabulate the shipped shape models: data, training, reconstruction."""
    lines = [
        "| model | training data | minutes | epochs | val loss | IoU | Dice | Chamfer (µm) | HD95 (µm) |",
        "|---" * 9 + "|",
    ]
    for path in paths:
        manifest = _load(path)
        item = manifest["items"][0]
        scores = manifest["reconstruction"]["mean"]
        lines.append(
            f"| {Path(path).parent.name} | {item['sequences']} sequences, {item['frames']} frames "
            f"| {manifest['training_seconds'] / 60:.0f} | {manifest['epochs']} | {manifest['val_loss']:.4f} "
            f"| {scores['iou']:.3f} | {scores['dice']:.3f} | {scores['chamfer']:.3f} "
            f"| {scores['hausdorff95']:.3f} |"
        )
    commands = "; ".join(f"`{_load(p)['produced_by']}`" for p in paths)
    return (
        "\n".join(lines) + f"\n\n*Trained by* {commands}; each manifest's `scored_by` says how it was scored."
    )


def bench(path: str, *contains: str) -> str:
    """``cellsdf bench`` rows, as the command prints them."""
    from cellsdf.bench.row import COLUMNS, Row

    report = _load(path)
    lines = ["| " + " | ".join(COLUMNS) + " |", "|---" * len(COLUMNS) + "|"]
    for entry in report["rows"]:
        if contains and not any(text in entry["row"] for text in contains):
            continue
        row = Row(
            entry["row"],
            entry["ours"],
            entry["reference"],
            entry["ratio"],
            entry["target"],
            entry["passed"],
            entry["peak_mib"],
        )
        lines.append("| " + " | ".join(cell.replace("|", "\\|") for cell in row.cells()) + " |")
    return "\n".join(lines) + _source([path])


def lift(path: str, line: str) -> str:
    """``cellsdf lift-eval``'s means for one cell line."""
    from cellsdf.tasks.lift_eval import table

    result = _load(path)["lines"][line]
    verdicts = "\n".join(
        f"- {name}: {'met' if met else 'not met'}" for name, met in result["targets"].items()
    )
    return table(line, result["mean"]) + "\n\nTargets:\n\n" + verdicts + _source([path])


def segment_eval(path: str) -> str:
    """``cellsdf segment-eval``'s summary table and targets."""
    from cellsdf.segment.experiment import table_markdown

    return table_markdown(_load(path)) + _source([path])


def realism3d(path: str, key: str) -> str:
    """``cellsdf realism``'s table, from its own file or from a texture model's manifest."""
    from cellsdf.benchmark.realism3d import realism_markdown

    data = _load(path)
    return realism_markdown(data if key == "." else data[key]) + _source([path])


def realism2d(path: str) -> str:
    """Tabulate the 2D texture models against the real quarter they never saw."""
    realism = _load(path)["realism"]
    lines = [
        "| texture | W1 foreground (ADU) | W1 background (ADU) | spectrum distance | Otsu SEG "
        "| mean nucleus / background (ADU) |",
        "|---|---|---|---|---|---|",
    ]
    first = next(v for v in realism.values() if isinstance(v, dict))
    lines.append(
        f"| real held-out quarter | – | – | – | {first['seg_real']:.3f} "
        f"| {first['mean_real_foreground']:.1f} / {first['mean_real_background']:.1f} |"
    )
    for name, value in realism.items():
        if isinstance(value, dict):
            lines.append(
                f"| {name} | {value['w1_foreground']:.1f} | {value['w1_background']:.2f} "
                f"| {value['spectrum_distance']:.3f} | {value['seg_synthetic']:.3f} "
                f"| {value['mean_synthetic_foreground']:.1f} / {value['mean_synthetic_background']:.1f} |"
            )
    return "\n".join(lines) + _source([path])


KINDS: dict[str, Callable[..., str]] = {
    "options": options,
    "fidelity": fidelity,
    "fidelity-summary": fidelity_summary,
    "samplers": samplers,
    "models": models,
    "bench": bench,
    "lift": lift,
    "segment-eval": segment_eval,
    "realism3d": realism3d,
    "realism2d": realism2d,
}


def render(markdown: str, *, page: str = "") -> str:
    """Replace every ``{{ kind argument ... }}`` line of a page by its table; an unknown kind is an error."""

    def one(match: re.Match) -> str:
        indent, kind, arguments = match.group(1), match.group(2), shlex.split(match.group(3))
        if kind not in KINDS:
            raise ValueError(f"{page}: unknown table kind {kind!r} (known: {', '.join(KINDS)})")
        # an indented marker (inside a collapsible block) gets its table indented alike
        return "\n".join(indent + line if line else line for line in KINDS[kind](*arguments).splitlines())

    return MARKER.sub(one, markdown)


def on_page_markdown(markdown: str, page, config, files) -> str:  # noqa: ANN001 (MkDocs' hook signature)
    """MkDocs hook: render the page's tables."""
    return render(markdown, page=page.file.src_path)


# Sphinx roles in the NumPy docstrings (``:func:`x```), which mkdocstrings leaves as text before the code.
_ROLE = re.compile(r":(?:func|meth|class|data|attr|mod|obj):<code>~?")


def on_page_content(html: str, page, config, files) -> str:  # noqa: ANN001 (MkDocs' hook signature)
    """MkDocs hook: show a docstring's ``:func:`~a.b``` as the code ``a.b`` alone."""
    return _ROLE.sub("<code>", html)


if __name__ == "__main__":
    print(render(Path(sys.argv[1]).read_text(), page=sys.argv[1]))
