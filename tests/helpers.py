"""Small known shapes and settings that several test modules share (fixtures stay in conftest.py)."""

import subprocess
import sys

import numpy as np


def run_ok(command, **kwargs):
    """Run a command that must succeed; a failure shows the child's output, not only its exit status."""
    result = subprocess.run([str(part) for part in command], capture_output=True, text=True, **kwargs)
    assert result.returncode == 0, (
        f"{command[0]} exited with {result.returncode}\n"
        f"--- stdout ---\n{result.stdout}\n--- stderr ---\n{result.stderr}"
    )
    return result


def dead_pid():
    """The id of a process that has ended (what a killed run leaves in its lock and temporary names)."""
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def blob(shape=(24, 28, 32), centre=None, radii=(6, 8, 9)) -> np.ndarray:
    """An axis-aligned ellipsoid mask, the small known shape most tests start from."""
    centre = np.asarray(shape) / 2 if centre is None else np.asarray(centre)
    grid = np.stack(np.meshgrid(*map(np.arange, shape), indexing="ij"), axis=-1)
    return (((grid - centre) / np.asarray(radii)) ** 2).sum(-1) <= 1.0


# A small decoder briefly trained on two simulated plat cells (4 frames at 32³) fits them well (IoU ~0.9).
SMALL_TRAIN = [
    "trainer.max_epochs=20",
    "data.simulate.sequences=2",
    "data.simulate.frames=4",
    "data.simulate.size=32",
    "data.loader.batch_size=4",
    "data.loader.points_per_item=1024",
    "data.loader.repeats=5",
    "data.prepare.points_per_frame=4096",
    "data.prepare.eval_size=32",
    "trainer.check_val_every_n_epoch=100",
    "model.decoder.widths=[64,64,64]",
    "model.decoder.latent_size=16",
    "model.decoder.inject=[]",
    "model.lr.decoder=1e-3",
    "progress=false",
]


def two_blob_dataset(out):
    """Prepare two small sequences of ellipsoids (5 moving and 3 growing frames) into ``out``."""
    from cellsdf.dataset.prepare import prepare_dataset
    from cellsdf.dataset.sources import MaskSequence, SequenceLoader

    def loader(name, masks):
        seq = MaskSequence(name, "test", masks, (1.0, 1.0, 1.0), np.arange(len(masks)))
        return SequenceLoader(name, lambda: seq)

    moving = np.stack([blob(centre=(12, 14, 14 + k), radii=(5 + k * 0.5, 7, 8)) for k in range(5)])
    growing = np.stack([blob(radii=(8, 6 + k, 9)) for k in range(3)])
    return prepare_dataset(
        [loader("a", moving), loader("b", growing)], out, points_per_frame=512, eval_size=16
    )
