"""ImageFolderDataModule on a nested folder of PNG/JPEG files with a corrupt and a truncated file."""

from __future__ import annotations

import warnings

import pytest
import torch
from PIL import Image, ImageFile

from src.data import DatasetNotFoundError, ImageFolderDataModule
from src.data.folder import ImageFiles
from tests.fakedata import write_image_folder


def _setup(root, **kwargs) -> ImageFolderDataModule:
    kwargs = {"image_size": 32, "batch_size": 4, "num_workers": 0, **kwargs}
    dm = ImageFolderDataModule(data_dir=str(root), **kwargs)
    dm.setup("fit")
    return dm


def _all(loader) -> tuple[torch.Tensor, torch.Tensor]:
    xs, ys = zip(*loader)
    return torch.cat(xs), torch.cat(ys)


def test_corrupt_file_is_skipped_with_a_warning_naming_it(tmp_path):
    files = write_image_folder(tmp_path, n=20, corrupt=1)
    with pytest.warns(
        UserWarning, match=r"Skipped 1 unreadable image file\(s\) of 21 .*corrupt_0\.jpg"
    ) as record:
        dm = _setup(tmp_path, val_fraction=0.1, test_fraction=0.1)
    assert sum("unreadable" in str(w.message) for w in record) == 1
    assert {k: len(v) for k, v in dm.datasets.items()} == {"train": 16, "val": 2, "test": 2}
    listed = {dm.datasets["train"].dataset.dataset.paths[i] for i in range(20)}
    assert listed == set(files["good"])  # recursive (a/, a/b/), png and jpg; notes.txt ignored
    x, y = next(iter(dm.train_dataloader()))
    assert x.shape == (4, 3, 32, 32) and x.dtype == torch.float32 and -1 <= x.min() and x.max() <= 1
    assert dm.num_classes == 0 and y.tolist() == [0, 0, 0, 0]


def test_resize_then_center_crop_matches_pil(tmp_path):
    path = tmp_path / "wide.png"
    Image.effect_noise((90, 50), 60).convert("RGB").save(path)
    dm = _setup(tmp_path, val_fraction=0.0, batch_size=1)
    x, _ = dm.datasets["train"][0]
    # PIL reference: shorter side to 32 (90x50 -> 57x32: torchvision truncates), then center crop.
    image = Image.open(path).convert("RGB").resize((57, 32), Image.BILINEAR)
    left = round((57 - 32) / 2)
    image = image.crop((left, 0, left + 32, 32))
    expected = torch.tensor(list(image.getdata()), dtype=torch.float32).T.reshape(3, 32, 32) / 127.5 - 1
    torch.testing.assert_close(x, expected)


def test_grayscale_and_stretch(tmp_path):
    write_image_folder(tmp_path, n=8, corrupt=0)
    dm = _setup(tmp_path, channels=1, resize="stretch", image_size=16, val_fraction=0.25)
    assert dm.data_shape == (1, 16, 16)
    x, _ = next(iter(dm.train_dataloader()))
    assert x.shape == (4, 1, 16, 16)


def test_class_subfolders_give_labels(tmp_path):
    write_image_folder(tmp_path, n=12, classes=["cats", "dogs"], corrupt=0)
    dm = _setup(tmp_path, class_subfolders=True, val_fraction=0.0)
    assert dm.classes == ["cats", "dogs"] and dm.num_classes == 2
    files = dm.datasets["train"].dataset.dataset
    for path, label in zip(files.paths, files.labels):
        assert label == ["cats", "dogs"].index(path.parent.name)
    _, labels = _all(dm.train_dataloader())
    assert sorted(labels.tolist()) == [0] * 6 + [1] * 6


def test_loose_images_with_class_subfolders_are_an_error(tmp_path):
    write_image_folder(tmp_path, n=6, corrupt=0)  # images also directly in the root
    with pytest.raises(ValueError, match="class_subfolders"):
        _setup(tmp_path, class_subfolders=True)


def test_split_is_deterministic_under_seed(tmp_path):
    write_image_folder(tmp_path, n=20, corrupt=0)
    a, b, c = _setup(tmp_path, seed=5), _setup(tmp_path, seed=5), _setup(tmp_path, seed=6)
    assert a.datasets["val"].dataset.indices == b.datasets["val"].dataset.indices
    assert a.datasets["val"].dataset.indices != c.datasets["val"].dataset.indices
    assert len(a.datasets["test"]) == 0 and len(_all(a.test_dataloader())[0]) == 2  # test falls back to val


def test_truncated_file_does_not_crash_an_epoch(tmp_path, monkeypatch):
    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", False)
    files = write_image_folder(tmp_path, n=6, corrupt=0, truncated=1)
    dataset = ImageFiles([*files["good"], *files["truncated"]], [0] * 7)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        images = [
            dataset[i][0] for i in range(len(dataset))
        ]  # the truncated one is replaced by the next image
    assert len(images) == 7 and all(isinstance(im, Image.Image) for im in images)
    assert any("truncated_0.jpg" in str(w.message) for w in record)
    # Through the datamodule (PIL's verify() lets it pass): a whole epoch runs.
    dm = _setup(tmp_path, val_fraction=0.0, batch_size=7)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        x, _ = _all(dm.train_dataloader())
    assert x.shape == (7, 3, 32, 32)


def test_empty_or_missing_folder_is_a_clear_error(tmp_path):
    (tmp_path / "empty" / "sub").mkdir(parents=True)
    (tmp_path / "empty" / "readme.txt").write_text("no images")
    with pytest.raises(DatasetNotFoundError, match=r"contains no image files .*\.jpg"):
        _setup(tmp_path / "empty")
    with pytest.raises(DatasetNotFoundError, match="does not exist"):
        _setup(tmp_path / "nowhere")


def test_only_unreadable_files_is_a_clear_error(tmp_path):
    write_image_folder(tmp_path, n=0, corrupt=2)
    with pytest.warns(UserWarning, match="Skipped 2"), pytest.raises(DatasetNotFoundError, match="none of"):
        _setup(tmp_path)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"channels": 2}, "channels"),
        ({"resize": "pad"}, "resize"),
        ({"test_fraction": 0.95}, "test_fraction"),
    ],
)
def test_bad_options_name_the_option(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ImageFolderDataModule(**kwargs)
