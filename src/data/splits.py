"""Train/val/test splits: seeded random held-out parts, the fallback order of empty splits, nested subsets."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor
from torch.utils.data import Dataset, Subset

SPLITS = ("train", "val", "test")
# Where each loader looks when its own split is empty (e.g. ``val_fraction=0``).
FALLBACK = {"train": ("train",), "val": ("val", "test", "train"), "test": ("test", "val", "train")}


def seeded_split(n: int, fractions: Sequence[float], seed: int) -> list[Tensor]:
    """Split ``range(n)`` at random into the rest plus one part per fraction, the same for the same seed.

    Args:
        n: Number of items.
        fractions: Share of the items in each held-out part.
        seed: Seed of the permutation.

    Returns:
        Sorted index tensors: ``[rest, part_0, part_1, ...]``.
    """
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    sizes = [round(f * n) for f in fractions]
    parts, start = [], n - sum(sizes)
    rest = order[:start]
    for size in sizes:
        parts.append(order[start : start + size])
        start += size
    return [p.sort().values for p in (rest, *parts)]


def holdout(dataset: Dataset, fractions: Sequence[float], seed: int) -> list[Subset]:
    """Split ``dataset`` into the rest and one seeded random part per fraction (:func:`seeded_split`)."""
    parts = seeded_split(len(dataset), fractions, seed)  # type: ignore[arg-type]
    return [Subset(dataset, idx.tolist()) for idx in parts]


def unwrap_subset(dataset: Dataset) -> tuple[Dataset, Tensor]:
    """The underlying dataset of a (possibly nested) ``Subset`` and the indices (n,) into it."""
    indices = torch.arange(len(dataset))  # type: ignore[arg-type]
    while isinstance(dataset, Subset):
        indices = torch.as_tensor(dataset.indices, dtype=torch.long)[indices]
        dataset = dataset.dataset
    return dataset, indices
