import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import pytest
import torch
from helpers import two_blob_dataset

from cellsdf.cli import main
from cellsdf.decode.dense import bf16_fast
from cellsdf.io.csvlog import MetricsTable
from cellsdf.model.checkpoint import load_autodecoder
from cellsdf.model.trained import load_trained

# A tiny decoder and batch, a learning-rate drop every epoch (so that a resume must restore the schedule)
# and validation every epoch (so that best.ckpt is written).
FAST = [
    "progress=false",
    "data.loader.batch_size=4",
    "data.loader.points_per_item=128",
    "model.decoder.widths=[32,32]",
    "model.decoder.latent_size=8",
    "model.decoder.inject=[1]",
    "model.lr_step=1",
    "model.lr_gamma=0.5",
    "trainer.check_val_every_n_epoch=1",
    "trainer.log_every_n_steps=1",
]


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    """A prepared dataset of two small sequences, 8 frames: two training steps per epoch."""
    return two_blob_dataset(tmp_path_factory.mktemp("train") / "dataset.h5")


def train(out, dataset, *args):
    main(["train", f"out={out}", f"data.path={dataset}", *FAST, *args])


@pytest.fixture(scope="module")
def straight(tmp_path_factory, dataset):
    """A finished 4-epoch run."""
    out = tmp_path_factory.mktemp("straight")
    train(out, dataset, "trainer.max_epochs=4")
    return out


def weights(path):
    return torch.load(path, map_location="cpu", weights_only=True)["state_dict"]


def assert_same_weights(a, b):
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


def metric_rows(out):
    with open(out / "logs" / "metrics.csv", newline="") as f:
        return list(csv.DictReader(f))


def refused(capsys, run) -> str:
    """Run a command that must stop with exit code 2; return its error line."""
    with pytest.raises(SystemExit) as exit_info:
        run()
    assert exit_info.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines[-1].startswith("cellsdf train: error: ")
    return lines[-1]


def test_run_on_simulated_cells_writes_model_checkpoints_logs_and_manifest(tmp_path):
    main(
        [
            "train",
            f"out={tmp_path}",
            *FAST,
            "trainer.max_epochs=2",
            "data.simulate.sequences=2",
            "data.simulate.frames=4",
            "data.simulate.size=32",
            "data.prepare.points_per_frame=512",
            "data.prepare.eval_size=16",
        ]
    )
    for name in ("model.pt", "dataset.h5", "checkpoints/last.ckpt", "checkpoints/best.ckpt", "manifest.json"):
        assert (tmp_path / name).is_file(), name
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["command"] == "train" and manifest["epochs"] == 2 and manifest["val_loss"] > 0
    # trainer.precision=auto: bf16 autocast where this CPU multiplies bf16 natively.
    assert manifest["precision"] == ("bf16-mixed" if bf16_fast("cpu") else "32-true")
    rows = metric_rows(tmp_path)
    assert [r["epoch"] for r in rows if r["val/loss"]] == ["0", "1"]
    assert len([r for r in rows if r["train/loss"]]) == 4
    model = load_autodecoder(tmp_path / "model.pt")
    assert model.latents.weight.shape == (2, 8)
    assert model.hparams.dataset["sequences"] == ["plat_000", "plat_001"]
    assert_same_weights(model.state_dict(), weights(tmp_path / "checkpoints" / "last.ckpt"))


def test_same_seed_gives_identical_weights_and_another_seed_does_not(tmp_path, dataset, straight):
    train(tmp_path / "again", dataset, "trainer.max_epochs=4")
    assert_same_weights(weights(straight / "model.pt"), weights(tmp_path / "again" / "model.pt"))
    train(tmp_path / "other", dataset, "trainer.max_epochs=4", "seed=1")
    other = weights(tmp_path / "other" / "model.pt")
    assert not torch.equal(
        weights(straight / "model.pt")["decoder.output.weight"], other["decoder.output.weight"]
    )


