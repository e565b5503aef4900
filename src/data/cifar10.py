"""CIFAR-10 through torchvision: 50,000 training and 10,000 test images, 32 px RGB, 10 classes."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor
from torch.utils.data import Dataset
from torchvision.datasets import CIFAR10

from src.data.errors import require_download
from src.data.splits import unwrap_subset
from src.data.torchvision_base import TorchvisionTrainTestDataModule

CIFAR10_FILES = (
    "data_batch_1",
    "data_batch_2",
    "data_batch_3",
    "data_batch_4",
    "data_batch_5",
    "test_batch",
    "batches.meta",
)


class CIFAR10DataModule(TorchvisionTrainTestDataModule):
    """CIFAR-10 images (3, 32, 32) in [-1, 1] with labels 0-9.

    ``prepare_data`` downloads and extracts ``cifar-10-python.tar.gz`` into ``data_dir`` (rank zero);
    ``setup`` reads the pickled batches with torchvision (which checks their md5). The val split is
    ``val_fraction`` of the training images (seeded); ``val_fraction=0`` trains on all 50,000 and validates
    on the official test split, as the paper's recipe does.

    Its options are those of :class:`~src.data.torchvision_base.TorchvisionTrainTestDataModule` (``in_memory``,
    ``download``) and :class:`~src.data.base.ImageDataModule` (``data_dir``, the folder that holds or receives
    ``cifar-10-batches-py/``; ``batch_size``, ``val_fraction``, ``seed``, ``flip``, ...).
    """

    dataset_class = CIFAR10
    num_classes = 10
    dataset_name = "CIFAR-10"
    data_shape = (3, 32, 32)  # type: ignore[assignment]

    def geometry(self) -> list[Callable]:
        """None: CIFAR-10 is already 32 px."""
        return []

    def uint8_split(self, dataset: Dataset) -> tuple[Tensor, Tensor]:
        """The split straight from torchvision's uint8 array (N, 32, 32, 3), as (N, 3, 32, 32)."""
        cifar, idx = unwrap_subset(dataset)
        images = torch.from_numpy(cifar.data)[idx].permute(0, 3, 1, 2).contiguous()  # (N, 3, 32, 32)
        return images, torch.as_tensor(cifar.targets, dtype=torch.long)[idx]

    def not_found(self, error: BaseException | None = None) -> Exception:
        """The error naming the missing files, where they go and how to get them."""
        folder = self.data_dir / CIFAR10.base_folder
        return require_download(
            "CIFAR-10",
            folder,
            error=error,
            download=self.download,
            how=f"Expected the files {', '.join(CIFAR10_FILES)} there, with torchvision's md5 sums. To get them, "
            f"download {CIFAR10.url} on a machine with internet and extract it into {self.data_dir} "
            f"(`tar -xzf cifar-10-python.tar.gz -C {self.data_dir}`), or point --data.data_dir at the folder "
            f"that contains {CIFAR10.base_folder}/.",
        )
