"""scikit-learn's handwritten digits (1797 images, 8x8): real data that ships offline, the default dataset.

This file also defines the digits' one train/test split: the digits classifier (``src/metrics``) was trained
on its train part and checked on its test part, which :class:`DigitsDataModule` calls ``test``.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from PIL import Image
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from torch import Tensor
from torch.utils.data import Dataset
from torchvision.transforms.v2.functional import to_pil_image

from src.data.base import ImageDataModule

DIGITS_TEST_FRACTION = 0.1
DIGITS_TEST_SEED = 0  # the digits classifier was trained and checked on this split: keep it fixed


def load_digits_tensors(image_size: int = 32) -> tuple[Tensor, Tensor]:
    """All 1797 digits as float images (N, 1, S, S) in [-1, 1] (bilinear, antialiased resize) and labels (N,)."""
    digits = load_digits()
    images = torch.from_numpy(digits.images).float().unsqueeze(1) / 16.0  # (N, 1, 8, 8) in [0, 1]
    if image_size != 8:
        images = F.interpolate(images, size=(image_size, image_size), mode="bilinear", antialias=True)
    return images.clamp(0, 1) * 2 - 1, torch.from_numpy(digits.target).long()


def split_indices(labels: Tensor, val_fraction: float, seed: int) -> tuple[Tensor, Tensor, Tensor]:
    """The digits' train/val/test indices, stratified by class.

    The test split (10%: 180 of the 1797 digits) is fixed; it is the held-out set of the digits classifier.
    The val split is ``val_fraction`` of the rest and depends on ``seed``; with ``val_fraction=0`` the train
    split is all of the rest (the classifier's training set), in the same order.

    Args:
        labels: The labels (N,) of all digits, as :func:`load_digits_tensors` gives them.
        val_fraction: Share of the non-test digits held out for validation.
        seed: Seed of the val split.

    Returns:
        Index tensors ``(train, val, test)``.
    """
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


class TensorImages(Dataset):
    """uint8 images (N, C, H, W) and labels (N,) as a dataset of ``(PIL image, label)``.

    Args:
        images: uint8 images (N, C, H, W).
        labels: Integer labels (N,).
    """

    def __init__(self, images: Tensor, labels: Tensor) -> None:
        self.images, self.labels = images, labels

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> tuple[Image.Image, int]:
        return to_pil_image(self.images[index]), int(self.labels[index])


class DigitsDataModule(ImageDataModule):
    """The 8x8 digits of ``sklearn.datasets.load_digits``, resized and scaled to [-1, 1].

    Batches are ``(images, labels)`` with images (B, 1, S, S). The digits are resized once (bilinear,
    antialiased) and stored as uint8, as every image dataset is: ``round((x + 1) * 127.5)`` of the resized
    image ``x`` in [-1, 1], which is also how metrics see them. The test split (10%, stratified, fixed) is the
    one the digits classifier was checked on; the val split is ``val_fraction`` of the rest.

    Args:
        image_size: Side of the resized images (8 is native; 32 by default for the DCGAN nets).
        in_memory: Keep the whole dataset as one tensor on the training device and slice batches from it
            (fast, no workers); ``False`` uses a DataLoader.
        **kwargs: The options of :class:`~src.data.base.ImageDataModule` (``batch_size``, ``val_fraction``
            (below 0.5 here), ``seed``, ``num_workers``, ...), but not ``data_dir`` (the digits ship with
            scikit-learn) nor ``flip`` (flipped digits are not digits).
    """

    num_classes = 10
    dataset_name = "digits"

    def __init__(self, image_size: int = 32, in_memory: bool = True, **kwargs: Any) -> None:
        super().__init__(data_dir="", flip=False, in_memory=in_memory, **kwargs)
        if image_size < 8:
            raise ValueError(f"data.image_size must be >= 8 for digits, got image_size={image_size}")
        if not 0 <= self.val_fraction < 0.5:
            raise ValueError(f"data.val_fraction must be in [0, 0.5), got val_fraction={self.val_fraction}")
        self.image_size = image_size

    @property
    def data_shape(self) -> tuple[int, int, int]:
        """Shape of one image (1, S, S)."""
        return (1, self.image_size, self.image_size)

    def geometry(self) -> list:
        """None: :meth:`load_splits` resizes the digits once."""
        return []

    def load_splits(self) -> dict[str, Dataset]:
        """The digits, resized to ``image_size`` and quantised to uint8, in their train/val/test splits."""
        images, labels = load_digits_tensors(self.image_size)  # (N, 1, S, S) in [-1, 1]
        images = images.add(1).mul(127.5).round().clamp(0, 255).to(torch.uint8)  # as a PNG would store them
        parts = split_indices(labels, self.val_fraction, self.seed)
        return {name: TensorImages(images[i], labels[i]) for name, i in zip(("train", "val", "test"), parts)}

    def uint8_split(self, dataset: Dataset) -> tuple[Tensor, Tensor]:
        """The split's stored tensors (no decoding)."""
        assert isinstance(dataset, TensorImages)
        return dataset.images, dataset.labels
