"""CIFAR10DataModule through torchvision's real CIFAR10 loader, on small pickled batches written by the test.

torchvision checks the md5 of the real files; :func:`tests.fakedata.skip_md5` patches only that check.
"""

from __future__ import annotations

from urllib.error import URLError

import pytest
import torch
import torchvision.datasets.cifar as tv_cifar

from src.data import CIFAR10DataModule, DatasetNotFoundError
from tests.fakedata import skip_md5, write_cifar10


@pytest.fixture
def cifar(tmp_path, monkeypatch):
    skip_md5(monkeypatch)
    return tmp_path, write_cifar10(tmp_path, n_per_batch=10, n_test=20)


def _setup(root, **kwargs) -> CIFAR10DataModule:
    dm = CIFAR10DataModule(data_dir=str(root), batch_size=8, download=False, **kwargs)
    dm.prepare_data()
    dm.setup("fit")
    return dm


def _all(loader) -> tuple[torch.Tensor, torch.Tensor]:
    xs, ys = zip(*loader)
    return torch.cat(xs), torch.cat(ys)


def _expected(hwc) -> torch.Tensor:
    return torch.from_numpy(hwc).permute(0, 3, 1, 2).float() / 127.5 - 1  # (N, 3, 32, 32)


@pytest.mark.parametrize("in_memory", [False, True])
def test_shapes_range_splits_and_pixels(cifar, in_memory):
    root, arrays = cifar
    dm = _setup(root, in_memory=in_memory)
    assert dm.data_shape == dm.image_shape == (3, 32, 32) and dm.num_classes == 10
    assert {k: len(v) for k, v in dm.datasets.items()} == {"train": 45, "val": 5, "test": 20}
    x, y = next(iter(dm.train_dataloader()))
    assert x.shape == (8, 3, 32, 32) and x.dtype == torch.float32 and y.dtype == torch.long
    assert -1 <= x.min() and x.max() <= 1
    images, labels = _all(dm.test_dataloader())
    torch.testing.assert_close(images, _expected(arrays["test_images"]))
    assert labels.tolist() == arrays["test_labels"].tolist()
    # The val split holds the training images at its (seeded) indices, with their labels.
    val_idx = list(dm.datasets["val"].dataset.indices)
    images, labels = _all(dm.val_dataloader())
    torch.testing.assert_close(images, _expected(arrays["train_images"][val_idx]))
    assert labels.tolist() == arrays["train_labels"][val_idx].tolist()


@pytest.mark.parametrize("in_memory", [False, True])
def test_flip_only_flips_training_images(cifar, in_memory):
    root, arrays = cifar
    dm = _setup(root, in_memory=in_memory, flip=True, val_fraction=0.0)
    reference = _expected(arrays["train_images"])  # (50, 3, 32, 32)
    flipped = 0
    for x, y in dm.train_dataloader():
        for image, label in zip(x, y):
            same = (reference - image).flatten(1).abs().amax(1) < 1e-6
            mirrored = (reference.flip(-1) - image).flatten(1).abs().amax(1) < 1e-6
            match = (same | mirrored).nonzero().flatten()
            assert len(match) == 1 and int(arrays["train_labels"][match[0]]) == int(label)
            flipped += int(not same.any())
    assert 0 < flipped < 48  # about half of the 48 training images of 6 full batches
    torch.testing.assert_close(_all(dm.test_dataloader())[0], _expected(arrays["test_images"]))


def test_val_split_is_deterministic_under_seed(cifar):
    root, _ = cifar
    a, b, c = _setup(root, seed=1), _setup(root, seed=1), _setup(root, seed=2)
    assert a.datasets["val"].dataset.indices == b.datasets["val"].dataset.indices
    assert a.datasets["val"].dataset.indices != c.datasets["val"].dataset.indices


def test_missing_data_error(tmp_path):
    dm = CIFAR10DataModule(data_dir=str(tmp_path), download=False)
    with pytest.raises(DatasetNotFoundError) as info:
        dm.setup("fit")
    message = str(info.value)
    assert "CIFAR-10 was not found in" in message and str(tmp_path / "cifar-10-batches-py") in message
    assert "data_batch_1" in message and "cifar-10-python.tar.gz" in message


def test_failed_download_raises_clear_error(tmp_path, monkeypatch):
    def offline(*args, **kwargs):
        raise URLError("[Errno -2] Name or service not known")

    monkeypatch.setattr(tv_cifar, "download_and_extract_archive", offline)
    with pytest.raises(DatasetNotFoundError, match=r"download failed \(URLError"):
        CIFAR10DataModule(data_dir=str(tmp_path)).prepare_data()
