"""MNIST through torchvision: 60,000 training and 10,000 test digits, 28 px, optionally padded or resized."""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import torch.nn.functional as F
from torch import Tensor
from torch.utils.data import Dataset
from torchvision.datasets import MNIST
from torchvision.transforms import v2

from src.data.image_base import TorchvisionTrainTestDataModule, require_download, unwrap_subset

MNIST_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)


class MNISTDataModule(TorchvisionTrainTestDataModule):
    """MNIST handwritten digits (1, S, S) in [-1, 1] with labels 0-9.

    ``prepare_data`` downloads into ``data_dir/MNIST/raw`` (rank zero); ``setup`` reads the idx files with
    torchvision. The val split is ``val_fraction`` of the 60,000 training images (seeded); the test split is
    the official 10,000.

    Args:
        data_dir: Folder that holds (or receives) ``MNIST/raw/*-ubyte``.
        image_size: 28 (native) or larger; 32 suits the DCGAN and ResNet nets.
        resize: How to reach ``image_size`` > 28: ``pad`` with black borders (keeps the strokes as they are)
            or ``resize`` (bilinear).
        batch_size: Images per batch, per device (the global batch is ``batch_size * devices``).
        val_fraction: Share of the training images held out for validation; 0 validates on the test split.
        seed: Seed of the val split and of the in-memory shuffling.
        in_memory: Keep all images as one uint8 tensor on the training device (47 MB at 28 px) and slice
            batches from it, with no workers; ``False``: a DataLoader with workers.
        num_workers: DataLoader workers; ``None``: 0 on the CPU, else ``min(8, cores per device - 1)``.
        pin_memory: Pinned host memory; ``None``: on when training on a CUDA device.
        persistent_workers: Keep workers between epochs; ``None``: on when there are workers.
        download: Download the dataset when it is missing.
    """

    dataset_class = MNIST

    num_classes = 10
    dataset_name = "MNIST"

    def __init__(
        self,
        data_dir: str = "data/",
        image_size: int = 32,
        resize: Literal["pad", "resize"] = "pad",
        batch_size: int = 64,
        val_fraction: float = 0.1,
        seed: int = 0,
        in_memory: bool = True,
        num_workers: int | None = None,
        pin_memory: bool | None = None,
        persistent_workers: bool | None = None,
        download: bool = True,
    ) -> None:
        super().__init__(
            data_dir=data_dir,
            batch_size=batch_size,
            val_fraction=val_fraction,
            seed=seed,
            flip=False,  # flipped digits are not digits
            in_memory=in_memory,
            num_workers=num_workers,
            pin_memory=pin_memory,
            persistent_workers=persistent_workers,
        )
        if image_size < 28:
            raise ValueError(f"data.image_size must be >= 28 for MNIST, got image_size={image_size}")
        if resize not in ("pad", "resize"):
            raise ValueError(f"data.resize must be 'pad' or 'resize', got resize={resize!r}")
        if resize == "pad" and (image_size - 28) % 2:
            raise ValueError(
                f"data.resize='pad' needs an even margin, got image_size={image_size}; "
                f"use an even size such as 32 or --data.resize=resize"
            )
        self.image_size, self.resize, self.download = image_size, resize, download
        self.save_hyperparameters()

    @property
    def data_shape(self) -> tuple[int, int, int]:
        """Shape of one image (1, S, S)."""
        return (1, self.image_size, self.image_size)

    def geometry(self) -> list[Callable]:
        """Pad or resize 28 px digits to ``image_size``."""
        if self.image_size == 28:
            return []
        if self.resize == "pad":
            return [v2.Pad((self.image_size - 28) // 2, fill=0)]
        return [v2.Resize(self.image_size)]

    def uint8_split(self, dataset: Dataset) -> tuple[Tensor, Tensor] | None:
        """The split straight from torchvision's uint8 array, padded like ``v2.Pad`` (not for ``resize``)."""
        if self.image_size != 28 and self.resize != "pad":
            return None
        mnist, idx = unwrap_subset(dataset)
        images = mnist.data[idx].unsqueeze(1)  # (N, 1, 28, 28) uint8
        margin = (self.image_size - 28) // 2
        if margin:
            images = F.pad(images, (margin, margin, margin, margin), value=0)  # (N, 1, S, S)
        return images.contiguous(), mnist.targets[idx].long()

    def not_found(self, error: BaseException | None = None) -> Exception:
        """The error naming the missing files, where they go and how to get them."""
        raw = self.data_dir / "MNIST" / "raw"
        return require_download(
            "MNIST",
            raw,
            error=error,
            download=self.download,
            how=f"Expected the files {', '.join(MNIST_FILES)} there. To get them, run "
            f"`python -c \"from torchvision.datasets import MNIST; MNIST('data/', download=True)\"` on a machine "
            f"with internet and copy its data/MNIST/ to {self.data_dir / 'MNIST'}, or download the four "
            f"*-ubyte.gz files from https://ossci-datasets.s3.amazonaws.com/mnist/ and gunzip them into {raw}; "
            f"or point --data.data_dir at the folder that contains MNIST/.",
        )
