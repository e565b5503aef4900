"""Base of the torchvision datasets with ``train=True/False`` files (MNIST, CIFAR-10): download, load, split."""

from __future__ import annotations

from abc import abstractmethod
from typing import Any

from torch.utils.data import Dataset

from src.data.base import ImageDataModule


class TorchvisionTrainTestDataModule(ImageDataModule):
    """A torchvision dataset with ``train=True/False`` files (MNIST, CIFAR-10): download, load, split.

    Subclasses set :attr:`dataset_class` and implement :meth:`not_found`, the error that says where the files
    go; the training files are split into train/val (seeded) and the official test files are the test split.

    Args:
        in_memory: Keep all images as one uint8 tensor on the training device and slice batches from it,
            with no workers (MNIST: 47 MB at 28 px, CIFAR-10: 184 MB); ``False``: a DataLoader with workers.
        download: Download the dataset when it is missing.
        **kwargs: The options of :class:`~src.data.base.ImageDataModule` (``data_dir``, ``batch_size``,
            ``val_fraction``, ``seed``, ...). ``val_fraction=0`` validates on the official test split.
    """

    dataset_class: type

    def __init__(self, in_memory: bool = True, download: bool = True, **kwargs: Any) -> None:
        super().__init__(in_memory=in_memory, **kwargs)
        self.download = download

    @abstractmethod
    def not_found(self, error: BaseException | None = None) -> Exception:
        """The error to raise when the files are missing and cannot be downloaded."""

    def prepare_data(self) -> None:
        """Download the dataset when it is missing (Lightning calls this on rank zero); failing, raise a clear error."""
        if not self.download:
            return
        try:
            self.dataset_class(self.data_dir, train=True, download=True)
        except Exception as error:
            raise self.not_found(error) from error

    def _load(self, train: bool) -> Dataset:
        try:
            return self.dataset_class(self.data_dir, train=train, download=False)
        except RuntimeError as error:
            raise self.not_found() from error

    def load_splits(self) -> dict[str, Dataset]:
        """The training files split into train/val (seeded) and the official test files."""
        train, val = self.holdout(self._load(train=True), self.val_fraction)
        return {"train": train, "val": val, "test": self._load(train=False)}
