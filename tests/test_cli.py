import json
import shutil
import site
import sys
import venv
from pathlib import Path

import pytest
from helpers import run_ok

from cellsdf.cli import COMMANDS, main


def test_help_lists_every_command_with_one_line(capsys):
    main(["--help"])
    out = capsys.readouterr().out
    for name, text in COMMANDS.items():
        assert f"{name}  " in out and text in out


def test_unknown_command_exits_2(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["frobnicate"])
    assert exit_info.value.code == 2
    assert "unknown command 'frobnicate'" in capsys.readouterr().err


def see_the_packages_of_this_python(env_dir):
    """Let a new virtual environment import what the Python running the tests can (torch, ...).

    A venv's system site is its base Python's; when the tests run inside a venv, that is not where torch
    was installed. The new venv's own site-packages (where the wheel goes) still come first.
    """
    purelib = run_ok(
        [env_dir / "bin" / "python", "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"]
    )
    sites = [*site.getsitepackages(), *([site.getusersitepackages()] if site.ENABLE_USER_SITE else [])]
    # addsitedir also runs the .pth files there, which some packages need to be importable.
    lines = "".join(f"import site; site.addsitedir({path!r})\n" for path in sites if Path(path).is_dir())
    (Path(purelib.stdout.strip()) / "_tests_python.pth").write_text(lines)


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """The package built as a wheel and installed in a new virtual environment; returns that environment."""
    tmp_path = tmp_path_factory.mktemp("wheel")
    # Build from a clean copy: setuptools leaves a build/ folder whose stale modules would enter later wheels.
    source = tmp_path / "src"
    junk = shutil.ignore_patterns(".git", "build", "*.egg-info", "__pycache__", ".*_cache", ".venv*", "venv")
    shutil.copytree(Path(__file__).resolve().parents[1], source, ignore=junk)
    run_ok(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            tmp_path / "dist",
            source,
        ]
    )
    (wheel,) = (tmp_path / "dist").glob("cellsdf-*.whl")
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=False)
    see_the_packages_of_this_python(env_dir)
    python = env_dir / "bin" / "python"
    run_ok([sys.executable, "-m", "pip", "--python", python, "install", "--no-deps", "--quiet", wheel])
    return env_dir


def test_wheel_installs_and_runs_outside_the_source_tree(installed, tmp_path):
    """A plain (non-editable) install must carry conf/ and data/ inside the package."""
    env_dir, python = installed, installed / "bin" / "python"
    run = run_ok(
        [
            python,
            "-c",
            "import cellsdf, importlib.resources as r; print(cellsdf.__file__); "
            "print(r.files('cellsdf.assets').joinpath('real/dsb2018_nuclei_img.tif').is_file()); "
            "from cellsdf.model.checkpoint import load_autodecoder; "
            "print(load_autodecoder('plat').latents.num_embeddings)",
        ],
        cwd=tmp_path,
    )
    location, asset, sequences = run.stdout.split()
    assert str(env_dir) in location and asset == "True" and sequences == "33"  # a shipped model loads
    out = tmp_path / "sim"
    cellsdf = env_dir / "bin" / "cellsdf"
    run_ok(
        [
            cellsdf,
            "simulate",
            "cellline=cele",
            "sequences=1",
            "frames=3",
            "size=24",
            f"out={out}",
            "progress=false",
        ],
        cwd=tmp_path,
    )
    assert (out / "cele_000.tif").is_file() and (out / "manifest.json").is_file()


@pytest.mark.slow
def test_a_shipped_model_reconstructs_its_cells_in_a_fresh_environment(installed, tmp_path):
    """The shipped model's training data are made again from its recipe (33 x 30 frames at 128³: minutes)."""
    recon = tmp_path / "recon"
    run_ok(
        [
            installed / "bin" / "cellsdf",
            "reconstruct",
            "ckpt=cele",
            "sequences=[cele_000]",
            "resolution=16",
            "frames=2",
            "formats=tiff",
            f"data.remake_in={tmp_path / 'cache'}",
            f"out={recon}",
            "progress=false",
        ],
        cwd=tmp_path,
    )
    metrics = json.loads((recon / "metrics.json").read_text())
    assert metrics["mean"]["iou"] > 0.9  # the shipped cele model's training cells, scored on its data


@pytest.mark.parametrize("value", ["no", "off", "0", "nope"])
def test_a_switch_that_is_not_true_or_false_is_refused_and_nothing_is_replaced(tmp_path, capsys, value):
    from helpers import blob

    from cellsdf.io.tiff import write_timelapse

    write_timelapse(tmp_path / "cell.tif", blob()[None])
    out = tmp_path / "d.h5"
    out.write_bytes(b"an earlier result")
    with pytest.raises(SystemExit) as exit_info:
        main(["prepare", f"input={tmp_path / 'cell.tif'}", f"out={out}", f"overwrite={value}"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "overwrite" in err[0] and "true or false" in err[0]
    assert out.read_bytes() == b"an earlier result"
