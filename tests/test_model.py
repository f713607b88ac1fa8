import csv
import math

import numpy as np
import pytest
import pytorch_lightning as pl
import torch
from helpers import two_blob_dataset

from cellsdf.cli import main
from cellsdf.dataset.datamodule import PreparedDataModule
from cellsdf.geometry.rotation import axis_angle_matrix
from cellsdf.model.autodecoder import AutoDecoder, clamped_l1
from cellsdf.model.siren import SirenDecoder, plain_forward

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    """A prepared dataset of two small sequences (5 and 3 frames) of growing ellipsoids."""
    return two_blob_dataset(tmp_path_factory.mktemp("model") / "dataset.h5")


def preset(compose_cfg, name):
    return dict(compose_cfg("train", [f"model={name}"]).model.decoder)


def inputs(decoder, batch=3, points=257, seed=0):
    generator = torch.Generator().manual_seed(seed)
    latent = 0.5 * torch.randn(batch, decoder.latent_size, generator=generator, dtype=torch.float64)
    coords = torch.rand(batch, points, 4, generator=generator, dtype=torch.float64) * 2 - 1
    return latent, coords


@pytest.mark.parametrize("name", ["reference", "small"])
def test_folded_forward_equals_plain_forward(compose_cfg, name):
    torch.manual_seed(0)
    decoder = SirenDecoder(**preset(compose_cfg, name)).double()
    latent, coords = inputs(decoder)
    folded = decoder(latent, coords)
    assert folded.shape == (3, 257)
    torch.testing.assert_close(folded, plain_forward(decoder, latent, coords), rtol=0, atol=1e-5)
    # The codes matter: another latent gives other distances.
    assert (decoder(latent.flip(0), coords) - folded).abs().max() > 1e-3


def test_float32_decode_without_gradients_matches_the_plain_path(compose_cfg):
    # The decode path takes its sines from NumPy (float32 on the CPU, no autograd): it must give what the
    # plain torch path gives, and leave training's path (gradients on) untouched.
    torch.manual_seed(0)
    decoder = SirenDecoder(**preset(compose_cfg, "small"))
    latent, coords = (x.float() for x in inputs(decoder))
    with torch.no_grad():
        fast = decoder(latent, coords)
        plain = plain_forward(decoder, latent, coords)
    torch.testing.assert_close(fast, plain, rtol=0, atol=1e-4)
    z = latent.clone().requires_grad_(True)
    decoder(z, coords).sum().backward()
    assert z.grad is not None and z.grad.abs().max() > 0


@pytest.mark.parametrize("name", ["reference", "small"])
def test_gradients_of_folded_and_plain_paths_agree(compose_cfg, name):
    torch.manual_seed(0)
    decoder = SirenDecoder(**preset(compose_cfg, name)).double()
    latent, coords = inputs(decoder)
    weights = torch.randn(3, 257, dtype=torch.float64, generator=torch.Generator().manual_seed(1))

    def gradients(forward):
        decoder.zero_grad()
        z = latent.clone().requires_grad_(True)
        (forward(decoder, z, coords) * weights).sum().backward()
        return [z.grad] + [p.grad.clone() for p in decoder.parameters()]

    folded = gradients(lambda d, z, x: d(z, x))
    plain = gradients(plain_forward)
    assert folded[0].abs().max() > 1e-3  # the gradient reaches the latent
    for a, b in zip(folded, plain, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-7, atol=1e-5)


def test_latent_gradient_also_flows_through_injected_layers(compose_cfg):
    torch.manual_seed(0)
    decoder = SirenDecoder(**preset(compose_cfg, "reference")).double()
    with torch.no_grad():
        decoder.layers[0].weight[:, : decoder.latent_size] = 0  # the first layer no longer sees the code
    latent, coords = inputs(decoder)
    z = latent.clone().requires_grad_(True)
    decoder(z, coords).sum().backward()
    z_plain = latent.clone().requires_grad_(True)
    plain_forward(decoder, z_plain, coords).sum().backward()
    assert z.grad.abs().max() > 1e-3
    torch.testing.assert_close(z.grad, z_plain.grad, rtol=1e-7, atol=1e-5)


