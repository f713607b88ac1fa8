"""The auto-decoder: one latent code and one rotation per training sequence, a shared SIREN decoder."""

from __future__ import annotations

import pytorch_lightning as pl
import torch
from torch import nn

from cellsdf.errors import InputError
from cellsdf.geometry.rotation import axis_angle_matrix, rotate
from cellsdf.model.siren import SirenDecoder


def clamped_l1(
    predicted: torch.Tensor, target: torch.Tensor, clamp: float, *, dim: int | None = None
) -> torch.Tensor:
    """Mean |clamp(predicted) − clamp(target)|: only the band near the surface has to be exact (DeepSDF).

    ``dim`` takes the mean along one axis only (one loss per sequence of a batch); default over everything.
    """
    error = (predicted.clamp(-clamp, clamp) - target.clamp(-clamp, clamp)).abs()
    return error.mean() if dim is None else error.mean(dim=dim)


def eikonal_penalty(decoder: SirenDecoder, latent: torch.Tensor, coords: torch.Tensor) -> torch.Tensor:
    """Mean |‖∇ₓf‖ − 1| over points, the gradient taken with respect to the spatial coordinates only.

    Parameters
    ----------
    decoder : SirenDecoder
        The decoder f.
    latent : torch.Tensor
        (B, L) codes.
    coords : torch.Tensor
        (B, P, 4) points (z, y, x, t).

    Returns
    -------
    torch.Tensor
        Scalar penalty, differentiable (the graph of the gradient is kept).
    """
    xyz = coords[..., :3].detach().requires_grad_(True)
    values = decoder(latent, torch.cat([xyz, coords[..., 3:]], dim=-1))
    (grad,) = torch.autograd.grad(values.sum(), xyz, create_graph=True)
    return (grad.norm(dim=-1) - 1.0).abs().mean()