def test_resumed_run_is_bit_identical_to_a_straight_run(tmp_path, dataset, straight):
    train(tmp_path, dataset, "trainer.max_epochs=2")
    last = tmp_path / "checkpoints" / "last.ckpt"
    train(tmp_path, dataset, "trainer.max_epochs=4", f"ckpt_path={last}")
    assert_same_weights(weights(straight / "model.pt"), weights(tmp_path / "model.pt"))
    resumed = torch.load(last, weights_only=True)
    expected = torch.load(straight / "checkpoints" / "last.ckpt", weights_only=True)
    assert resumed["epoch"] == expected["epoch"] == 3  # index of the last epoch
    assert resumed["lr_schedulers"] == expected["lr_schedulers"]
    for a, b in zip(resumed["optimizer_states"], expected["optimizer_states"], strict=True):
        for key, state in a["state"].items():
            assert torch.equal(state["exp_avg_sq"], b["state"][key]["exp_avg_sq"])
    # The log of the first two epochs survives the resume, and the whole log equals the straight run's.
    assert metric_rows(tmp_path) == metric_rows(straight)
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["epochs"] == 4 and manifest["epochs_this_call"] == 2
    assert manifest["resumed_from"] == str(last) and manifest["training_seconds"] > 0


def test_multirun_writes_one_folder_per_job(tmp_path, dataset):
    main(
        [
            "train",
            "-m",
            "model.latent_std=0.01,0.5",
            f"out={tmp_path}",
            f"data.path={dataset}",
            *FAST,
            "trainer.max_epochs=1",
        ]
    )
    stds = [load_autodecoder(tmp_path / str(job) / "model.pt").latents.weight.std().item() for job in (0, 1)]
    assert stds[0] < 0.1 < stds[1]
    assert not (tmp_path / "model.pt").exists()


def test_missing_data_is_refused(tmp_path, capsys):
    line = refused(capsys, lambda: train(tmp_path / "run", tmp_path / "missing.h5"))
    assert str(tmp_path / "missing.h5") in line and "not found" in line


def test_empty_folder_is_refused(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    line = refused(capsys, lambda: train(tmp_path / "run", tmp_path / "empty"))
    assert str(tmp_path / "empty") in line and "no TIFF" in line


def test_resume_with_another_model_configuration_names_the_differing_keys(
    tmp_path, dataset, straight, capsys
):
    last = straight / "checkpoints" / "last.ckpt"
    line = refused(
        capsys, lambda: train(tmp_path, dataset, f"ckpt_path={last}", "model.decoder.widths=[48,48]")
    )
    assert f"{last}: checkpoint is from another model configuration" in line
    assert "decoder.layers.0.weight has shape (32, 12), the model expects (48, 12)" in line


def test_truncated_checkpoint_is_refused(tmp_path, dataset, straight, capsys):
    data = (straight / "checkpoints" / "last.ckpt").read_bytes()
    truncated = tmp_path / "truncated.ckpt"
    truncated.write_bytes(data[: len(data) // 2])
    line = refused(capsys, lambda: train(tmp_path / "run", dataset, f"ckpt_path={truncated}"))
    assert f"{truncated}: cannot read the checkpoint (truncated" in line


def test_non_finite_loss_stops_and_keeps_what_was_written(tmp_path, dataset, straight, capsys):
    run = tmp_path / "run"
    shutil.copytree(straight, run)
    kept = ["checkpoints/last.ckpt", "checkpoints/best.ckpt", "model.pt", "manifest.json"]
    before = {name: (run / name).read_bytes() for name in kept}
    rows = metric_rows(run)
    # On resume the optimiser's learning rates come from the checkpoint, so an overflowing weight of the
    # latent prior makes the loss infinite instead.
    line = refused(
        capsys,
        lambda: train(
            run,
            dataset,
            f"ckpt_path={run / 'checkpoints' / 'last.ckpt'}",
            "trainer.max_epochs=6",
            "model.code_reg=1e300",
        ),
    )
    assert "training: the loss became inf at epoch 4" in line
    assert {name: (run / name).read_bytes() for name in kept} == before
    assert metric_rows(run)[: len(rows)] == rows


def test_folder_of_a_previous_run_is_refused_without_overwrite(dataset, straight, capsys):
    before = (straight / "checkpoints" / "last.ckpt").read_bytes()
    line = refused(capsys, lambda: train(straight, dataset, "trainer.max_epochs=1"))
    assert f"{straight}: holds a previous run" in line
    assert (straight / "checkpoints" / "last.ckpt").read_bytes() == before


@pytest.mark.slow
def test_ddp_on_two_cpu_processes_writes_the_model(tmp_path, dataset):
    train(
        tmp_path,
        dataset,
        "trainer=ddp",
        "trainer.accelerator=cpu",
        "trainer.strategy=ddp_spawn",
        "trainer.devices=2",
        "trainer.max_epochs=2",
    )
    assert_same_weights(weights(tmp_path / "model.pt"), weights(tmp_path / "checkpoints" / "last.ckpt"))
    assert json.loads((tmp_path / "manifest.json").read_text())["epochs"] == 2
    assert [r["epoch"] for r in metric_rows(tmp_path) if r["val/loss"]] == ["0", "1"]


def validated_epochs(out):
    return [(int(r["epoch"]), float(r["val/loss"])) for r in metric_rows(out) if r.get("val/loss")]


def test_a_run_shorter_than_the_validation_interval_validates_its_last_epoch(tmp_path, dataset):
    train(tmp_path, dataset, "trainer.max_epochs=2", "trainer.check_val_every_n_epoch=10")
    last = torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=True)
    assert last["epoch"] == 1  # a last checkpoint every epoch, validated or not
    ((epoch, loss),) = validated_epochs(tmp_path)
    assert epoch == 1
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["val_loss"] == pytest.approx(loss)
    assert manifest["epochs"] == manifest["epochs_this_call"] == 2 and manifest["resumed_from"] is None
    assert_same_weights(weights(tmp_path / "checkpoints" / "best.ckpt"), weights(tmp_path / "model.pt"))


def test_a_run_stopped_by_max_time_validates_before_it_ends(tmp_path, dataset):
    train(
        tmp_path,
        dataset,
        "trainer.max_epochs=100000",
        "trainer.check_val_every_n_epoch=100000",
        "trainer.max_time=00:00:00:02",
    )
    epochs = torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=True)["epoch"] + 1
    assert 1 <= epochs < 100000
    assert [epoch for epoch, _ in validated_epochs(tmp_path)] == [epochs - 1]
    assert (tmp_path / "checkpoints" / "best.ckpt").is_file()
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["epochs"] == epochs and manifest["val_loss"] > 0


def test_checkpoints_are_written_in_their_own_folder_not_through_the_temporary_folder(
    tmp_path, dataset, monkeypatch
):
    # Lightning's own writer stages checkpoints in the system's temporary folder and copies them when it lies
    # on another file system; with none available, only a writer that stays in the run folder succeeds.
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "no-temporary-folder"))
    train(tmp_path / "run", dataset, "trainer.max_epochs=1")
    checkpoints = tmp_path / "run" / "checkpoints"
    assert sorted(p.name for p in checkpoints.iterdir()) == ["best.ckpt", "last.ckpt"]
    assert_same_weights(weights(checkpoints / "last.ckpt"), weights(tmp_path / "run" / "model.pt"))


