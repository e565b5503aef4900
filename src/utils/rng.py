"""Random-number streams under DDP: a distinct stream per rank, saved in and restored from checkpoints.

``seed_everything`` gives every DDP rank the same seed, so without care every rank would draw the same noise
``z`` and the same interpolation ε: the global batch of fakes would hold ``world_size`` copies of one batch.
:func:`seed_rank` gives rank ``r`` its own stream, derived from the run's seed with
:class:`numpy.random.SeedSequence` (as Lightning seeds dataloader workers). Checkpoints store the state of
every rank's stream (:func:`collect_rng_states`), so a resumed run draws what the straight run would have.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import torch
from torch import Tensor


def rank_seed(base_seed: int, rank: int) -> int:
    """A 63-bit seed for ``rank`` derived from ``base_seed``; distinct ranks get independent streams."""
    state = np.random.SeedSequence(entropy=base_seed, spawn_key=(rank,)).generate_state(1, dtype=np.uint64)
    return int(state[0]) & (2**63 - 1)


def seed_rank(rank: int, world_size: int) -> int | None:
    """Reseed torch (CPU and CUDA) so that each of ``world_size > 1`` ranks draws its own random numbers.

    The base seed is Lightning's global seed (``PL_GLOBAL_SEED``, set by ``seed_everything`` and passed to
    every rank) or, without one, the seed torch started with. A single process is left untouched.

    Returns:
        The seed given to this rank, or ``None`` when ``world_size == 1``.
    """
    if world_size <= 1:
        return None
    base = int(os.environ.get("PL_GLOBAL_SEED", torch.initial_seed()))
    seed = rank_seed(base, rank)
    torch.manual_seed(seed)  # seeds the CPU generator and every CUDA device's
    return seed


RNGSnapshot = tuple[Tensor, Tensor | None]


def rng_snapshot() -> RNGSnapshot:
    """This process's torch RNG states: the CPU generator's and the current CUDA device's (``None`` without)."""
    cuda = torch.cuda.get_rng_state() if torch.cuda.is_available() and torch.cuda.is_initialized() else None
    return torch.get_rng_state(), cuda


def rng_restore(snapshot: RNGSnapshot) -> None:
    """Put back the states of :func:`rng_snapshot`.

    ``WGANGP`` takes one when a validation starts inside ``fit`` and restores it when it ends, so the noise,
    ε and data order of training do not depend on when (or whether) evaluations run, whatever they draw.
    """
    cpu, cuda = snapshot
    torch.set_rng_state(cpu)
    if cuda is not None:
        torch.cuda.set_rng_state(cuda)


def gather_rows(strategy: Any, state: Tensor) -> Tensor:
    """Stack one state (N,) per rank: (world_size, N) on the CPU; a collective, so every rank must call it.

    Args:
        strategy: The trainer's strategy (``None``: this process only, one row).
        state: This rank's state, e.g. a ``torch.Generator.get_state()`` (uint8).
    """
    if strategy is None or getattr(strategy, "world_size", 1) <= 1:
        return state.unsqueeze(0)
    gathered = strategy.all_gather(state.to(strategy.root_device))  # (W, N) on the device
    return gathered.cpu()


def collect_rng_states(strategy: Any = None) -> dict[str, Tensor]:
    """The torch RNG states of every rank, as plain tensors (loadable with ``weights_only=True``).

    Under DDP this gathers from all ranks, so it must run on every rank (``Trainer.save_checkpoint`` calls the
    checkpoint hooks on all ranks).

    Args:
        strategy: The trainer's strategy (``None``: this process only).

    Returns:
        ``{"torch": (W, N) uint8}`` and, when CUDA is in use, ``{"cuda": (W, M) uint8}`` (the current device's
        generator), one row per rank.
    """
    states = {"torch": gather_rows(strategy, torch.get_rng_state())}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        states["cuda"] = gather_rows(strategy, torch.cuda.get_rng_state())
    return states


def _own(row: Tensor) -> Tensor:
    """A CPU copy with its own storage: ``set_rng_state`` on a row view of a stacked tensor crashes."""
    return row.detach().to("cpu", copy=True).contiguous()


def own_row(rows: Tensor, rank: int) -> Tensor | None:
    """Row ``rank`` of :func:`gather_rows`, as a tensor with its own storage; ``None`` when there is no such row."""
    return _own(rows[rank]) if rank < len(rows) else None


def restore_rng_states(states: dict[str, Tensor], rank: int) -> None:
    """Restore this rank's row of :func:`collect_rng_states`.

    A rank the checkpoint has no row for (the run resumes on more devices than it was saved on) continues
    from rank 0's state reseeded with :func:`rank_seed`, so it still draws its own numbers.
    """
    rows = states["torch"]
    if rank < len(rows):
        torch.set_rng_state(_own(rows[rank]))
        if "cuda" in states and torch.cuda.is_available() and rank < len(states["cuda"]):
            torch.cuda.set_rng_state(_own(states["cuda"][rank]))
        return
    torch.set_rng_state(_own(rows[0]))
    torch.manual_seed(rank_seed(int(torch.randint(2**62, (1,)).item()), rank))
