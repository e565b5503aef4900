"""A worked example of forking the template: your own dataset as a LightningDataModule, wired in by YAML.

``examples/ring.yaml`` points ``data.class_path`` at :class:`RingDataModule`; nothing in ``src/`` changes.
Train it with ``python -m src.train --config examples/ring.yaml``.
"""

from __future__ import annotations

import math

import lightning.pytorch as pl
import torch
from torch.utils.data import DataLoader, TensorDataset


class RingDataModule(pl.LightningDataModule):
    """Points on a noisy circle in 2-D.

    What the template needs from a datamodule: ``data_shape`` (the shape of one sample, linked into the
    networks), ``num_classes`` (0 when unlabelled), and loaders yielding tensors or ``(x, y)`` batches.

    Args:
        radius: Radius of the circle.
        noise: Standard deviation of the Gaussian noise around it.
        num_points: Size of the training set.
        batch_size: Points per batch, per device.
        seed: Seed of the generated points.
    """

    data_shape = (2,)
    num_classes = 0

    def __init__(
        self,
        radius: float = 1.0,
        noise: float = 0.05,
        num_points: int = 4096,
        batch_size: int = 256,
        seed: int = 0,
    ) -> None:
        super().__init__()
        if radius <= 0:
            raise ValueError(f"data.radius must be > 0, got radius={radius}")
        self.radius, self.noise, self.num_points, self.batch_size, self.seed = (
            radius,
            noise,
            num_points,
            batch_size,
            seed,
        )

    def sample(self, n: int, seed: int | None = None) -> torch.Tensor:
        """``n`` points (n, 2) on the noisy circle (``SampleGrid`` plots them as the real data)."""
        g = torch.Generator().manual_seed(self.seed if seed is None else seed)
        angle = 2 * math.pi * torch.rand(n, generator=g)
        ring = self.radius * torch.stack([angle.cos(), angle.sin()], dim=1)
        return ring + self.noise * torch.randn(n, 2, generator=g)

    def train_dataloader(self) -> DataLoader:
        """Shuffled batches of the training points."""
        return DataLoader(
            TensorDataset(self.sample(self.num_points)),
            batch_size=self.batch_size,
            shuffle=True,
            drop_last=True,
        )

    def val_dataloader(self) -> DataLoader:
        """A fixed validation set from another seed."""
        return DataLoader(
            TensorDataset(self.sample(4 * self.batch_size, seed=self.seed + 1)), batch_size=self.batch_size
        )