def test_axis_angle_matrices_are_rotations():
    vectors = torch.randn(64, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0)) * 2
    matrices = axis_angle_matrix(vectors)
    eye = torch.eye(3, dtype=torch.float64).expand(64, 3, 3)
    torch.testing.assert_close(matrices @ matrices.transpose(-1, -2), eye, rtol=0, atol=1e-10)
    torch.testing.assert_close(torch.linalg.det(matrices), torch.ones(64, dtype=torch.float64))
    # The axis is kept and the angle is the vector's length: trace = 1 + 2 cos(angle).
    torch.testing.assert_close((matrices @ vectors[..., None])[..., 0], vectors)
    angles = vectors.norm(dim=-1)
    torch.testing.assert_close(matrices.diagonal(dim1=-2, dim2=-1).sum(-1), 1 + 2 * torch.cos(angles))
    assert torch.equal(axis_angle_matrix(torch.zeros(2, 3)), torch.eye(3).expand(2, 3, 3))


def test_rotation_gradient_is_finite_at_the_identity():
    vector = torch.zeros(3, requires_grad=True)
    (axis_angle_matrix(vector) @ torch.tensor([0.3, -0.2, 0.5])).sum().backward()
    assert torch.isfinite(vector.grad).all() and vector.grad.abs().max() > 0
    quarter = axis_angle_matrix(torch.tensor([0.0, 0.0, math.pi / 2], dtype=torch.float64))
    torch.testing.assert_close(quarter @ quarter @ quarter @ quarter, torch.eye(3, dtype=torch.float64))


def test_loss_falls_on_a_tiny_dataset(dataset):
    pl.seed_everything(0, verbose=False)
    model = AutoDecoder(
        2,
        {"latent_size": 16, "widths": [64, 64, 64], "inject": [2]},
        lr={"decoder": 1e-3, "latent": 1e-3},
        rotations=True,
        rotation_epochs=50,
    )
    data = PreparedDataModule(dataset, batch_size=4, points_per_item=256, repeats=5, seed=0)
    data.setup()
    batch = next(iter(data.val_dataloader()))  # all 8 frames, fixed points

    def loss():
        model.eval()
        with torch.no_grad():
            return clamped_l1(model(batch["sequence"], batch["t"], batch["xyz"]), batch["sdf"], 0.1).item()

    before = loss()
    model.train()
    trainer = pl.Trainer(
        max_epochs=10,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        limit_val_batches=0,
    )
    trainer.fit(model, data)
    assert trainer.global_step == 100
    assert loss() < 0.5 * before


def test_eikonal_term_trains_and_is_logged(tmp_path, dataset):
    main(
        [
            "train",
            f"out={tmp_path}",
            f"data.path={dataset}",
            "progress=false",
            "trainer.max_epochs=2",
            "trainer.log_every_n_steps=1",
            "data.loader.batch_size=4",
            "data.loader.points_per_item=128",
            "model.decoder.widths=[32,32]",
            "model.decoder.latent_size=8",
            "model.eikonal_weight=0.1",
        ]
    )
    with open(tmp_path / "logs" / "metrics.csv", newline="") as f:
        eikonal = [float(r["train/eikonal"]) for r in csv.DictReader(f) if r.get("train/eikonal")]
    assert len(eikonal) == 4  # two steps per epoch
    assert all(np.isfinite(eikonal)) and min(eikonal) > 0
    assert (tmp_path / "model.pt").is_file()


def test_code_noise_perturbs_the_codes_in_training_only(dataset):
    data = PreparedDataModule(dataset, batch_size=4, points_per_item=256, repeats=1, seed=0)
    data.setup()
    batch = next(iter(data.val_dataloader()))
    decoder = {"latent_size": 16, "widths": [32, 32], "inject": [1]}
    noisy, plain = (AutoDecoder(2, decoder, code_noise=noise) for noise in (0.5, 0.0))
    plain.load_state_dict(noisy.state_dict())
    torch.manual_seed(0)
    first, second = (noisy.train().losses(batch)["sdf"].item() for _ in range(2))
    assert first != second  # a fresh draw each step
    assert noisy.eval().losses(batch)["sdf"].item() == plain.eval().losses(batch)["sdf"].item()
    assert plain.train().losses(batch)["sdf"].item() == plain.train().losses(batch)["sdf"].item()
    # The codes themselves are untouched: the prior term sees them as they are.
    assert noisy.train().losses(batch)["code"].item() == plain.train().losses(batch)["code"].item()
