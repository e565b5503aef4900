"""CelebADataModule through torchvision's real CelebA loader (aligned JPEGs and the five text files written by
the test), through a plain folder of JPEGs, and its missing-data errors.

torchvision checks the md5 of the text files; :func:`tests.fakedata.skip_md5` patches only that check.
"""

from __future__ import annotations

import pytest
import torch
from PIL import Image
from torchvision.datasets import CelebA

from src.data import CelebADataModule, DatasetNotFoundError
from src.data.celeba import CELEBA_TEXT_FILES
from tests.fakedata import skip_md5, write_celeba


def _setup(root, **kwargs) -> CelebADataModule:
    dm = CelebADataModule(data_dir=str(root), batch_size=4, download=False, num_workers=0, **kwargs)
    dm.prepare_data()
    dm.setup("fit")
    return dm


def _all(loader) -> tuple[torch.Tensor, torch.Tensor]:
    xs, ys = zip(*loader)
    return torch.cat(xs), torch.cat(ys)


def _reference(path, crop: int, size: int) -> torch.Tensor:
    """PIL only: center crop (torchvision's rounding), bilinear resize, scale to [-1, 1]."""
    image = Image.open(path).convert("RGB")
    left, top = round((image.width - crop) / 2), round((image.height - crop) / 2)
    image = image.crop((left, top, left + crop, top + crop)).resize((size, size), Image.BILINEAR)
    return torch.tensor(list(image.getdata()), dtype=torch.float32).T.reshape(3, size, size) / 127.5 - 1


def test_official_partition_shapes_and_pixels(tmp_path, monkeypatch):
    skip_md5(monkeypatch)
    base = write_celeba(tmp_path, partition=(12, 4, 4))
    dm = _setup(tmp_path)
    assert dm.data_shape == dm.image_shape == (3, 64, 64) and dm.num_classes == 0
    assert {k: len(v) for k, v in dm.datasets.items()} == {"train": 12, "val": 4, "test": 4}
    x, y = next(iter(dm.train_dataloader()))
    assert x.shape == (4, 3, 64, 64) and x.dtype == torch.float32 and -1 <= x.min() and x.max() <= 1
    assert y.tolist() == [0, 0, 0, 0]  # unlabelled
    images, _ = _all(dm.test_dataloader())  # images 000017..000020, the official test partition
    expected = torch.stack(
        [_reference(base / "img_align_celeba" / f"{i:06d}.jpg", 108, 64) for i in range(17, 21)]
    )
    torch.testing.assert_close(images, expected)


def test_crop_size_and_attribute_label(tmp_path, monkeypatch):
    skip_md5(monkeypatch)
    base = write_celeba(tmp_path, partition=(12, 4, 4))
    dm = _setup(tmp_path, crop_size=140, image_size=32, attribute="Male")
    assert dm.num_classes == 2 and dm.data_shape == (3, 32, 32)
    images, labels = _all(dm.val_dataloader())  # images 000013..000016
    assert labels.tolist() == [1, 0, 1, 0]  # fakedata: Male for odd image numbers
    expected = torch.stack(
        [_reference(base / "img_align_celeba" / f"{i:06d}.jpg", 140, 32) for i in range(13, 17)]
    )
    torch.testing.assert_close(images, expected)
    with pytest.raises(ValueError, match="not a CelebA attribute"):
        _setup(tmp_path, attribute="Smiley")


def test_plain_folder_of_jpegs(tmp_path):
    base = write_celeba(tmp_path, partition=(16, 2, 2), text_files=False)
    dm = _setup(
        tmp_path / "elsewhere", image_dir=str(base / "img_align_celeba"), val_fraction=0.1, test_fraction=0.1
    )
    assert {k: len(v) for k, v in dm.datasets.items()} == {"train": 16, "val": 2, "test": 2}
    x, _ = next(iter(dm.train_dataloader()))
    assert x.shape == (4, 3, 64, 64) and -1 <= x.min() and x.max() <= 1
    again = _setup(tmp_path / "elsewhere", image_dir=str(base / "img_align_celeba"))
    assert dm.datasets["val"].dataset.indices == again.datasets["val"].dataset.indices


def test_image_folder_without_text_files_is_used_with_a_warning(tmp_path):
    write_celeba(tmp_path, partition=(16, 2, 2), text_files=False)
    with pytest.warns(UserWarning, match="list_eval_partition.txt.*seeded random split"):
        dm = _setup(tmp_path)
    assert sum(len(v) for v in dm.datasets.values()) == 20


def test_missing_data_error_lists_the_files_and_where(tmp_path):
    dm = CelebADataModule(data_dir=str(tmp_path), download=False)
    with pytest.raises(DatasetNotFoundError) as info:
        dm.prepare_data()
    message = str(info.value)
    assert "CelebA was not found in" in message and "downloading is off" in message
    for name in (*CELEBA_TEXT_FILES, "img_align_celeba"):
        assert str(tmp_path / "celeba" / name) in message
    assert "--data.image_dir" in message
    with pytest.raises(DatasetNotFoundError):
        dm.setup("fit")


def test_failed_download_raises_clear_error(tmp_path, monkeypatch):
    def offline(self):
        raise RuntimeError("To download files from GDrive, 'gdown' is required.")

    monkeypatch.setattr(CelebA, "download", offline)
    with pytest.raises(
        DatasetNotFoundError, match=r"download failed \(RuntimeError: To download files from GDrive"
    ):
        CelebADataModule(data_dir=str(tmp_path)).prepare_data()


def test_wrong_text_files_are_reported(tmp_path):
    write_celeba(tmp_path)  # the fake text files fail torchvision's md5 check
    with pytest.raises(DatasetNotFoundError, match="md5"):
        _setup(tmp_path)


@pytest.mark.parametrize(
    ("kwargs", "match"), [({"crop_size": 200}, "crop_size"), ({"test_fraction": 1.0}, "test_fraction")]
)
def test_bad_options_name_the_option(kwargs, match):
    with pytest.raises(ValueError, match=match):
        CelebADataModule(**kwargs)
