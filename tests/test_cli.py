import json
import shutil
import subprocess
import sys
import venv
from pathlib import Path

import pytest

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


def test_wheel_installs_and_runs_outside_the_source_tree(tmp_path):
    """A plain (non-editable) install must carry conf/ and data/ inside the package."""
    # Build from a clean copy: setuptools leaves a build/ folder whose stale modules would enter later wheels.
    source = tmp_path / "src"
    junk = shutil.ignore_patterns(".git", "build", "*.egg-info", "__pycache__", ".*_cache")
    shutil.copytree(Path(__file__).resolve().parents[1], source, ignore=junk)
    build = ["wheel", "--no-deps", "--no-build-isolation", "-w", tmp_path / "dist", source]
    subprocess.run([sys.executable, "-m", "pip", *build], check=True, capture_output=True)
    (wheel,) = (tmp_path / "dist").glob("cellsdf-*.whl")
    env_dir = tmp_path / "venv"
    venv.create(env_dir, system_site_packages=True, with_pip=False)
    python = env_dir / "bin" / "python"
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", python, "install", "--no-deps", "--quiet", wheel],
        check=True,
        capture_output=True,
    )
    run = subprocess.run(
        [
            python,
            "-c",
            "import cellsdf, importlib.resources as r; print(cellsdf.__file__); "
            "print(r.files('cellsdf.assets').joinpath('real/dsb2018_nuclei_img.tif').is_file()); "
            "from cellsdf.model.checkpoint import load_autodecoder; "
            "print(load_autodecoder('plat').latents.num_embeddings)",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    )
    location, asset, sequences = run.stdout.split()
    assert str(env_dir) in location and asset == "True" and sequences == "33"  # a shipped model loads
    out = tmp_path / "sim"
    cli = subprocess.run(
        [
            env_dir / "bin" / "cellsdf",
            "simulate",
            "cellline=cele",
            "sequences=1",
            "frames=3",
            "size=24",
            f"out={out}",
            "progress=false",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert cli.returncode == 0, cli.stderr
    assert (out / "cele_000.tif").is_file() and (out / "manifest.json").is_file()
    # A shipped model reconstructs its own training cells anywhere: the data are made again from its recipe
    # (cele's, 8 x 10 frames at 64³, is the quickest to make).
    recon = tmp_path / "recon"
    cli = subprocess.run(
        [
            env_dir / "bin" / "cellsdf",
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
        capture_output=True,
        text=True,
    )
    assert cli.returncode == 0, cli.stderr
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
