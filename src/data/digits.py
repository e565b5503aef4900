"""scikit-learn's handwritten digits (1797 images, 8x8): real data that ships offline, the default dataset."""

from __future__ import annotations

import lightning.pytorch as pl
import torch
import torch.nn.functional as F
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from torch import Tensor
from torch.utils.data import DataLoader, TensorDataset

from src.data.memory import TensorBatches

DIGITS_TEST_FRACTION = 0.1
DIGITS_TEST_SEED = 0  # the digits classifier holds out the same test split


def load_digits_tensors(image_size: int = 32) -> tuple[Tensor, Tensor]:
    """All 1797 digits as images (N, 1, S, S) in [-1, 1] and labels (N,)."""
    digits = load_digits()
    images = torch.from_numpy(digits.images).float().unsqueeze(1) / 16.0  # (N, 1, 8, 8) in [0, 1]
    if image_size != 8:
        images = F.interpolate(images, size=(image_size, image_size), mode="bilinear", antialias=True)
    return images.clamp(0, 1) * 2 - 1, torch.from_numpy(digits.target).long()


def split_indices(labels: Tensor, val_fraction: float, seed: int) -> tuple[Tensor, Tensor, Tensor]:
    """Stratified train/val/test indices; the test split is fixed, the val split depends on ``seed``."""
    idx = torch.arange(len(labels)).numpy()
    y = labels.numpy()
    rest, test = train_test_split(
        idx, test_size=DIGITS_TEST_FRACTION, random_state=DIGITS_TEST_SEED, stratify=y
    )
    if val_fraction > 0:
        train, val = train_test_split(rest, test_size=val_fraction, random_state=seed, stratify=y[rest])
    else:
        train, val = rest, rest[:0]
    return tuple(torch.as_tensor(i) for i in (train, val, test))  # type: ignore[return-value]


class DigitsDataModule(pl.LightningDataModule):
    """The 8x8 digits of ``sklearn.datasets.load_digits``, resized and scaled to [-1, 1].

    Batches are ``(images, labels)`` with images (B, 1, S, S). The test split (10%, stratified, fixed) is the
    one the digits classifier was evaluated on; the val split is ``val_fraction`` of the rest.

    Args:
        image_size: Side of the resized images (8 is native; 32 by default for the DCGAN nets).
        batch_size: Images per batch, per device.
        val_fraction: Share of the non-test images held out for validation.
        seed: Seed of the val split and of the shuffling.
        in_memory: Keep the whole dataset as one tensor on the training device and slice batches from it
            (fast, no workers); ``False`` uses a DataLoader.
        num_workers: DataLoader workers when ``in_memory`` is false; ``None``: 0 (the digits are tiny).
            ``None`` is the default so that switching ``--data`` to another datamodule, which keeps shared
            arguments, keeps that datamodule's automatic choice.
    """

    num_classes = 10

    def __init__(
        self,
        image_size: int = 32,
        batch_size: int = 64,
        val_fraction: float = 0.1,
        seed: int = 0,
        in_memory: bool = True,
        num_workers: int | None = None,
    ) -> None:
        super().__init__()
        if image_size < 8:
            raise ValueError(f"data.image_size must be >= 8 for digits, got image_size={image_size}")
        if batch_size < 1:
            raise ValueError(f"data.batch_size must be >= 1, got batch_size={batch_size}")
        if not 0 <= val_fraction < 0.5:
            raise ValueError(f"data.val_fraction must be in [0, 0.5), got val_fraction={val_fraction}")
        self.save_hyperparameters()
        self.image_size, self.batch_size, self.val_fraction = image_size, batch_size, val_fraction
        self.seed, self.in_memory, self.num_workers = seed, in_memory, num_workers
        self.splits: dict[str, tuple[Tensor, Tensor]] = {}
        self._train_batches: TensorBatches | None = None
        self._loader_state: dict = {}

    @property
    def data_shape(self) -> tuple[int, int, int]:
        """Shape of one image (1, S, S)."""
        return (1, self.image_size, self.image_size)

    image_shape = data_shape

    def setup(self, stage: str | None = None) -> None:
        """Load, resize and split the digits (once)."""
        if self.splits:
            return
        images, labels = load_digits_tensors(self.image_size)
        for name, idx in zip(("train", "val", "test"), split_indices(labels, self.val_fraction, self.seed)):
            self.splits[name] = (images[idx], labels[idx])

    def _device(self) -> torch.device:
        return self.trainer.strategy.root_device if self.trainer is not None else torch.device("cpu")

    def _loader(self, split: str, train: bool) -> TensorBatches | DataLoader:
        images, labels = self.splits[split]
        if self.in_memory:
            rank, world = (self.trainer.global_rank, self.trainer.world_size) if self.trainer else (0, 1)
            return TensorBatches(
                images,
                labels,
                self.batch_size,
                shuffle=train,
                drop_last=train,
                seed=self.seed,
                rank=rank,
                world_size=world,
            ).to(self._device())
        return DataLoader(
            TensorDataset(images, labels),
            batch_size=self.batch_size,
            shuffle=train,
            drop_last=train,
            num_workers=self.num_workers or 0,
            persistent_workers=bool(self.num_workers),
        )

    def train_dataloader(self) -> TensorBatches | DataLoader:
        """Shuffled training batches."""
        if not self.in_memory:
            return self._loader("train", True)
        if self._train_batches is None:
            self._train_batches = self._loader("train", True)  # type: ignore[assignment]
            if self._loader_state:
                self._train_batches.load_state_dict(self._loader_state)
        return self._train_batches  # type: ignore[return-value]

    def val_dataloader(self) -> TensorBatches | DataLoader:
        """Validation batches in a fixed order."""
        return self._loader("val" if len(self.splits["val"][0]) else "test", False)

    def test_dataloader(self) -> TensorBatches | DataLoader:
        """Test batches in a fixed order."""
        return self._loader("test", False)

    def state_dict(self) -> dict:
        """Shuffling state of the in-memory loader, so a resumed run sees the same epochs."""
        return self._train_batches.state_dict() if self._train_batches is not None else {}

    def load_state_dict(self, state_dict: dict) -> None:
        """Restore the shuffling state."""
        self._loader_state = dict(state_dict)
        if state_dict and self._train_batches is not None:
            self._train_batches.load_state_dict(state_dict)
