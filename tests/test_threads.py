"""One thread policy for every command: the idle cores at the start, threads= overrides."""

import os

import hydra
import torch
from hydra.core.global_hydra import GlobalHydra

from cellsdf.bench.threads import busy_cores, threads_rows
from cellsdf.cli import main
from cellsdf.tasks.bench import bench_settings
from cellsdf.threads import ThreadChoice, choose_threads, idle_cores, usable_cores, use_threads


def test_threads_given_are_kept_and_otherwise_one_per_idle_core():
    assert choose_threads(3) == ThreadChoice(3, usable_cores(), None)
    assert choose_threads(None, idle=0.2).threads == 1  # never fewer than one
    assert (
        choose_threads(None, idle=usable_cores() + 5).threads == usable_cores()
    )  # never more than the cores
    assert choose_threads(None, idle=1.6).threads == min(2, usable_cores())


def test_busy_cores_are_not_counted_as_idle():
    with busy_cores(usable_cores()):
        assert idle_cores() < 0.5
        assert choose_threads(None).threads == 1


def test_use_threads_sets_torch_and_the_environment_of_child_processes(monkeypatch):
    before = torch.get_num_threads()
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        monkeypatch.setenv(name, "7")
    try:
        use_threads(ThreadChoice(1, 2, 0.3))
        assert torch.get_num_threads() == 1 and os.environ["OMP_NUM_THREADS"] == "1"
    finally:
        torch.set_num_threads(before)


def test_every_command_takes_threads_and_says_its_choice_when_verbose(tmp_path, capsys):
    before = torch.get_num_threads()
    try:
        main(
            ["simulate", "sequences=1", "frames=1", "size=16", f"out={tmp_path}", "threads=1", "verbose=true"]
        )
    finally:
        torch.set_num_threads(before)
    assert "threads: 1 (threads=1;" in capsys.readouterr().err


def test_the_thread_rows_time_the_default_against_one_thread_quiet_and_loaded():
    quiet, loaded = threads_rows(commands=["generate"])
    assert quiet.name == "generate, quiet: default threads vs 1 thread (s)"
    assert loaded.name == "generate, loaded: default threads vs 1 thread (s)"
    # With a busy process on every core, the policy falls back to one thread.
    assert "the default chose 1" in loaded.target
    for row in (quiet, loaded):
        assert row.ours > 0 and row.reference > 0 and row.ratio == row.ours / row.reference


def test_bench_quick_runs_every_row_at_the_first_look_settings():
    GlobalHydra.instance().clear()
    with hydra.initialize_config_module(config_module="cellsdf.conf", version_base="1.3"):
        full = hydra.compose(config_name="bench")
        quick = hydra.compose(config_name="bench", overrides=["quick=true"])
    assert bench_settings(full).size == 256 and len(bench_settings(full).threads_commands) == 8
    settings = bench_settings(quick)
    assert settings.size == 32 and list(settings.threads_commands) == ["fit"]
    assert settings.compile_limit_s is None and settings.benchmark_sequences == 4
