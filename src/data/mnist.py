"""MNIST through torchvision: 60,000 training and 10,000 test digits, 28 px, optionally padded or resized."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

import torch.nn.functional as F
from torch import Tensor
from torch.utils.data import Dataset
from torchvision.datasets import MNIST
from torchvision.transforms import v2

from src.data.errors import require_download
from src.data.splits import unwrap_subset
from src.data.torchvision_base import TorchvisionTrainTestDataModule

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
        image_size: 28 (native) or larger; 32 suits the DCGAN and ResNet nets.
        resize: How to reach ``image_size`` > 28: ``pad`` with black borders (keeps the strokes as they are)
            or ``resize`` (bilinear).
        **kwargs: The options of :class:`~src.data.torchvision_base.TorchvisionTrainTestDataModule`
            (``in_memory``, ``download``) and :class:`~src.data.base.ImageDataModule` (``data_dir``, the folder
            that holds or receives ``MNIST/raw/*-ubyte``; ``batch_size``, ``val_fraction``, ``seed``, ...), but
            not ``flip``: flipped digits are not digits.
    """

    dataset_class = MNIST

    num_classes = 10
    dataset_name = "MNIST"

    def __init__(self, image_size: int = 32, resize: Literal["pad", "resize"] = "pad", **kwargs: Any) -> None:
        super().__init__(flip=False, **kwargs)  # flipped digits are not digits
        if image_size < 28:
            raise ValueError(f"data.image_size must be >= 28 for MNIST, got image_size={image_size}")
        if resize not in ("pad", "resize"):
            raise ValueError(f"data.resize must be 'pad' or 'resize', got resize={resize!r}")
        if resize == "pad" and (image_size - 28) % 2:
            raise ValueError(
                f"data.resize='pad' needs an even margin, got image_size={image_size}; "
                f"use an even size such as 32 or --data.resize=resize"
            )
        self.image_size, self.resize = image_size, resize

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
