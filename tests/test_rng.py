"""Per-rank random streams and data shards, without launching processes."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from src.data import Toy2DDataModule
from src.data.memory import TensorBatches
from src.utils.rng import collect_rng_states, rank_seed, restore_rng_states, seed_rank


def test_rank_seeds_are_distinct_and_reproducible() -> None:
    seeds = [rank_seed(7, r) for r in range(8)]
    assert len(set(seeds)) == 8 and seeds == [rank_seed(7, r) for r in range(8)]
    assert rank_seed(7, 0) != rank_seed(8, 0)
    assert all(0 <= s < 2**63 for s in seeds)


def test_seed_rank_leaves_a_single_process_alone_and_splits_ranks(monkeypatch: pytest.MonkeyPatch) -> None:
    torch.manual_seed(3)
    state = torch.get_rng_state()
    assert seed_rank(0, 1) is None and torch.equal(torch.get_rng_state(), state)
    monkeypatch.setenv("PL_GLOBAL_SEED", "3")
    draws = []
    for rank in (0, 1):
        assert seed_rank(rank, 2) == rank_seed(3, rank)
        draws.append(torch.randn(4))
    assert not torch.allclose(draws[0], draws[1])


def test_rng_states_round_trip_per_rank() -> None:
    torch.manual_seed(1)
    states = collect_rng_states()
    assert states["torch"].shape[0] == 1 and states["torch"].dtype == torch.uint8
    expected = torch.rand(3)
    torch.manual_seed(99)
    restore_rng_states(states, rank=0)
    torch.testing.assert_close(torch.rand(3), expected)

    torch.manual_seed(2)
    other = torch.get_rng_state()
    two = {"torch": torch.stack([states["torch"][0], other])}  # (2, N): rank 1's row is not rank 0's
    restore_rng_states(two, rank=1)
    assert torch.equal(torch.get_rng_state(), other)
    restore_rng_states(two, rank=5)  # more ranks than were saved: its own stream, not rank 0's
    assert not torch.equal(torch.get_rng_state(), two["torch"][0])


def test_tensor_batches_give_ranks_disjoint_shards_of_one_permutation() -> None:
    images, labels = torch.arange(50).float().view(50, 1, 1, 1), torch.arange(50)
    shards = [TensorBatches(images, labels, batch_size=4, seed=3, rank=r, world_size=2) for r in (0, 1)]
    seen = [torch.cat([y for _, y in shard]) for shard in shards]
    assert len(shards[0]) == len(shards[1]) == 6  # 12 full batches of 4, split in two
    assert not set(seen[0].tolist()) & set(seen[1].tolist())
    assert len(seen[0]) + len(seen[1]) == 48


def test_toy_stream_draws_different_points_on_each_rank() -> None:
    batches = []
    for rank in (0, 1):
        data = Toy2DDataModule(batch_size=8, batches_per_epoch=2, seed=0)
        data.trainer = SimpleNamespace(global_rank=rank)
        batches.append(next(iter(data.train_dataloader())))
    assert not torch.allclose(batches[0], batches[1])
