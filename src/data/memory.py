"""In-memory batches: a whole small dataset as one tensor on the training device, sliced per batch."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import torch
from torch import Tensor


class TensorBatches:
    """Iterates shuffled ``(images, labels)`` batches sliced from tensors, with no DataLoader workers.

    With ``drop_last`` (training), each DDP rank takes every ``world_size``-th batch of one shared permutation,
    so ranks see disjoint data; incomplete batches and the batches of an incomplete round over the ranks are
    dropped, so every rank takes the same number of steps. Without it (validation, test), the permutation is
    padded by repeating its start to a multiple of ``world_size`` and each rank takes every ``world_size``-th
    image, as ``DistributedSampler`` does: every rank gets ``ceil(N / world_size)`` images, so a split smaller
    than ``batch_size * world_size`` still gives every rank a batch (a few images count twice). The tensors may
    be stored compactly (e.g. uint8) and turned into training batches by ``transform`` (e.g. to float in
    [-1, 1], random flips) on the device.

    Args:
        images: All images (N, C, H, W).
        labels: All labels (N,).
        batch_size: Samples per batch (per device).
        shuffle: Draw a new permutation every epoch.
        drop_last: Drop the incomplete last batch.
        seed: Seed of the permutations; epoch ``e`` uses ``seed + e``.
        rank: This process's rank.
        world_size: Number of processes.
        transform: Optional function applied to each image batch (B, C, H, W) after slicing.
    """

    def __init__(
        self,
        images: Tensor,
        labels: Tensor,
        batch_size: int,
        shuffle: bool = True,
        drop_last: bool = True,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
        transform: Callable[[Tensor], Tensor] | None = None,
    ) -> None:
        if len(images) != len(labels):
            raise ValueError(f"images ({len(images)}) and labels ({len(labels)}) differ in length")
        self.images, self.labels = images, labels
        self.batch_size, self.shuffle, self.drop_last = batch_size, shuffle, drop_last
        self.seed, self.rank, self.world_size = seed, rank, world_size
        self.transform = transform
        self.epoch = 0

    def to(self, device: torch.device | str) -> TensorBatches:
        """Move the tensors to ``device`` once; batches are then slices on that device."""
        self.images, self.labels = self.images.to(device), self.labels.to(device)
        return self

    def _num_global_batches(self) -> int:
        # Whole rounds only: every rank gets the same number of batches, so DDP steps stay in lockstep.
        full = len(self.images) // self.batch_size
        return full - full % self.world_size

    def _per_rank(self) -> int:
        """Images per rank without ``drop_last``: ``ceil(N / world_size)``, as ``DistributedSampler`` pads."""
        return -(-len(self.images) // self.world_size)

    def __len__(self) -> int:
        if not self.drop_last:
            return -(-self._per_rank() // self.batch_size)
        return len(range(self.rank, self._num_global_batches(), self.world_size))

    def _rank_indices(self, order: Tensor) -> Tensor:
        """This rank's share (n,) of ``order`` (N,) without ``drop_last``: padded, then every world_size-th."""
        total = self._per_rank() * self.world_size
        if total > len(order):  # repeat the start, as often as needed (DistributedSampler's padding)
            order = order.repeat(-(-total // len(order)))[:total]
        return order[self.rank : total : self.world_size]

    def __iter__(self) -> Iterator[tuple[Tensor, Tensor]]:
        n = len(self.images)
        if self.shuffle:
            order = torch.randperm(n, generator=torch.Generator().manual_seed(self.seed + self.epoch))
            order = order.to(self.images.device)
        else:
            order = torch.arange(n, device=self.images.device)
        self.epoch += 1
        if self.drop_last:
            starts = [
                b * self.batch_size for b in range(self.rank, self._num_global_batches(), self.world_size)
            ]
        else:
            order = self._rank_indices(order) if len(order) else order
            starts = list(range(0, len(order), self.batch_size))
        for start in starts:
            idx = order[start : start + self.batch_size]
            images = self.images[idx]  # (B, C, H, W)
            yield (self.transform(images) if self.transform is not None else images), self.labels[idx]

    def state_dict(self) -> dict:
        """The epoch counter, so a resumed run continues the same sequence of permutations."""
        return {"epoch": self.epoch}

    def load_state_dict(self, state: dict) -> None:
        """Restore the epoch counter."""
        self.epoch = int(state["epoch"])
