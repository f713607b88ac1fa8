"""Progress shows while work runs, on a terminal as a bar and in a log file as plain lines."""

import subprocess
import sys
import time

import pytest

from cellsdf.cli import main
from cellsdf.progress import LogLines, track


def test_log_lines_come_at_the_start_on_a_timer_and_at_the_end(capsys):
    lines = LogLines("work", 10, every=0.2, unit="steps")
    time.sleep(0.5)
    lines.update(4)
    time.sleep(0.3)
    lines.update(10)
    lines.close()
    printed = capsys.readouterr().err.splitlines()
    assert printed[0] == "work: 0/10 steps after 0 s"
    assert (
        sum(line.startswith("work: 0/10") for line in printed) >= 2
    )  # the timer printed while nothing finished
    assert any("4/10 steps" in line and "left" in line for line in printed)
    assert printed[-1].startswith("work: 10/10 steps in ") and "steps/s" in printed[-1]


def test_track_prints_plain_lines_when_stderr_is_not_a_terminal(capsys):
    assert list(track(range(3), "counting")) == [0, 1, 2]
    err = capsys.readouterr().err
    assert err.splitlines()[0] == "counting: 0/3 items after 0 s"
    assert "counting: 3/3 items in" in err and "\x1b[" not in err  # no terminal control codes
    assert list(track(range(3), "silent", show=False)) == [0, 1, 2]
    assert capsys.readouterr().err == ""


@pytest.fixture(scope="module")
def masks(tmp_path_factory):
    folder = tmp_path_factory.mktemp("progress") / "sim"
    main(
        ["simulate", "cellline=plat", "sequences=2", "frames=3", "size=32", f"out={folder}", "progress=false"]
    )
    return folder


def run_to_file(args, log):
    """Run a command with stderr to a file; return the lines that were in the file before it ended."""
    with open(log, "w") as stream:
        process = subprocess.Popen([sys.executable, "-m", "cellsdf.cli", *args], stdout=stream, stderr=stream)
        seen = ""
        while process.poll() is None:
            seen = log.read_text()
            time.sleep(0.1)
    assert process.returncode == 0, log.read_text()
    return seen, log.read_text()


def test_a_command_writing_to_a_file_shows_progress_while_it_runs(masks, tmp_path):
    args = [
        "fit",
        "ckpt=plat",
        f"input={masks}",
        f"out={tmp_path / 'fit'}",
        "iterations=200",
        "resolution=32",
    ]
    while_running, everything = run_to_file([*args, "progress_every=1"], tmp_path / "fit.log")
    assert "preparing: 0/2 items after 0 s" in while_running
    assert "fitting: 200/200 items in" in everything and "\x1b[" not in everything


def test_training_in_a_log_prints_steps_and_nothing_from_lightning(tmp_path):
    args = [
        "train",
        f"out={tmp_path / 'run'}",
        "cellline=plat",
        "trainer.max_epochs=4",
        "data.simulate.sequences=2",
        "data.simulate.frames=3",
        "data.simulate.size=24",
        "data.prepare.points_per_frame=512",
        "data.prepare.eval_size=16",
    ]
    _, everything = run_to_file(args, tmp_path / "train.log")
    assert "training: 0/4 steps after 0 s" in everything and "training: 4/4 steps in" in everything
    # Lightning's own notices (precision, accelerators, tips) stay quiet unless verbose=true.
    assert "GPU available" not in everything and "Tip" not in everything
