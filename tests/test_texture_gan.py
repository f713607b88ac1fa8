"""Tests of the pix2pixHD-style texture GAN: networks, pairs, training, the shipped model, bad input."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import pytorch_lightning as pl
import tifffile
import torch
from torch.utils.data import DataLoader

from cellsdf.cli import main
from cellsdf.errors import InputError
from cellsdf.texture.gan import load_texture_model
from cellsdf.texture.gan_module import TextureGAN
from cellsdf.texture.networks import Generator, MultiscaleDiscriminator
from cellsdf.texture.pairs import (
    CropDataset,
    boundary_map,
    crop_origins,
    holdout_slices,
    read_pairs,
    shipped_pairs,
    training_region,
)

# Tiny networks run faster on one thread; a second only adds synchronisation on a busy machine.
pytestmark = pytest.mark.usefixtures("one_thread")

TINY = [
    "generator.ngf=4",
    "generator.n_blocks=1",
    "discriminator.ndf=4",
    "crop=32",
    "batch=2",
    "progress=false",
]


@pytest.fixture(scope="module")
def real_pair():
    return read_pairs(shipped_pairs())[0]


@pytest.fixture(scope="module")
def shipped():
    return load_texture_model(None)


@pytest.mark.parametrize("local_enhancer", [False, True])
def test_generator_shapes(local_enhancer: bool) -> None:
    generator = Generator(
        4, 1, ngf=4, n_downsample=2, n_blocks=1, local_enhancer=local_enhancer, noise_channel=3
    )
    assert generator.side_multiple == (8 if local_enhancer else 4)
    x = torch.randn(2, 4, 32, 48)
    quiet = x.clone()
    quiet[:, 3] = 0
    assert generator(x).shape == (2, 1, 32, 48)
    assert generator(quiet).abs().max() <= 1.0  # tanh image; the noise channel adds to it
    assert not torch.equal(generator(x), generator(quiet))
    with pytest.raises(RuntimeError):  # the local enhancer halves the input: sides must fit
        Generator(4, ngf=4, n_downsample=2, n_blocks=1, local_enhancer=True)(torch.randn(1, 4, 36, 36))


@pytest.mark.parametrize("n_scales", [2, 3])
def test_discriminator_scales_and_features(n_scales: int) -> None:
    discriminator = MultiscaleDiscriminator(3, ndf=4, n_layers=3, n_scales=n_scales)
    outputs = discriminator(torch.randn(2, 3, 64, 64))
    assert len(outputs) == n_scales
    for scale, features in enumerate(outputs):
        assert len(features) == 5  # input layer, 3 hidden layers, patch scores
        assert features[-1].shape[:2] == (2, 1)
        if scale:  # each scale sees the input halved, so its patch map is smaller
            assert features[-1].shape[-1] < outputs[scale - 1][-1].shape[-1]


def test_boundary_map_of_touching_cells() -> None:
    labels = np.zeros((8, 10), np.uint16)
    labels[2:6, 1:5] = 1
    labels[2:6, 5:10] = 2  # touches cell 1 along x = 4 | 5 and reaches the image's right border
    edge = boundary_map(labels)
    assert edge[3:5, 4].all() and edge[3:5, 5].all()  # both sides of the shared border
    assert not edge[3:5, 2:4].any() and not edge[3:5, 6:].any()  # interiors; the image border is no edge
    assert edge[3:5, 0].all() and edge[3:5, 1].all()  # cell against background: both sides
    assert edge[1, 2:9].all() and edge[2, 2:9].all() and not edge[7].any()
    np.testing.assert_array_equal(boundary_map(labels[None])[0], edge)


def test_holdout_split_is_a_disjoint_quarter() -> None:
    shape = (512, 512)
    region = training_region(shape)
    held = np.zeros(shape, bool)
    held[holdout_slices(shape)] = True
    assert held.sum() == shape[0] * shape[1] // 4 and held[256:, 256:].all()
    assert not (region & held).any() and (region | held).all()
    crop = 96
    origins = crop_origins(region, crop)
    assert len(origins)
    for y, x in origins[:: max(1, len(origins) // 200)]:
        assert region[y : y + crop, x : x + crop].all()
    assert len(crop_origins(region, 257)) == 0


def test_crops_are_seeded_and_augmented(real_pair) -> None:
    dataset = CropDataset([real_pair], 64, 235.0, length=8, seed=3)
    condition, image = dataset[5]
    assert condition.shape == (4, 64, 64) and image.shape == (1, 64, 64)
    again = CropDataset([real_pair], 64, 235.0, length=8, seed=3)[5]
    torch.testing.assert_close(condition, again[0])
    assert -1.0 <= image.min() and image.max() <= 1.0
    # The foreground channel is the thresholded mask of the image's own crop.
    assert image[0][condition[0] > 0].mean() > image[0][condition[0] == 0].mean()


def test_gan_loss_falls_on_real_crops(real_pair) -> None:
    torch.manual_seed(0)
    steps, scale = 30, float(real_pair.image.max())
    dataset = CropDataset([real_pair], 32, scale, length=steps * 4, seed=0)
    model = TextureGAN(ngf=8, n_downsample=2, n_blocks=1, ndf=8, crop=32, intensity_scale=scale)
    fixed_condition, fixed_image = next(iter(DataLoader(dataset, batch_size=16)))

    def reconstruction_error() -> float:
        with torch.no_grad():
            return float((model(fixed_condition) - fixed_image).abs().mean())

    class Record(pl.Callback):
        def __init__(self):
            self.losses: list[float] = []

        def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
            self.losses.append(float(trainer.callback_metrics["g"]))

    before = reconstruction_error()
    trainer = pl.Trainer(
        max_steps=2 * steps,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[record := Record()],
    )
    trainer.fit(model, DataLoader(dataset, batch_size=4))
    assert trainer.global_step == 2 * steps and len(record.losses) == steps
    assert reconstruction_error() < 0.6 * before
    assert np.mean(record.losses[-5:]) < 0.8 * np.mean(record.losses[:5])


def test_texture_train_end_to_end_and_resume(tmp_path: Path) -> None:
    out = tmp_path / "run"
    main(["texture-train", f"out={out}", "steps=3", "checkpoint_every=2", *TINY])
    for name in ("last.ckpt", "model.pt", "manifest.json", "preview.png", "logs/metrics.csv"):
        assert (out / name).is_file(), name
    texture = load_texture_model(out / "model.pt")
    labels = np.zeros((2, 32, 40), np.int32)
    labels[:, 8:20, 8:24] = 1
    image = texture(labels, np.random.default_rng(0))
    assert image.shape == labels.shape and image.dtype == np.uint16

    main(["texture-train", f"out={out}", "steps=5", "resume=true", "checkpoint_every=2", *TINY])
    resumed = torch.load(out / "last.ckpt", map_location="cpu", weights_only=True)
    assert resumed["global_step"] == 2 * 5  # two optimiser steps per GAN step, counting on from 3
    with open(out / "logs" / "metrics.csv", newline="") as f:
        steps = [int(row["step"]) for row in csv.DictReader(f)]
    assert steps == [0, 1, 2, 3, 4]


def test_shipped_model_textures_held_out_mask(shipped, real_pair) -> None:
    labels = real_pair.labels[holdout_slices(real_pair.labels.shape)]
    a = shipped(labels, np.random.default_rng(7))
    b = shipped(labels, np.random.default_rng(7))
    c = shipped(labels, np.random.default_rng(8))
    assert a.shape == labels.shape and a.dtype == np.uint16
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert a[labels > 0].mean() > 1.5 * a[labels == 0].mean()
    stack = shipped(np.stack([labels[:64, :64]] * 3), np.random.default_rng(0), batch=2)
    assert stack.shape == (3, 64, 64)


def test_model_refuses_bad_files_and_frames(tmp_path: Path, shipped) -> None:
    with pytest.raises(InputError, match="not found"):
        load_texture_model(tmp_path / "missing.pt")
    plat = Path(__file__).parents[1] / "data" / "models" / "plat" / "model.pt"
    with pytest.raises(InputError, match="not a cellsdf texture model"):
        load_texture_model(plat)
    (tmp_path / "junk.pt").write_bytes(b"not a torch file")
    with pytest.raises(InputError, match="cannot read"):
        load_texture_model(tmp_path / "junk.pt")
    m = shipped.side_multiple
    with pytest.raises(InputError, match=rf"\(100, {2 * m}\).*multiples of {m}") as err:
        shipped(np.zeros((100, 2 * m), np.int32), np.random.default_rng(0))
    assert "model.pt" in str(err.value)


def _pair_folder(folder: Path, image: np.ndarray, mask: np.ndarray) -> Path:
    folder.mkdir()
    tifffile.imwrite(folder / "a_img.tif", image)
    tifffile.imwrite(folder / "a_mask.tif", mask)
    return folder


@pytest.mark.parametrize(
    "case",
    ["missing", "empty", "shapes", "float_mask", "crop_too_large", "crop_not_multiple", "out_not_empty"],
)
def test_texture_train_refuses_bad_input(tmp_path: Path, case: str) -> None:
    out = tmp_path / "out"
    args = [f"out={out}", "steps=1", *TINY]
    image = np.full((64, 64), 10, np.uint16)
    mask = np.zeros((64, 64), np.uint16)
    mask[10:30, 10:30] = 1
    if case == "missing":
        args.append(f"pairs={tmp_path / 'nowhere'}")
    elif case == "empty":
        (tmp_path / "empty").mkdir()
        args.append(f"pairs={tmp_path / 'empty'}")
    elif case == "shapes":
        args.append(f"pairs={_pair_folder(tmp_path / 'p', image, mask[:32])}")
    elif case == "float_mask":
        args.append(f"pairs={_pair_folder(tmp_path / 'p', image, mask.astype(np.float32))}")
    elif case == "crop_too_large":
        args.append("crop=264")  # wider than the training region of the 512 x 512 real pair
    elif case == "crop_not_multiple":
        args.append("crop=36")
    else:
        out.mkdir()
        (out / "keep.txt").write_text("earlier results")
    with pytest.raises(SystemExit) as exit_:
        main(["texture-train", *args])
    assert exit_.value.code == 2
    if case == "out_not_empty":
        assert [p.name for p in out.iterdir()] == ["keep.txt"]
    else:
        assert not out.exists()
