"""The real reference images of an evaluation: uint8 images from the datamodule, and their fingerprint."""

from __future__ import annotations

import hashlib
from typing import Any

import torch
from lightning.pytorch.utilities import rank_zero_warn
from torch import Tensor
from torch.utils.data import IterableDataset

from src.data.splits import SPLITS
from src.metrics.image_features import to_uint8

__all__ = ["SPLITS", "all_images", "fingerprint", "reference_images"]


def reference_images(datamodule: Any, split: str, n: int, seed: int) -> Tensor:
    """``min(n, len(split))`` real images of ``split``, a random subset seeded by ``seed``: uint8 (N, C, H, W).

    A datamodule with ``reference_images(split, n, seed)`` (every :class:`~src.data.base.ImageDataModule`)
    gives them itself, never augmented and the same in its in-memory and DataLoader modes. Any other
    datamodule is read through its ``{split}_dataloader()``'s dataset (a warning says that its augmentations,
    if any, then end up in the reference).

    Args:
        datamodule: The trainer's datamodule (``None`` raises).
        split: ``train``, ``val`` or ``test``.
        n: Real images asked for, over all ranks.
        seed: Seed of the subset.

    Returns:
        uint8 images (N, C, H, W) on the CPU, the same on every rank; ``images.tensor_split(world)[rank]`` is
        a rank's share.

    Raises:
        ValueError: If there is no datamodule that can give images of ``split``.
    """
    if callable(getattr(datamodule, "reference_images", None)):
        images = datamodule.reference_images(split, n, seed)
    elif datamodule is not None and hasattr(datamodule, f"{split}_dataloader"):
        rank_zero_warn(
            f"{type(datamodule).__name__} has no reference_images(split, n, seed); ImageQuality reads the real "
            f"images from its {split}_dataloader() instead, with any random augmentation it applies. Derive it "
            "from src.data.ImageDataModule or give it that method."
        )
        images = _from_loader(datamodule, split, n, seed)
    else:
        raise ValueError(
            f"ImageQuality takes real images from the datamodule's reference_images() or {split}_dataloader(), "
            "but the trainer has no such datamodule; pass `datamodule=` to the trainer or change real_split"
        )
    return images


def all_images(datamodule: Any) -> Tensor:
    """Every real image of the datamodule, each once: its splits concatenated (N, C, H, W), uint8.

    A split that falls back to another (an empty ``val`` served by ``test``) is recognised by its fingerprint
    and taken once.
    """
    taken, seen = [], set()
    for split in SPLITS:
        images = reference_images(datamodule, split, 2**62, 0)  # the whole split
        key = fingerprint(images)
        if len(images) and key not in seen:
            seen.add(key)
            taken.append(images)
    return torch.cat(taken)


def _from_loader(datamodule: Any, split: str, n: int, seed: int) -> Tensor:
    datamodule.setup("test" if split == "test" else "fit")
    loader = getattr(datamodule, f"{split}_dataloader")()
    dataset = getattr(loader, "dataset", None)
    if dataset is not None and not isinstance(dataset, IterableDataset) and hasattr(dataset, "__len__"):
        order = torch.randperm(len(dataset), generator=torch.Generator().manual_seed(seed))[:n]
        return to_uint8(torch.stack([_first(dataset[int(i)]) for i in order]))  # (N, C, H, W)
    taken, count = [], 0
    for batch in loader:  # an iterable loader: its first n images
        taken.append(_first(batch)[: n - count])
        count += len(taken[-1])
        if count >= n:
            break
    return to_uint8(torch.cat(taken)) if taken else torch.zeros(0, dtype=torch.uint8)


def _first(batch: Any) -> Tensor:
    return batch[0] if isinstance(batch, (tuple, list)) else batch


def fingerprint(images: Tensor) -> str:
    """A hash of uint8 images (N, C, H, W): their shape and every pixel, so any edited image changes it."""
    data = images.detach().cpu().contiguous()
    digest = hashlib.sha1(str(tuple(data.shape)).encode())
    digest.update(data.numpy().data if data.numel() else b"")
    return digest.hexdigest()[:16]
