"""The texture GAN's LightningModule: pix2pixHD training with LSGAN and discriminator feature matching."""

from __future__ import annotations

import pytorch_lightning as pl
import torch
from torch.nn import functional as F

from cellsdf.texture.networks import Generator, MultiscaleDiscriminator
from cellsdf.texture.pairs import CONDITION_CHANNELS, LABEL_CHANNELS
from cellsdf.texture.volume_pairs import VOLUME_CHANNELS, VOLUME_LABEL_CHANNELS

__all__ = ["TextureGAN", "feature_matching_loss", "lsgan_loss"]


def lsgan_loss(outputs: list[list[torch.Tensor]], target_real: bool) -> torch.Tensor:
    """Least-squares GAN loss of a multi-scale discriminator's patch scores against 1 (real) or 0 (fake)."""
    target = 1.0 if target_real else 0.0
    return sum(F.mse_loss(scales[-1], torch.full_like(scales[-1], target)) for scales in outputs)


def feature_matching_loss(fake: list[list[torch.Tensor]], real: list[list[torch.Tensor]]) -> torch.Tensor:
    """pix2pixHD's feature matching: L1 between discriminator features of fake and (detached) real input.

    Each layer's term is weighted ``4 / (n_layers + 1) / n_scales``, as in the reference code.
    """
    n_scales = len(fake)
    loss = torch.zeros((), device=fake[0][0].device)
    for fake_layers, real_layers in zip(fake, real, strict=True):
        weight = 4.0 / (len(fake_layers) - 1) / n_scales
        for f, r in zip(fake_layers[:-1], real_layers[:-1], strict=True):
            loss = loss + weight * F.l1_loss(f, r.detach())
    return loss


class TextureGAN(pl.LightningModule):
    """Conditional GAN from instance labels to one-channel images (pix2pixHD, manual optimisation).

    Parameters
    ----------
    ngf : int
        Width of the generator's first layer.
    n_downsample : int
        Stride-2 convolutions of the global generator.
    n_blocks : int
        Residual blocks of the global generator.
    local_enhancer : bool
        Add pix2pixHD's local enhancer (full-resolution branch; the global generator runs at half resolution).
    n_blocks_local : int
        Residual blocks of the local enhancer.
    ndf : int
        Width of each discriminator's first layer.
    n_layers_d : int
        Stride-2 layers per discriminator.
    n_scales_d : int
        Number of discriminator scales (2 or 3).
    feature_matching : float
        Weight of the feature-matching loss (pix2pixHD: 10).
    lr : float
        Adam learning rate of both networks.
    intensity_scale : float
        Image intensity that the generator's +1 stands for (0 is -1); recorded for inference.
    crop : int
        Training crop side, recorded for inference.
    volume : bool
        The slice-wise 3D model: conditions carry the neighbouring slices' foreground
        (:data:`cellsdf.texture.volume_pairs.VOLUME_CHANNELS`), which the discriminator sees too.
    """

    def __init__(
        self,
        ngf: int = 16,
        n_downsample: int = 3,
        n_blocks: int = 4,
        local_enhancer: bool = False,
        n_blocks_local: int = 3,
        ndf: int = 16,
        n_layers_d: int = 3,
        n_scales_d: int = 2,
        feature_matching: float = 10.0,
        lr: float = 2e-4,
        intensity_scale: float = 255.0,
        crop: int = 128,
        volume: bool = False,
    ):
        super().__init__()
        self.save_hyperparameters()
        self.automatic_optimization = False
        self.channels = VOLUME_CHANNELS if volume else CONDITION_CHANNELS
        self.label_channels = VOLUME_LABEL_CHANNELS if volume else LABEL_CHANNELS
        self.generator = Generator(**self.generator_config())
        self.discriminator = MultiscaleDiscriminator(self.label_channels + 1, ndf, n_layers_d, n_scales_d)

    def generator_config(self) -> dict:
        """Return the keyword arguments that rebuild the generator."""
        h = self.hparams
        return {
            "in_channels": len(self.channels),
            "out_channels": 1,
            "ngf": h.ngf,
            "n_downsample": h.n_downsample,
            "n_blocks": h.n_blocks,
            "local_enhancer": h.local_enhancer,
            "n_blocks_local": h.n_blocks_local,
            "noise_channel": self.channels.index("pixel_noise"),
        }

    def forward(self, condition: torch.Tensor) -> torch.Tensor:
        """Return generated images in [-1, 1] for (B, C, H, W) conditions (C: the model's channels)."""
        return self.generator(condition)

    def losses(self, condition: torch.Tensor, real: torch.Tensor) -> tuple[dict, torch.Tensor]:
        """Return the generator's losses (graph attached) and the generated batch for one training batch."""
        fake = self.generator(condition)
        labels = condition[:, : self.label_channels]
        # The discriminator judges an image together with the labels it should match, not the noise channels,
        # which leaves the generator free to use them for variation.
        pred_real = self.discriminator(torch.cat([labels, real], 1))
        pred_fake = self.discriminator(torch.cat([labels, fake], 1))
        gan = lsgan_loss(pred_fake, True)
        fm = feature_matching_loss(pred_fake, pred_real)
        return {
            "g_gan": gan,
            "g_fm": fm,
            "g": gan + self.hparams.feature_matching * fm,
            "pred_real": pred_real,
        }, fake

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        """One generator step, then one discriminator step, as pix2pixHD."""
        condition, real = batch
        opt_g, opt_d = self.optimizers()
        g, fake = self.losses(condition, real)
        opt_g.zero_grad()
        self.manual_backward(g["g"])
        opt_g.step()

        labels = condition[:, : self.label_channels]
        pred_fake = self.discriminator(torch.cat([labels, fake.detach()], 1))
        d_real, d_fake = lsgan_loss(g["pred_real"], True), lsgan_loss(pred_fake, False)
        opt_d.zero_grad()
        self.manual_backward(0.5 * (d_real + d_fake))
        opt_d.step()

        logged = {"g": g["g"], "g_gan": g["g_gan"], "g_fm": g["g_fm"], "d_real": d_real, "d_fake": d_fake}
        self.log_dict({f"loss/{k}": v.detach() for k, v in logged.items()}, prog_bar=False)
        self.log("g", g["g"].detach(), prog_bar=True, logger=False)
        self.log("d", (0.5 * (d_real + d_fake)).detach(), prog_bar=True, logger=False)

    def configure_optimizers(self) -> list[torch.optim.Optimizer]:
        """Adam for each network, as pix2pixHD (lr 2e-4, betas (0.5, 0.999))."""
        betas = (0.5, 0.999)
        return [
            torch.optim.Adam(self.generator.parameters(), lr=self.hparams.lr, betas=betas),
            torch.optim.Adam(self.discriminator.parameters(), lr=self.hparams.lr, betas=betas),
        ]
