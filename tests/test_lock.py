import os
import subprocess
import sys

import pytest
from helpers import blob, dead_pid

from cellsdf.cli import main
from cellsdf.io.atomic import temporary_name
from cellsdf.io.lock import writing_file, writing_folder
from cellsdf.io.tiff import write_timelapse

GENERATE = ["generate", "ckpt=plat", "n=1", "resolution=16", "frames=2", "formats=[tiff]", "progress=false"]


def refused(capsys, args):
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    assert exit_info.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1
    return lines[0]


def test_a_second_generate_into_a_folder_being_written_is_refused_with_one_line(tmp_path, capsys):
    out = tmp_path / "gen"
    (out / "notes").mkdir(parents=True)
    with writing_folder(out, part="shard0"):  # this process plays the first run
        line = refused(capsys, [*GENERATE, f"out={out}"])
        assert sorted(p.name for p in out.iterdir()) == [".cellsdf-shard0.lock", "notes"]
    assert f"another cellsdf run (pid {os.getpid()}) is writing here" in line and str(out) in line
    assert sorted(p.name for p in out.iterdir()) == ["notes"]  # the lock goes with its run


def test_shards_of_one_run_write_at_the_same_time(tmp_path, capsys):
    out = tmp_path / "gen"
    with writing_folder(out, part="shard1"):
        main([*GENERATE, "n=2", "shard=0", "num_shards=2", f"out={out}"])
    assert (out / "gen_000" / "mask.tif").is_file()


def test_what_a_killed_run_left_is_cleared_and_a_live_run_keeps_its_files(tmp_path):
    out = tmp_path / "gen"
    out.mkdir()
    gone = dead_pid()
    (out / ".cellsdf-shard0.lock").write_text(f"{gone} somewhere\n")  # the lock of a killed run
    stale_cell = out / temporary_name("gen_000", kind="partial", pid=gone)
    (stale_cell / "mesh").mkdir(parents=True)
    stale_file = out / temporary_name("manifest", suffix=".json", pid=gone)
    stale_file.write_text("{")
    live_file = out / temporary_name("run", suffix=".json", pid=os.getppid())  # a run still writing
    live_file.write_text("{")
    main([*GENERATE, f"out={out}"])
    names = sorted(p.name for p in out.iterdir())
    assert names == sorted([live_file.name, "gen_000", "manifest.json", "run.json"])


def test_an_output_file_is_locked_beside_it(tmp_path, capsys):
    write_timelapse(tmp_path / "cell.tif", blob()[None])
    out = tmp_path / "data" / "cells.h5"
    args = ["prepare", f"input={tmp_path / 'cell.tif'}", f"out={out}", "progress=false"]
    with writing_file(out):
        line = refused(capsys, args)
    assert line.startswith(f"cellsdf prepare: error: {out}: another cellsdf run (pid {os.getpid()})")
    stale = out.parent / temporary_name("cells", suffix=".h5", pid=dead_pid())
    stale.write_bytes(b"half a file")
    main(args)
    assert sorted(p.name for p in out.parent.iterdir()) == ["cells.h5"]


def test_the_package_imports_and_locks_without_fcntl(tmp_path):
    # Windows has no fcntl: the lock falls back to msvcrt's byte-range lock (stood in for here by flock).
    code = f"""
import fcntl as real, subprocess, sys, types
sys.modules["fcntl"] = None  # subprocess, imported above, takes a module named msvcrt for Windows
def locking(fd, mode, count):
    real.flock(fd, real.LOCK_EX | real.LOCK_NB)
sys.modules["msvcrt"] = types.SimpleNamespace(LK_NBLCK=2, locking=locking)
import cellsdf.cli, cellsdf.io.lock as lock
assert lock.fcntl is None
from cellsdf.errors import InputError
with lock.writing_folder({str(tmp_path / "out")!r}):
    try:
        with lock.writing_folder({str(tmp_path / "out")!r}):
            raise SystemExit("a second writer was let in")
    except InputError as err:
        assert "another cellsdf run" in str(err), err
print("ok")
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr
