"""scikit-learn's two sample photos as HR crops for super-resolution: training crops and held-out regions apart.

``sklearn.datasets.load_sample_images`` ships two 427x640 RGB photos (``china.jpg``, ``flower.jpg``) with the
package, so this works offline. Each photo is cut by rows into three bands that share no pixel: the top
``1 - 2·holdout_fraction`` for training, then a validation and a test band (the bottoms of the photos hold
trees, the pagoda's base and the flowers; their tops are largely sky, left to training). Training crops lie at every
``stride`` pixels of the training region (shuffled each epoch, optionally flipped); validation and test crops
tile their regions without overlap. Batches are ``(HR crops (B, C, S, S) in [-1, 1], zeros (B,))``;
:class:`~src.models.SuperResolutionWGAN` makes the LR image of each crop.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PIL import Image
from torch.utils.data import Dataset

from src.data.base import ImageDataModule
from src.data.folder import color_transform


class PhotoCrops(Dataset):
    """``(PIL crop, 0)`` at every ``stride`` pixels of a row range ``[top, bottom)`` of each photo."""

    def __init__(self, photos: list[Image.Image], top: int, bottom: int, size: int, stride: int) -> None:
        self.photos, self.size = photos, size
        self.boxes: list[tuple[int, tuple[int, int, int, int]]] = []
        for index, photo in enumerate(photos):
            for y in range(top, bottom - size + 1, stride):
                for x in range(0, photo.width - size + 1, stride):
                    self.boxes.append((index, (x, y, x + size, y + size)))

    def __len__(self) -> int:
        return len(self.boxes)

    def __getitem__(self, index: int) -> tuple[Image.Image, int]:
        photo, box = self.boxes[index]
        return self.photos[photo].crop(box), 0


class SamplePhotosDataModule(ImageDataModule):
    """HR crops of scikit-learn's two sample photos (427x640), with held-out validation and test regions.

    Args:
        image_size: Side of the square HR crops (a multiple of the model's scale).
        stride: Step between training crops, in pixels (8: 3,630 crops of 64 px).
        holdout_fraction: Share of each photo's height held out for validation, and the same again for test (the
            bottom rows: validation, then test).
        channels: 3 (RGB) or 1 (grayscale).
        **kwargs: The options of :class:`~src.data.base.ImageDataModule` (``batch_size``, ``flip``, ``seed``,
            ...); ``val_fraction`` is unused (the held-out regions are fixed) and ``in_memory`` is off.
    """

    dataset_name = "sample photos"

    def __init__(
        self,
        image_size: int = 64,
        stride: int = 8,
        holdout_fraction: float = 0.2,
        channels: int = 3,
        **kwargs: Any,
    ) -> None:
        super().__init__(in_memory=False, **kwargs)
        if not 0 < holdout_fraction < 0.5:
            raise ValueError(
                f"data.holdout_fraction must be in (0, 0.5), got holdout_fraction={holdout_fraction}"
            )
        if stride < 1:
            raise ValueError(f"data.stride must be >= 1, got stride={stride}")
        color_transform(channels)  # validates channels
        self.image_size, self.stride, self.channels = image_size, stride, channels
        self.holdout_fraction = holdout_fraction

    @property
    def data_shape(self) -> tuple[int, int, int]:
        """Shape of one HR crop (C, S, S)."""
        return (self.channels, self.image_size, self.image_size)

    def geometry(self) -> list[Callable]:
        """The color mode only: the crops already have their size."""
        return [color_transform(self.channels)]

    def regions(self, width: int) -> dict[str, tuple[int, int]]:
        """Column ranges ``[left, right)`` of the train, val and test regions of a photo ``width`` pixels wide."""
        held = round(width * self.holdout_fraction)
        return {
            "train": (0, width - 2 * held),
            "val": (width - 2 * held, width - held),
            "test": (width - held, width),
        }

    def load_splits(self) -> dict[str, Dataset]:
        """Training crops at every ``stride`` pixels; validation and test crops tiling their regions."""
        from sklearn.datasets import load_sample_images

        photos = [Image.fromarray(array) for array in load_sample_images().images]  # two (427, 640, 3) uint8
        regions = self.regions(photos[0].height)
        held = regions["val"][1] - regions["val"][0]
        if self.image_size > held:
            raise ValueError(
                f"data.image_size={self.image_size} is larger than the held-out bands ({held} px high); "
                f"lower data.image_size or raise data.holdout_fraction (now {self.holdout_fraction})"
            )
        splits: dict[str, Dataset] = {}
        for name, (top, bottom) in regions.items():
            stride = self.stride if name == "train" else self.image_size
            splits[name] = PhotoCrops(photos, top, bottom, self.image_size, stride)
        return splits
