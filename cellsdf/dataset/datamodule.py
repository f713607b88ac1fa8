"""LightningDataModule serving batches of (sequence index, t, xyz, sdf) from a prepared dataset."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from cellsdf.dataset.prepared import PreparedDataset, read_prepared


class FramePoints(Dataset):
    """Items are frames with a random subset of their stored point samples, drawn from the item index.

    The subset depends only on ``seed`` and the index, so a run is reproducible and a resumed run draws the
    same points as an uninterrupted one. :class:`EpochSampler` gives indices that encode the epoch, so every
    epoch sees fresh subsets.

    Parameters
    ----------
    data : PreparedDataset
        Samples in memory.
    points_per_item : int
        Points drawn per frame and item (without replacement when the frame has enough).
    seed : int
        Seed of the subsets.
    """

    def __init__(self, data: PreparedDataset, points_per_item: int, seed: int = 0):
        self.points = torch.from_numpy(data.points)
        self.sdf = torch.from_numpy(data.sdf)
        self.sequence = torch.from_numpy(data.frame_sequence.astype(np.int64))
        self.t = torch.from_numpy(data.frame_t)
        self.points_per_item = min(points_per_item, self.points.shape[1])
        self.seed = seed

    def __len__(self) -> int:
        return len(self.points)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        frame = index % len(self.points)
        rng = np.random.default_rng([self.seed, index])
        pick = torch.from_numpy(rng.choice(self.points.shape[1], self.points_per_item, replace=False))
        return {
            "sequence": self.sequence[frame],
            "t": self.t[frame],
            "xyz": self.points[frame, pick],
            "sdf": self.sdf[frame, pick],
        }


class EpochSampler(Sampler[int]):
    """Shuffled item indices that depend only on (seed, epoch), sharded over distributed processes.

    Lightning calls :meth:`set_epoch` at the start of every epoch, including after a resume. Indices are
    offset by ``epoch * n`` so that :class:`FramePoints` draws new point subsets each epoch.

    Parameters
    ----------
    n : int
        Number of items (frames).
    repeats : int
        Passes over all items per epoch.
    seed : int
        Seed of the order.
    """

    def __init__(self, n: int, repeats: int = 1, seed: int = 0):
        self.n, self.repeats, self.seed, self.epoch = n, repeats, seed, 0

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose order the next iteration yields."""
        self.epoch = epoch

    def _shard(self) -> tuple[int, int]:
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            return torch.distributed.get_rank(), torch.distributed.get_world_size()
        return 0, 1

    def __len__(self) -> int:
        return -(-self.n * self.repeats // self._shard()[1])

    def __iter__(self) -> Iterator[int]:
        rank, world = self._shard()
        rng = np.random.default_rng([self.seed, self.epoch])
        order = np.concatenate(
            [rng.permutation(self.n) + self.n * (self.epoch * self.repeats + r) for r in range(self.repeats)]
        )
        # Every process needs the same number of steps, so the order wraps around to fill the last shard.
        order = np.resize(order, len(self) * world)
        return iter(order[rank::world].tolist())


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
    seed : int
        Seed of the training order and point subsets.
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
        seed: int = 0,
        val_seed: int = 1,
    ):
        super().__init__()
        self.path = Path(path)
        self.batch_size = batch_size
        self.points_per_item = points_per_item
        self.repeats = repeats
        self.num_workers = num_workers
        self.seed = seed
        self.val_seed = val_seed
        self.data: PreparedDataset | None = None

    def setup(self, stage: str | None = None) -> None:
        """Read the prepared file once (all samples fit in memory: 16 bytes per point)."""
        if self.data is None:
            self.data = read_prepared(self.path)

    def train_dataloader(self) -> DataLoader:
        """Shuffled frames, fresh point subsets every epoch."""
        items = FramePoints(self.data, self.points_per_item, self.seed)
        sampler = EpochSampler(len(items), self.repeats, self.seed)
        return DataLoader(items, self.batch_size, sampler=sampler, num_workers=self.num_workers)

    def val_dataloader(self) -> DataLoader:
        """Every frame once with a fixed point subset, so validation losses are comparable across epochs."""
        items = FramePoints(self.data, self.points_per_item, self.val_seed)
        return DataLoader(items, self.batch_size, shuffle=False, num_workers=self.num_workers)