SIMULATED = [
    "data.simulate.sequences=2",
    "data.simulate.frames=3",
    "data.simulate.size=24",
    "data.prepare.points_per_frame=512",
    "data.prepare.eval_size=16",
]


def test_a_resumed_run_trains_on_the_cell_line_it_resumes(tmp_path, capsys):
    out = tmp_path / "run"
    main(["train", f"out={out}", "cellline=cele", *FAST, *SIMULATED, "trainer.max_epochs=1"])
    last = out / "checkpoints" / "last.ckpt"
    # The README's resume command: no cellline=, so the default (plat) must not replace cele.
    main(["train", f"out={out}", f"ckpt_path={last}", *FAST, *SIMULATED, "trainer.max_epochs=2"])
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["config"]["cellline"]["name"] == "cele"
    assert manifest["epochs"] == 2 and manifest["epochs_this_call"] == 1
    model = load_autodecoder(out / "model.pt")
    assert model.hparams.dataset["recipe"]["cell_line"] == "cele"
    assert model.hparams.dataset["sequences"] == ["cele_000", "cele_001"]
    before = last.read_bytes()
    line = refused(
        capsys,
        lambda: main(["train", f"out={out}", f"ckpt_path={last}", "cellline=filo", *FAST, *SIMULATED]),
    )
    assert "cellline: filo differs from the run being resumed" in line and "cell line cele" in line
    assert last.read_bytes() == before


