"""The real reference images of an evaluation: a seeded random subset of a datamodule split, shared by ranks."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch
from lightning.pytorch.utilities import rank_zero_info, rank_zero_warn
from torch import Tensor
from torch.utils.data import DataLoader, IterableDataset, Subset

from src.data.splits import SPLITS

__all__ = ["SPLITS", "num_images", "real_batches", "reference_loader", "split_loader"]


def split_loader(datamodule: Any, split: str) -> Any:
    """The datamodule's loader of ``split``, set up for it (setup is idempotent in Lightning datamodules).

    Args:
        datamodule: A Lightning datamodule with ``{split}_dataloader()``.
        split: ``train``, ``val`` or ``test``.
    """
    datamodule.setup("test" if split == "test" else "fit")
    return getattr(datamodule, f"{split}_dataloader")()


def reference_loader(datamodule: Any, split: str, wanted: int) -> tuple[Any, int]:
    """The loader of ``split`` and how many of its images make the reference: ``wanted``, capped to the split.

    Args:
        datamodule: The trainer's datamodule (``None`` raises).
        split: ``train``, ``val`` or ``test``.
        wanted: Real images asked for, over all ranks.

    Returns:
        The loader (:func:`split_loader`) and the number of real images to take from it.

    Raises:
        ValueError: If there is no datamodule with a ``{split}_dataloader``.
    """
    if datamodule is None or not hasattr(datamodule, f"{split}_dataloader"):
        raise ValueError(
            f"ImageQuality takes real images from the datamodule's {split}_dataloader(), but the trainer has no "
            "such datamodule; pass `datamodule=` to the trainer or change real_split"
        )
    loader = split_loader(datamodule, split)
    available = num_images(loader)
    if available is not None and available < wanted:
        rank_zero_info(
            f"ImageQuality: the {split} split has {available} images; using all of them as the real reference "
            f"(asked for {wanted})"
        )
        return loader, available
    return loader, wanted


def num_images(loader: Any) -> int | None:
    """Images in the whole split behind ``loader``, or ``None`` when it cannot tell (an iterable dataset)."""
    images = getattr(loader, "images", None)
    if isinstance(images, Tensor):  # src.data.memory.TensorBatches: the whole split, unsharded
        return len(images)
    dataset = getattr(loader, "dataset", None)
    if dataset is not None and not isinstance(dataset, IterableDataset) and hasattr(dataset, "__len__"):
        return len(dataset)
    return None


def _first(batch: Any) -> Tensor:
    return batch[0] if isinstance(batch, (tuple, list)) else batch


def real_batches(
    loader: Any, total: int, rank: int, world: int, batch_size: int, seed: int
) -> Iterator[Tensor]:
    """This rank's share of ``total`` real images: a seeded random subset of the split, split across ranks.

    In-memory splits and map-style datasets are indexed directly (the training loader is not iterated, so its
    shuffling state is untouched; the dataset's own transforms apply); other loaders are iterated from the
    start and must give every rank the same images in the same order.

    Args:
        loader: The split's loader (:func:`split_loader`).
        total: Real images over all ranks (at most :func:`num_images` when that is known).
        rank: This rank.
        world: Number of ranks.
        batch_size: Images per yielded batch.
        seed: Seed of the subset.

    Yields:
        Batches (b, C, H, W) of this rank's images, as the loader gives them.
    """
    available = num_images(loader)
    if available is not None:
        order = torch.randperm(available, generator=torch.Generator().manual_seed(seed))[:total]
        mine = torch.tensor_split(order, world)[rank].sort().values  # (n_rank,)
        images = getattr(loader, "images", None)
        if isinstance(images, Tensor):
            for idx in mine.split(batch_size):
                yield images[idx.to(images.device)]
            return
        subset = DataLoader(
            Subset(loader.dataset, mine.tolist()),
            batch_size=batch_size,
            num_workers=getattr(loader, "num_workers", 0),
            collate_fn=getattr(loader, "collate_fn", None),
        )
        for batch in subset:
            yield _first(batch)
        return
    taken: list[Tensor] = []
    count = 0
    for batch in loader:
        images = _first(batch)
        taken.append(images[: total - count])
        count += len(taken[-1])
        if count >= total:
            break
    if not taken:
        rank_zero_warn("ImageQuality: the real-image loader gave no images")
        return
    mine_images = torch.tensor_split(torch.cat(taken), world)[rank]
    yield from mine_images.split(batch_size)
