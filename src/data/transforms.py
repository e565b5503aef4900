"""Image transforms of the datamodules: uint8 to [-1, 1] (or dequantised), random flips per batch, labelled images."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor
from torch.utils.data import Dataset


def to_signed_unit(images: Tensor) -> Tensor:
    """uint8 images (..., C, H, W) in [0, 255] -> float32 in [-1, 1] (``x / 127.5 - 1``)."""
    return images.float().div(127.5).sub(1.0)


def dequantize(images: Tensor) -> Tensor:
    """uint8 images (..., C, H, W) -> float32 ``2·(x/256 - 0.5) + U[0, 1/128)``, as ``gan_cifar_resnet.py``.

    Each pixel value ``x`` becomes a uniform draw from ``[x/128 - 1, (x+1)/128 - 1)``: the 256 bins tile
    [-1, 1] (the top can round to 1.0 in float32), so the real data has a density instead of 256 atoms. Draws
    from torch's global RNG on the images' device.
    """
    x = images.float().div(128.0).sub(1.0)  # 2 * (x / 256 - 0.5), exact in float32
    return x + torch.rand_like(x).div(128.0)


class BatchTransform:
    """Turns a uint8 batch (B, C, H, W) into float in [-1, 1], flipping each image left-right with p=0.5.

    Used by the in-memory mode, on the training device; draws from torch's global RNG (seeded by
    ``seed_everything``), as ``RandomHorizontalFlip`` does in the DataLoader path.

    Args:
        flip: Apply random horizontal flips.
        dequantize: Convert with :func:`dequantize` instead of :func:`to_signed_unit`.
    """

    def __init__(self, flip: bool, dequantize: bool = False) -> None:
        self.flip, self.dequantize = flip, dequantize

    def __call__(self, images: Tensor) -> Tensor:
        """Convert (and maybe flip) a batch (B, C, H, W)."""
        out = dequantize(images) if self.dequantize else to_signed_unit(images)  # (B, C, H, W)
        if self.flip:
            mask = torch.rand(out.shape[0], device=out.device) < 0.5  # (B,)
            out = torch.where(mask[:, None, None, None], out.flip(-1), out)
        return out


def as_label(target: Any) -> int:
    """A dataset target as an integer class label; ``None`` (unlabelled data) becomes 0."""
    if target is None:
        return 0
    if isinstance(target, Tensor):
        return int(target.reshape(-1)[0]) if target.numel() else 0
    return int(target)


class ImageSplit(Dataset):
    """A dataset of ``(PIL image, target)`` seen through a transform: ``(transform(image), int label)``.

    Args:
        dataset: Yields ``(PIL image, target)``.
        transform: Applied to each image.
    """

    def __init__(self, dataset: Dataset, transform: Callable[[Any], Tensor]) -> None:
        self.dataset, self.transform = dataset, transform

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def __getitem__(self, index: int) -> tuple[Tensor, int]:
        image, target = self.dataset[index]
        return self.transform(image), as_label(target)