def test_metrics_table_keeps_the_rows_before_the_resumed_epoch_and_drops_an_unfinished_line(tmp_path):
    path = tmp_path / "logs" / "metrics.csv"
    table = MetricsTable(path)
    for epoch in range(3):
        table.add({"epoch": epoch, "step": epoch, "train/loss": 1.0 / (epoch + 1)})
    table.add({"epoch": 2, "step": 2, "val/loss": 0.3})  # a new column rewrites the header
    with open(path, "a") as f:
        f.write("0.25,1")  # a row a killed writer did not finish: its epoch reads as 1
    table = MetricsTable(path, keep_before=2)
    table.add({"epoch": 2, "step": 2, "train/loss": 0.2})
    rows = metric_rows(tmp_path)
    assert [(r["epoch"], r["train/loss"], r["val/loss"]) for r in rows] == [
        ("0", "1.0", ""),
        ("1", "0.5", ""),
        ("2", "0.2", ""),
    ]
    MetricsTable(path)  # a new run starts a new log
    assert path.read_text() == ""


def wait_for_epochs(last, count, process, seconds=120):
    """Wait until the run's last checkpoint holds ``count`` epochs; return the number it holds."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()[1]
        if last.is_file():
            epochs = torch.load(last, weights_only=True)["epoch"] + 1
            if epochs >= count:
                return epochs
        time.sleep(0.05)
    raise AssertionError(f"{last} did not reach {count} epochs in {seconds} s")


def _default_sigint() -> None:
    """Give a child SIGINT as a terminal's Ctrl+C finds it: not ignored, not blocked.

    A child inherits an ignored or blocked SIGINT from the test process (where an earlier test's libraries may
    leave it so), and then never sees the signal.
    """
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})


def stop_after_two_epochs(out, dataset, stop: signal.Signals) -> tuple[int, str]:
    """Run training in a child process, send it ``stop`` after two epochs; return its exit code and stderr."""
    command = [sys.executable, "-m", "cellsdf.cli", "train", f"out={out}", f"data.path={dataset}", *FAST]
    process = subprocess.Popen(
        [*command, "trainer.max_epochs=100000"],
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        preexec_fn=_default_sigint,
    )
    try:
        wait_for_epochs(out / "checkpoints" / "last.ckpt", 2, process)
    finally:
        process.send_signal(stop)
        _, stderr = process.communicate(timeout=120)
    return process.returncode, stderr


def test_a_killed_run_keeps_its_log_and_its_resume_continues_it(tmp_path, dataset):
    out = tmp_path / "run"
    stop_after_two_epochs(out, dataset, signal.SIGKILL)
    epochs = torch.load(out / "checkpoints" / "last.ckpt", weights_only=True)["epoch"] + 1
    reference = tmp_path / "reference"
    train(reference, dataset, f"trainer.max_epochs={epochs + 1}")
    expected = metric_rows(reference)
    # Every row of the epochs that the checkpoint holds reached the log before the kill.
    logged = [r for r in metric_rows(out) if int(r["epoch"]) < epochs]
    assert logged == [r for r in expected if int(r["epoch"]) < epochs]
    train(out, dataset, f"trainer.max_epochs={epochs + 1}", f"ckpt_path={out / 'checkpoints' / 'last.ckpt'}")
    assert metric_rows(out) == expected
    assert_same_weights(weights(out / "model.pt"), weights(reference / "model.pt"))


def test_weights_that_become_non_finite_are_not_exported(tmp_path, dataset, capsys, monkeypatch):
    # An optimiser step that leaves the weights infinite: the step's own loss was computed before and is
    # finite, so only the check before export can see it.
    step = torch.optim.Adam.step

    def diverging_step(self, closure=None):
        loss = step(self, closure)
        with torch.no_grad():
            self.param_groups[0]["params"][0].fill_(float("inf"))
        return loss

    monkeypatch.setattr(torch.optim.Adam, "step", diverging_step)
    run = tmp_path / "run"
    line = refused(capsys, lambda: train(run, dataset, "+trainer.max_steps=1", "trainer.max_epochs=1"))
    assert f"{run / 'model.pt'}: not written: weights decoder." in line
    assert "became NaN or infinite in training" in line
    assert not (run / "model.pt").exists() and not (run / "manifest.json").exists()


def test_ctrl_c_writes_the_model_trained_so_far_and_says_so(tmp_path, dataset):
    out = tmp_path / "run"
    code, stderr = stop_after_two_epochs(out, dataset, signal.SIGINT)
    assert code == 130, stderr
    assert "interrupted after" in stderr and str(out / "model.pt") in stderr
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["interrupted"] is True and manifest["epochs"] >= 2
    assert load_trained(out / "model.pt").latents.shape == (2, 8)
