"""LightningDataModule serving batches of (sequence index, t, xyz, sdf) from a prepared dataset."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, Dataset

from cellsdf.dataset.prepared import PreparedDataset, read_prepared


class FramePoints(Dataset):
    """One item per frame: a random subset of that frame's stored point samples.

    Parameters
    ----------
    data : PreparedDataset
        Samples in memory.
    points_per_item : int
        Points drawn per frame and item (without replacement when the frame has enough).
    repeats : int
        How many times each frame appears per epoch.
    seed : int, optional
        Fixes the subsets (for validation); None draws fresh subsets each time from torch's generator,
        which Lightning's ``seed_everything`` seeds.
    """

    def __init__(
        self, data: PreparedDataset, points_per_item: int, repeats: int = 1, seed: int | None = None
    ):
        self.points = torch.from_numpy(data.points)
        self.sdf = torch.from_numpy(data.sdf)
        self.sequence = torch.from_numpy(data.frame_sequence.astype(np.int64))
        self.t = torch.from_numpy(data.frame_t)
        self.points_per_item = min(points_per_item, self.points.shape[1])
        self.repeats = repeats
        self.seed = seed

    def __len__(self) -> int:
        return len(self.points) * self.repeats

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        frame = index % len(self.points)
        generator = None if self.seed is None else torch.Generator().manual_seed(self.seed + frame)
        pick = torch.randperm(self.points.shape[1], generator=generator)[: self.points_per_item]
        return {
            "sequence": self.sequence[frame],
            "t": self.t[frame],
            "xyz": self.points[frame, pick],
            "sdf": self.sdf[frame, pick],
        }


class PreparedDataModule(pl.LightningDataModule):
    """Training and validation batches from a prepared-dataset file.

    A batch is a dict with ``sequence`` (B,), ``t`` (B,), ``xyz`` (B, P, 3) normalised (z, y, x) and
    ``sdf`` (B, P): B frames with P points each.

    Parameters
    ----------
    path : str or Path
        Prepared dataset (``cellsdf prepare``).
    batch_size : int
        Frames per batch.
    points_per_item : int
        Points per frame in a batch.
    repeats : int
        Passes over all frames per training epoch.
    num_workers : int
        DataLoader worker processes.
    val_seed : int
        Seed of the fixed validation subsets.
    """

    def __init__(
        self,
        path: str | Path,
        batch_size: int = 8,
        points_per_item: int = 4096,
        repeats: int = 1,
        num_workers: int = 0,
        val_seed: int = 0,
    ):
        super().__init__()
        self.path = Path(path)
        self.batch_size = batch_size
        self.points_per_item = points_per_item
        self.repeats = repeats
        self.num_workers = num_workers
        self.val_seed = val_seed
        self.data: PreparedDataset | None = None

    def setup(self, stage: str | None = None) -> None:
        """Read the prepared file once (all samples fit in memory: 16 bytes per point)."""
        if self.data is None:
            self.data = read_prepared(self.path)

    def train_dataloader(self) -> DataLoader:
        """Shuffled frames, fresh point subsets every epoch."""
        items = FramePoints(self.data, self.points_per_item, self.repeats)
        return DataLoader(items, self.batch_size, shuffle=True, num_workers=self.num_workers, drop_last=False)

    def val_dataloader(self) -> DataLoader:
        """Every frame once with a fixed point subset, so validation losses are comparable across epochs."""
        items = FramePoints(self.data, self.points_per_item, seed=self.val_seed)
        return DataLoader(items, self.batch_size, shuffle=False, num_workers=self.num_workers)