class AutoDecoder(pl.LightningModule):
    """Latent SIREN auto-decoder trained on point samples of signed distance functions.

    All arguments are plain values, so a checkpoint's hyper-parameters rebuild the module and load with
    ``torch.load(weights_only=True)``.

    Parameters
    ----------
    n_sequences : int
        Number of training sequences (one latent and one rotation each).
    decoder : dict
        Keyword arguments of :class:`~cellsdf.model.siren.SirenDecoder`.
    latent_std : float
        Standard deviation of the latents' normal initialisation.
    lr : dict
        Learning rates ``decoder``, ``latent`` and ``rotation``.
    lr_step, lr_gamma : int, float
        Every ``lr_step`` epochs all learning rates are multiplied by ``lr_gamma``.
    clamp : float
        Distance at which prediction and target are clamped in the loss (normalised units).
    code_reg : float
        Weight λ of the latent prior, λ·mean‖z‖², ramped up linearly over ``code_reg_warmup`` epochs.
    code_reg_warmup : int
        Epochs of the ramp (0: full weight from the start).
    code_noise : float
        Standard deviation of normal noise added to every code in each training step (0: off). The decoder
        then learns a neighbourhood of each code, not the code alone, so codes near and between the learned
        ones (what the samplers draw) decode into cells of the line too.
    rotations : bool
        Learn one rotation per sequence applied to the coordinates.
    rotation_epochs : int
        Rotations are learned during the first ``rotation_epochs`` epochs only, then kept fixed.
    eikonal_weight : float
        Weight of the eikonal term (0: off).
    eikonal_fraction : float
        Fraction of each item's points on which the eikonal term is evaluated.
    dataset : dict, optional
        What the model was trained on (path, sequence names, scale, spacing); stored for ``reconstruct``.
    """

    def __init__(
        self,
        n_sequences: int,
        decoder: dict,
        latent_std: float = 0.01,
        lr: dict | None = None,
        lr_step: int = 100,
        lr_gamma: float = 0.5,
        clamp: float = 0.1,
        code_reg: float = 1e-4,
        code_reg_warmup: int = 10,
        code_noise: float = 0.0,
        rotations: bool = False,
        rotation_epochs: int = 0,
        eikonal_weight: float = 0.0,
        eikonal_fraction: float = 0.1,
        dataset: dict | None = None,
    ):
        super().__init__()
        self.save_hyperparameters()
        self.decoder = SirenDecoder(**decoder)
        self.latents = nn.Embedding(n_sequences, self.decoder.latent_size)
        nn.init.normal_(self.latents.weight, 0.0, latent_std)
        self.rotations = nn.Embedding(n_sequences, 3) if rotations else None
        if self.rotations is not None:
            nn.init.zeros_(self.rotations.weight)
        self.lr = {"decoder": 1e-4, "latent": 1e-3, "rotation": 1e-3, **(lr or {})}

    def rotation_matrices(self, sequence: torch.Tensor) -> torch.Tensor | None:
        """Return the (B, 3, 3) rotations of the given sequences, or None when rotations are off."""
        if self.rotations is None:
            return None
        matrices = axis_angle_matrix(self.rotations(sequence))
        learning = self.training and self.current_epoch < self.hparams.rotation_epochs
        return matrices if learning else matrices.detach()

    def coordinates(self, xyz: torch.Tensor, t: torch.Tensor, matrices: torch.Tensor | None) -> torch.Tensor:
        """Return (B, P, 4) decoder input: rotated (z, y, x) points and each item's time."""
        if matrices is not None:
            xyz = rotate(xyz, matrices)
        return torch.cat([xyz, t[:, None, None].expand(-1, xyz.shape[1], 1).to(xyz.dtype)], dim=-1)

    def forward(self, sequence: torch.Tensor, t: torch.Tensor, xyz: torch.Tensor) -> torch.Tensor:
        """Signed distances of (B, P, 3) points of sequences ``sequence`` (B,) at times ``t`` (B,)."""
        coords = self.coordinates(xyz, t, self.rotation_matrices(sequence))
        return self.decoder(self.latents(sequence), coords)

    def losses(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Return the loss terms of a batch and their weighted sum ``loss``."""
        latent = self.latents(batch["sequence"])
        coords = self.coordinates(batch["xyz"], batch["t"], self.rotation_matrices(batch["sequence"]))
        noise = self.hparams.code_noise
        shown = latent + noise * torch.randn_like(latent) if self.training and noise > 0 else latent
        terms = {"sdf": clamped_l1(self.decoder(shown, coords), batch["sdf"], self.hparams.clamp)}
        warmup = self.hparams.code_reg_warmup
        ramp = min(1.0, (self.current_epoch + 1) / warmup) if warmup > 0 else 1.0
        terms["code"] = latent.pow(2).sum(-1).mean()
        loss = terms["sdf"] + self.hparams.code_reg * ramp * terms["code"]
        if self.hparams.eikonal_weight > 0:
            count = max(1, int(self.hparams.eikonal_fraction * coords.shape[1]))
            terms["eikonal"] = eikonal_penalty(self.decoder, latent, coords[:, :count])
            loss = loss + self.hparams.eikonal_weight * terms["eikonal"]
        terms["loss"] = loss
        return terms

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        """One optimisation step; a non-finite loss stops training before anything is saved."""
        terms = self.losses(batch)
        if not torch.isfinite(terms["loss"]):
            raise InputError(
                "training",
                f"the loss became {terms['loss'].item()} at epoch {self.current_epoch}, step "
                f"{self.global_step}; lower the learning rates (model.lr.*); the checkpoints already written "
                "are unchanged",
            )
        self.log_dict({f"train/{k}": v for k, v in terms.items()}, batch_size=len(batch["sequence"]))
        return terms["loss"]

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        """Clamped L1 on fixed point subsets, comparable across epochs (monitored for the best checkpoint)."""
        predicted = self(batch["sequence"], batch["t"], batch["xyz"])
        loss = clamped_l1(predicted, batch["sdf"], self.hparams.clamp)
        self.log("val/loss", loss, prog_bar=True, batch_size=len(batch["sequence"]))

    def configure_optimizers(self) -> dict:
        """Adam with separate learning rates for decoder, latents and rotations; a step schedule."""
        groups = [
            {"params": self.decoder.parameters(), "lr": self.lr["decoder"]},
            {"params": self.latents.parameters(), "lr": self.lr["latent"]},
        ]
        if self.rotations is not None:
            groups.append({"params": self.rotations.parameters(), "lr": self.lr["rotation"]})
        optimizer = torch.optim.Adam(groups)
        schedule = torch.optim.lr_scheduler.StepLR(optimizer, self.hparams.lr_step, self.hparams.lr_gamma)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "interval": "epoch"}}
