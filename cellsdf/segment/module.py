"""Lightning module of the segmenter: the U-Net, its loss and optimiser, and prediction over whole frames."""

from __future__ import annotations

import numpy as np
import pytorch_lightning as pl
import torch
from monai.inferers import sliding_window_inference
from monai.losses import DiceCELoss

from cellsdf.segment.instances import instances
from cellsdf.segment.network import Plan, build_unet
from cellsdf.segment.targets import normalise


class Segmenter(pl.LightningModule):
    """A three-class U-Net (background, interior, boundary) trained with Dice + cross-entropy.

    Parameters
    ----------
    kernels, strides : list of list of int
        The U-Net's plan (:func:`cellsdf.segment.network.plan_unet`), kept as plain lists so that the
        checkpoint's hyper-parameters are plain data.
    patch : list of int
        Training patch size, also the sliding window of prediction.
    width : int
        Filters of the first level.
    lr : float
        Adam's learning rate, decayed polynomially (power 0.9, as nnU-Net) to 0 at ``steps``.
    steps : int
        Optimiser steps of the training.
    """

    def __init__(
        self,
        *,
        kernels: list[list[int]],
        strides: list[list[int]],
        patch: list[int],
        width: int = 16,
        lr: float = 1e-3,
        steps: int = 1000,
    ):
        super().__init__()
        self.save_hyperparameters()
        plan = Plan(tuple(map(tuple, kernels)), tuple(map(tuple, strides)))
        self.net = build_unet(plan, width=width)
        self.loss = DiceCELoss(to_onehot_y=True, softmax=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class logits of a batch (B, 1, ...) of normalised images."""
        return self.net(x)

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], _index: int) -> torch.Tensor:
        """Dice + cross-entropy of one batch of patches."""
        image, target = batch
        loss = self.loss(self(image), target)
        self.log("loss", loss, prog_bar=True, on_step=True)
        return loss

    def configure_optimizers(self) -> dict:
        """Adam with a polynomial decay over the training's steps."""
        optimiser = torch.optim.Adam(self.parameters(), lr=self.hparams.lr)
        decay = torch.optim.lr_scheduler.PolynomialLR(optimiser, total_iters=self.hparams.steps, power=0.9)
        return {"optimizer": optimiser, "lr_scheduler": {"scheduler": decay, "interval": "step"}}

    @torch.no_grad()
    def probabilities(self, image: np.ndarray) -> np.ndarray:
        """Class probabilities (3, ...) of a whole frame, predicted window by window (Gaussian-weighted).

        Parameters
        ----------
        image : np.ndarray
            (Y, X) or (Z, Y, X) grey levels, normalised here as in training.

        Returns
        -------
        np.ndarray
            float32 softmax over the three classes.
        """
        self.eval()
        x = torch.from_numpy(normalise(image))[None, None].to(self.device)
        # The network takes sizes that are multiples of its strides; the sliding window pads the frame.
        logits = sliding_window_inference(
            x, tuple(self.hparams.patch), 4, self.net, overlap=0.25, mode="gaussian", padding_mode="constant"
        )
        return torch.softmax(logits.float(), dim=1)[0].cpu().numpy()

    def segment(self, image: np.ndarray, *, min_size: int = 8) -> np.ndarray:
        """Instance labels of a frame (:func:`cellsdf.segment.instances.instances`)."""
        return instances(self.probabilities(image), min_size=min_size)
