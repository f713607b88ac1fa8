"""The package's layering, walked with ``ast``: thin commands above stages that never reach back up."""

import ast
from pathlib import Path

import cellsdf

PACKAGE = Path(cellsdf.__file__).parent
# Stages in the order they may import each other (README "Layout"): each only from stages before it, plus
# the top-level helpers (errors, options, progress, console, threads) that import no stage. Unlike DESIGN.md's
# list, decode comes before model (the trained model decodes with its own clamp) and evaluate before generate
# and reconstruct (which score with its metrics).
STAGES = [
    "geometry",
    "io",
    "simulate",
    "dataset",
    "decode",
    "model",
    "evaluate",
    "texture",
    "generate",
    "reconstruct",
    "benchmark",
    "lift",
    "bench",
]
HELPERS = {"errors", "options", "progress", "console", "threads", "__init__"}


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return {n for n in names if n == "cellsdf" or n.startswith("cellsdf.")}


def part(module: str) -> str:
    return module.split(".")[1] if module.count(".") else ""


def test_no_task_imports_another_task():
    for path in (PACKAGE / "tasks").glob("*.py"):
        tasks = [m for m in imported_modules(path) if m.startswith("cellsdf.tasks")]
        assert not tasks, f"{path.name} imports {tasks}"


def test_no_stage_imports_a_task_or_the_command_line():
    # The napari plugin is a consumer on top like tasks/: it may import any stage, no stage may import it,
    # and it does not import the commands.
    for path in PACKAGE.rglob("*.py"):
        if path.parent.name == "tasks" or path.name in ("cli.py", "schema.py"):
            continue
        owner = path.relative_to(PACKAGE).parts[0]
        # schema.py holds the command line's rule for every option, naming the stages' choices.
        consumers = {"tasks", "cli", "schema", "napari"} - {owner}
        bad = [m for m in imported_modules(path) if part(m) in consumers]
        assert not bad, f"{path.relative_to(PACKAGE)} imports {bad}"


def test_stages_import_only_stages_before_them():
    order = {name: i for i, name in enumerate(STAGES)}
    for stage in STAGES:
        for path in (PACKAGE / stage).rglob("*.py"):
            for module in imported_modules(path):
                other = part(module)
                if other in HELPERS or other in ("", stage):
                    continue
                assert other in order and order[other] < order[stage], (
                    f"{path.relative_to(PACKAGE)} (stage {stage}) imports {module}"
                )


def test_helpers_import_no_stage():
    for name in HELPERS - {"__init__"}:
        used = {part(m) for m in imported_modules(PACKAGE / f"{name}.py")}
        assert used <= HELPERS, f"{name}.py imports {used - HELPERS}"


def test_every_package_is_in_the_wheel():
    import tomllib

    project = tomllib.loads((PACKAGE.parent / "pyproject.toml").read_text())
    listed = set(project["tool"]["setuptools"]["packages"])
    found = {
        "cellsdf" + ("." + ".".join(p.relative_to(PACKAGE).parts) if p != PACKAGE else "")
        for p in [PACKAGE, *(d for d in PACKAGE.rglob("*") if d.is_dir() and (d / "__init__.py").exists())]
    }
    conf = PACKAGE.parent / "conf"
    found |= {f"cellsdf.conf.{d.name}" for d in conf.iterdir() if (d / "__init__.py").exists()}
    assert found <= listed, f"missing from pyproject.toml: {sorted(found - listed)}"


def test_every_decodable_field_keeps_the_declared_interface():
    import numpy as np

    from cellsdf.decode.field import Field
    from cellsdf.lift.field import FreeField
    from cellsdf.model.placement import PlacedDecoder
    from cellsdf.model.trained import load_trained

    decoder = load_trained("plat").decoder
    placed = PlacedDecoder(decoder, np.eye(3), np.eye(3), 1.0, np.zeros(3))
    for field in (decoder, placed, FreeField((0.0, 0.0, 0.0), 0.5)):
        assert isinstance(field, Field), type(field).__name__
    assert not isinstance(object(), Field)
