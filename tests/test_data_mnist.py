"""MNISTDataModule through torchvision's real MNIST loader, on small idx files written by the test."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torchvision.datasets import MNIST

from src.data import DatasetNotFoundError, MNISTDataModule
from tests.fakedata import write_mnist


@pytest.fixture
def mnist(tmp_path):
    return tmp_path, write_mnist(tmp_path, n_train=100, n_test=20)


def _setup(root, **kwargs) -> MNISTDataModule:
    dm = MNISTDataModule(data_dir=str(root), batch_size=8, download=False, **kwargs)
    dm.prepare_data()
    dm.setup("fit")
    return dm


def _all(loader) -> tuple[torch.Tensor, torch.Tensor]:
    xs, ys = zip(*loader)
    return torch.cat(xs), torch.cat(ys)


@pytest.mark.parametrize("in_memory", [False, True])
def test_shapes_range_splits_and_labels(mnist, in_memory):
    root, arrays = mnist
    dm = _setup(root, in_memory=in_memory)
    assert dm.data_shape == dm.image_shape == (1, 32, 32) and dm.num_classes == 10
    assert {k: len(v) for k, v in dm.datasets.items()} == {"train": 90, "val": 10, "test": 20}
    x, y = next(iter(dm.train_dataloader()))
    assert x.shape == (8, 1, 32, 32) and x.dtype == torch.float32 and y.dtype == torch.long
    assert x.min() >= -1 and x.max() <= 1
    assert len(dm.train_dataloader()) == 90 // 8  # incomplete batches dropped

    # Test split in file order: 28 px digits padded with black (-1) to 32 px, labels as written.
    images, labels = _all(dm.test_dataloader())
    raw = torch.from_numpy(arrays["test_images"]).float().unsqueeze(1) / 127.5 - 1  # (20, 1, 28, 28)
    torch.testing.assert_close(images, F.pad(raw, (2, 2, 2, 2), value=-1.0))
    assert labels.tolist() == arrays["test_labels"].tolist()


def test_native_28px_and_resize_option(mnist):
    root, arrays = mnist
    dm = _setup(root, image_size=28)
    images, _ = _all(dm.test_dataloader())
    expected = torch.from_numpy(arrays["test_images"]).float().unsqueeze(1) / 127.5 - 1
    torch.testing.assert_close(images, expected)
    resized = _setup(root, image_size=32, resize="resize", in_memory=False)
    x, _ = _all(resized.test_dataloader())
    assert x.shape == (20, 1, 32, 32) and x.min() >= -1 and x.max() <= 1
    in_memory = _setup(root, image_size=32, resize="resize", in_memory=True)  # decoded through PIL once
    torch.testing.assert_close(_all(in_memory.test_dataloader())[0], x)


def test_in_memory_matches_dataloader_path(mnist):
    root, _ = mnist
    loader, memory = _setup(root, in_memory=False), _setup(root, in_memory=True)
    for stage in ("val_dataloader", "test_dataloader"):
        a, b = _all(getattr(loader, stage)()), _all(getattr(memory, stage)())
        torch.testing.assert_close(a[0], b[0])
        assert torch.equal(a[1], b[1])
    assert memory.tensors["train"][0].dtype == torch.uint8  # stored compactly, converted per batch


def test_val_split_is_deterministic_under_seed(mnist):
    root, _ = mnist

    def indices(dm: MNISTDataModule, split: str) -> list[int]:
        return list(dm.datasets[split].dataset.indices)

    a, b, c = _setup(root, seed=3), _setup(root, seed=3), _setup(root, seed=4)
    assert indices(a, "val") == indices(b, "val")
    torch.testing.assert_close(_all(a.val_dataloader())[0], _all(b.val_dataloader())[0])
    assert indices(a, "val") != indices(c, "val")
    assert sorted(indices(a, "train") + indices(a, "val")) == list(range(100))


def test_val_fraction_zero_validates_on_test_split(mnist):
    root, _ = mnist
    dm = _setup(root, val_fraction=0.0)
    assert len(dm.datasets["train"]) == 100 and len(dm.datasets["val"]) == 0
    assert len(_all(dm.val_dataloader())[1]) == 20


def test_missing_data_without_download_names_dataset_place_and_fix(tmp_path):
    dm = MNISTDataModule(data_dir=str(tmp_path), download=False)
    dm.prepare_data()
    with pytest.raises(DatasetNotFoundError) as info:
        dm.setup("fit")
    message = str(info.value)
    assert "MNIST was not found in" in message and str(tmp_path / "MNIST" / "raw") in message
    assert "train-images-idx3-ubyte" in message and "--data.download=false" in message
    assert "ossci-datasets" in message and "--data.data_dir" in message


def test_failed_download_raises_clear_error(tmp_path, monkeypatch):
    def offline(self):
        raise RuntimeError(
            "Error downloading train-images-idx3-ubyte.gz:\n<urlopen error Name or service not known>"
        )

    monkeypatch.setattr(MNIST, "download", offline)
    with pytest.raises(DatasetNotFoundError, match=r"download failed \(RuntimeError: Error downloading"):
        MNISTDataModule(data_dir=str(tmp_path)).prepare_data()


def test_refuses_to_train_on_nothing(mnist):
    root, _ = mnist
    dm = MNISTDataModule(data_dir=str(root), batch_size=128, download=False)
    with pytest.raises(ValueError, match="data.batch_size=128"):
        dm.setup("fit")


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"image_size": 20}, "image_size"),
        ({"image_size": 33}, "even"),
        ({"resize": "crop"}, "resize"),
        ({"batch_size": 0}, "batch_size"),
        ({"val_fraction": 1.0}, "val_fraction"),
        ({"num_workers": -1}, "num_workers"),
    ],
)
def test_bad_options_name_the_option(kwargs, match):
    with pytest.raises(ValueError, match=match):
        MNISTDataModule(**kwargs)
