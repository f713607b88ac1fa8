"""The docs build, their tables come from the commands' files, their commands parse, the notebook runs."""

import importlib.util
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from cellsdf.cli import COMMANDS
from cellsdf.schema import check_options

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
PAGES = [ROOT / "README.md", *sorted(DOCS.rglob("*.md"))]
NOTEBOOK = DOCS / "tutorials" / "first-cells.ipynb"


def _tables():
    spec = importlib.util.spec_from_file_location("docs_tables", ROOT / "tools" / "docs_tables.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_mkdocs_build_is_strict_and_passes(tmp_path):
    # strict: a broken link, a missing page or anchor, a table whose file or source is missing stops it
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    options = (tmp_path / "site" / "commands" / "generate" / "index.html").read_text()
    assert "mesh.tolerance" in options and "an integer &gt;= 1" in options
    models = (tmp_path / "site" / "results" / "models" / "index.html").read_text()
    assert "cellsdf fidelity -m ckpt=plat,cele,filo" in models  # the command beside the table


def test_readme_is_short_and_starts_with_what_and_how():
    lines = (ROOT / "README.md").read_text().splitlines()
    assert len(lines) <= 200
    first_screen = "\n".join(lines[:30])
    assert "![" in first_screen and "pip install -e . && cellsdf demo" in first_screen
    assert ".venv-test/bin/python -m pytest" in first_screen


def test_the_readme_test_command_is_what_ci_runs():
    readme = (ROOT / "README.md").read_text()
    command = next(line for line in readme.splitlines() if line.startswith("python -m venv .venv-test"))
    assert command in (ROOT / ".ci" / "run").read_text()


def _results_tables_typed_by_hand(text: str) -> list[str]:
    """Table rows holding a decimal figure: results pages must take those from a command's file."""
    return [line for line in text.splitlines() if line.startswith("|") and re.search(r"\d\.\d", line)]


@pytest.mark.parametrize("page", sorted((DOCS / "results").glob("*.md")), ids=lambda p: p.name)
def test_results_pages_type_no_figure_in_a_table(page):
    assert _results_tables_typed_by_hand(page.read_text()) == []
    assert _results_tables_typed_by_hand("| x | 0.95 |") == ["| x | 0.95 |"]


def test_every_results_file_has_its_command():
    sources = yaml.safe_load((DOCS / "results" / "sources.yaml").read_text())
    for path in (DOCS / "results" / "data").rglob("*.json"):
        relative = path.relative_to(DOCS)
        assert str(relative) in sources or str(relative.parent) in sources, relative
    for entry in sources.values():
        assert entry["command"].startswith("cellsdf ") and entry["when"] and entry["machine"]


def test_a_table_marker_of_an_unknown_kind_stops_the_build():
    tables = _tables()
    with pytest.raises(ValueError, match="unknown table kind 'scores'"):
        tables.render("{{ scores results/x.json }}", page="p.md")
    rendered = tables.render("text\n    {{ options common }}\n", page="p.md")
    assert "    | `seed` | `0` | an integer in [0, 4294967295] |" in rendered


def _documented_commands() -> list[tuple[str, list[str]]]:
    """Every ``cellsdf <command> ...`` line of the fenced shell blocks of the README and the docs."""
    found = []
    for page in PAGES:
        text = page.read_text()
        for block in re.findall(r"```bash\n(.*?)```", text, flags=re.DOTALL):
            for line in block.replace("\\\n", " ").splitlines():
                for part in line.split("&&"):
                    words = shlex.split(part, comments=True)
                    if len(words) > 1 and words[0] == "cellsdf" and words[1] in COMMANDS:
                        found.append((f"{page.relative_to(ROOT)}: {part.strip()}", words[1:]))
    return found


def _overrides(words: list[str]) -> list[str]:
    """The Hydra overrides of a documented command, a sweep's first value standing for the sweep."""
    sweep = "-m" in words
    kept = []
    for word in words:
        if "=" not in word or "<" in word or word.startswith(("hydra/launcher", "hydra.launcher")):
            continue  # placeholders, and launchers that are plugins of their own
        key, value = word.split("=", 1)
        if sweep and not value.startswith(("[", "{", "'")) and "," in value:
            value = value.split(",")[0]
        if "range(" in value:
            continue
        kept.append(f"{key}={value}")
    return kept


@pytest.mark.parametrize("line, words", _documented_commands(), ids=lambda v: v if isinstance(v, str) else "")
def test_documented_commands_name_real_options_with_valid_values(line, words, compose_cfg):
    command = words[0]
    check_options(command, compose_cfg(command.replace("-", "_"), _overrides(words[1:])))


def test_citation_and_licence_agree_with_the_package():
    citation = yaml.safe_load((ROOT / "CITATION.cff").read_text())
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert citation["cff-version"] == "1.2.0" and citation["license"] == "BSD-3-Clause"
    assert f'version = "{citation["version"]}"' in pyproject
    assert 'license = { text = "BSD-3-Clause" }' in pyproject
    assert (ROOT / "LICENSE").read_text().startswith("BSD 3-Clause License")
    assert any(ref.get("doi") == "10.1016/j.media.2023.102991" for ref in citation["references"])


def test_tutorial_notebook_runs(tmp_path, monkeypatch):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    kernelspec = pytest.importorskip("ipykernel.kernelspec")
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    monkeypatch.setenv("CELLSDF_TUTORIAL_OUT", str(tmp_path / "out"))
    # The kernel is this Python (with cellsdf), not whatever "python3" kernel the machine has installed.
    kernelspec.write_kernel_spec(tmp_path / "jupyter" / "kernels" / "python3")
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    nbclient.NotebookClient(
        notebook, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    ).execute()
    assert (tmp_path / "out" / "report" / "report.html").exists()
    assert len(list((tmp_path / "out" / "generated").glob("gen_*/mask.tif"))) == 4
    errors = [o for cell in notebook.cells for o in cell.get("outputs", []) if o.output_type == "error"]
    assert not errors
