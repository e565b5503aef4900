"""Shared image-datamodule logic: in-memory batches, per-batch transforms, seeded splits, loader options,
reference images."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

import src.data.base as data_base
from src.data import CIFAR10DataModule, DigitsDataModule, MNISTDataModule
from src.data.memory import TensorBatches
from src.data.splits import seeded_split
from src.data.transforms import BatchTransform, to_signed_unit
from tests.fakedata import skip_md5, write_cifar10, write_mnist


def test_to_signed_unit_maps_0_255_to_minus_one_one():
    x = torch.tensor([0, 1, 127, 128, 255], dtype=torch.uint8)
    torch.testing.assert_close(to_signed_unit(x), x.double().div(127.5).sub(1).float())
    assert to_signed_unit(x)[0] == -1 and to_signed_unit(x)[-1] == 1


def test_batch_transform_flips_about_half_the_images():
    images = torch.randint(0, 256, (400, 3, 4, 5), dtype=torch.uint8)
    out = BatchTransform(flip=True)(images)
    plain, mirrored = to_signed_unit(images), to_signed_unit(images).flip(-1)
    same = (out == plain).flatten(1).all(1)
    flipped = (out == mirrored).flatten(1).all(1)
    assert bool((same | flipped).all())
    assert 150 < int(flipped.sum()) < 250
    assert torch.equal(BatchTransform(flip=False)(images), plain)


def test_tensor_batches_apply_the_transform_per_batch():
    images = torch.arange(10, dtype=torch.uint8).view(10, 1, 1, 1)
    labels = torch.arange(10)
    batches = TensorBatches(images, labels, 4, shuffle=True, drop_last=True, transform=to_signed_unit)
    seen = []
    for x, y in batches:
        assert x.dtype == torch.float32
        torch.testing.assert_close(x.flatten(), to_signed_unit(y.to(torch.uint8)))  # image i has label i
        seen += y.tolist()
    assert len(seen) == 8 and len(set(seen)) == 8
    plain = TensorBatches(images, labels, 4, shuffle=False, drop_last=False)  # no transform: as before
    assert [x.dtype for x, _ in plain] == [torch.uint8] * 3


def test_seeded_split_is_a_deterministic_partition():
    rest, val, test = seeded_split(100, (0.1, 0.2), seed=7)
    assert (len(rest), len(val), len(test)) == (70, 10, 20)
    assert sorted(torch.cat([rest, val, test]).tolist()) == list(range(100))
    again = seeded_split(100, (0.1, 0.2), seed=7)
    assert all(torch.equal(a, b) for a, b in zip((rest, val, test), again))
    assert not torch.equal(val, seeded_split(100, (0.1, 0.2), seed=8)[1])


def _with_trainer(dm, device: str, devices: int = 1):
    strategy = SimpleNamespace(root_device=torch.device(device))
    dm.trainer = SimpleNamespace(strategy=strategy, num_devices=devices, global_rank=0, world_size=1)
    return dm


@pytest.mark.filterwarnings("ignore:This DataLoader will create")
def test_loader_defaults_for_cpu_and_gpu(tmp_path, monkeypatch):
    write_mnist(tmp_path, n_train=40, n_test=8)
    cpu = MNISTDataModule(data_dir=str(tmp_path), batch_size=4, in_memory=False, download=False)
    cpu.setup("fit")
    loader = cpu.train_dataloader()
    assert (loader.num_workers, loader.pin_memory, loader.persistent_workers) == (0, False, False)

    monkeypatch.setattr(data_base, "available_cpus", lambda: 16)
    gpu = _with_trainer(
        MNISTDataModule(data_dir=str(tmp_path), batch_size=4, in_memory=False), "cuda", devices=2
    )
    assert gpu.resolved_num_workers() == 7 and gpu.resolved_pin_memory()  # 16 cores / 2 devices - 1
    gpu.datasets = cpu.datasets
    loader = gpu.train_dataloader()
    assert (loader.num_workers, loader.pin_memory, loader.persistent_workers) == (7, True, True)
    explicit = MNISTDataModule(in_memory=False, num_workers=2, pin_memory=False, persistent_workers=False)
    explicit = _with_trainer(explicit, "cuda")
    assert explicit.resolved_num_workers() == 2 and not explicit.resolved_pin_memory()


def test_in_memory_shuffling_state_round_trips(tmp_path):
    write_mnist(tmp_path, n_train=40, n_test=8)
    dm = MNISTDataModule(data_dir=str(tmp_path), batch_size=4, val_fraction=0.0, download=False)
    dm.setup("fit")
    for _ in dm.train_dataloader():
        pass
    state = dm.state_dict()
    assert state == {"epoch": 1}
    resumed = MNISTDataModule(data_dir=str(tmp_path), batch_size=4, val_fraction=0.0, download=False)
    resumed.load_state_dict(state)
    resumed.setup("fit")
    a = torch.cat([y for _, y in dm.train_dataloader()])
    b = torch.cat([y for _, y in resumed.train_dataloader()])
    assert torch.equal(a, b)


@pytest.mark.parametrize("in_memory", [True, False])
def test_digits_still_work(in_memory):
    dm = DigitsDataModule(batch_size=16, in_memory=in_memory)
    dm.setup("fit")
    x, y = next(iter(dm.train_dataloader()))
    assert x.shape == (16, 1, 32, 32) and -1 <= x.min() and x.max() <= 1 and y.dtype == torch.long
    if not in_memory:
        assert dm.train_dataloader().num_workers == 0


@pytest.mark.parametrize("split", ["train", "val", "test"])
def test_reference_images_are_the_same_unflipped_images_in_both_loading_modes(tmp_path, monkeypatch, split):
    skip_md5(monkeypatch)
    arrays = write_cifar10(tmp_path, n_per_batch=10, n_test=20)
    modes = {}
    for in_memory in (True, False):
        dm = CIFAR10DataModule(
            data_dir=str(tmp_path), batch_size=4, flip=True, in_memory=in_memory, download=False
        )
        modes[in_memory] = dm.reference_images(split, n=7, seed=3)
        assert torch.equal(dm.reference_images(split, n=7, seed=3), modes[in_memory])  # no random flips
        if split != "val":  # val holds 5 images: n=7 is the whole split, in its order, whatever the seed
            assert not torch.equal(dm.reference_images(split, n=7, seed=4), modes[in_memory])
        whole = dm.reference_images(split)  # the whole split, in its order
        assert len(whole) == {"train": 45, "val": 5, "test": 20}[split]
        assert len(dm.reference_images(split, n=1000, seed=3)) == len(whole)  # at most the whole split
    assert modes[True].dtype == torch.uint8 and modes[True].shape == (min(7, len(whole)), 3, 32, 32)
    assert torch.equal(modes[True], modes[False])
    if split == "test":  # the stored pixels, not flipped ones
        order = torch.randperm(20, generator=torch.Generator().manual_seed(3))[:7]
        expected = torch.from_numpy(arrays["test_images"]).permute(0, 3, 1, 2)[order]  # (7, 3, 32, 32)
        assert torch.equal(modes[True], expected)


def test_reference_images_of_an_empty_split_fall_back_as_its_loader_does():
    dm = DigitsDataModule(val_fraction=0.0)
    assert torch.equal(dm.reference_images("val"), dm.reference_images("test"))
    with pytest.raises(ValueError, match="split must be one of"):
        dm.reference_images("validation")


def test_tensor_batches_give_every_rank_the_same_number_of_training_steps():
    images, labels = torch.zeros(90, 1, 2, 2), torch.arange(90)  # 11 full batches of 8
    ranks = [TensorBatches(images, labels, 8, drop_last=True, rank=r, world_size=2) for r in (0, 1)]
    assert [len(b) for b in ranks] == [5, 5]  # the 11th batch would make rank 0 step alone (DDP hang)
    seen = [torch.cat([y for _, y in b]) for b in ranks]
    assert [len(s) for s in seen] == [40, 40] and not set(seen[0].tolist()) & set(seen[1].tolist())
    evaluation = [
        TensorBatches(images, labels, 8, shuffle=False, drop_last=False, rank=r, world_size=2) for r in (0, 1)
    ]
    assert sorted(torch.cat([y for b in evaluation for _, y in b]).tolist()) == list(
        range(90)
    )  # nothing dropped


@pytest.mark.parametrize("n", [162, 3, 1])
def test_an_evaluation_split_smaller_than_one_batch_per_rank_gives_every_rank_a_batch(n: int):
    # The digits' val split (162 images) at batch 64 makes 3 batches: 4 ranks need 4 (issue 14, item 1).
    images, labels = torch.zeros(n, 1, 2, 2), torch.arange(n)
    ranks = [
        TensorBatches(images, labels, 64, shuffle=False, drop_last=False, rank=r, world_size=4)
        for r in range(4)
    ]
    per_rank = -(-n // 4)
    assert [len(b) for b in ranks] == [1, 1, 1, 1]
    shards = [torch.cat([y for _, y in b]) for b in ranks]
    assert [len(s) for s in shards] == [per_rank] * 4  # padded as DistributedSampler pads
    assert set(torch.cat(shards).tolist()) == set(range(n))  # every image is seen
    expected = list(torch.utils.data.DistributedSampler(range(n), num_replicas=4, rank=2, shuffle=False))
    assert shards[2].tolist() == expected
    single = TensorBatches(images, labels, 64, shuffle=False, drop_last=False)
    assert torch.cat([y for _, y in single]).tolist() == list(range(n))  # one process: unchanged
