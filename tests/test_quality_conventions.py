"""ImageQuality's conventions: held-out test seeds, torch-fidelity's IS/precision/recall (and its whole
``calculate_metrics`` on PNG folders), one reference set in every loading mode, a cache keyed by the images."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import Tensor
from torch_fidelity.metric_isc import isc_features_to_metric
from torch_fidelity.metric_prc import prc_features_to_metric

from src.data import DigitsDataModule, ImageFolderDataModule
from src.data.transforms import to_signed_unit
from src.evaluation import ImageQuality
from src.metrics.image_features import DigitsFeatures, FeatureNet
from tests.test_image_quality import Replay, inception_weights, logged, quiet_trainer, small_wgan

__all__ = ["inception_weights"]  # the module-scoped fixture, shared with tests/test_image_quality.py


class TinyFeatures(FeatureNet):
    """A cheap stand-in feature network: 4x4 average-pooled pixels, no logits."""

    num_features = 48
    identity = "tiny"

    def __init__(self, weights_path: str | None = None) -> None:
        super().__init__()

    def forward(self, images: Tensor) -> tuple[Tensor, None]:
        return torch.nn.functional.adaptive_avg_pool2d(images.float(), 4).flatten(1), None  # (B, 48)


class FlippingDigits(DigitsDataModule):
    """The digits with random training flips, which the digits datamodule otherwise refuses."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.flip = True


def mixed_digits(n: int) -> Tensor:
    """Generated stand-ins (n, 1, 32, 32): held-out digits, every third one replaced by noise."""
    images = to_signed_unit(DigitsDataModule().reference_images("test"))[:n].clone()
    noise = torch.rand(images[::3].shape, generator=torch.Generator().manual_seed(3)) * 2 - 1
    images[::3] = noise
    return images


# ---------------------------------------------------------------------------------------- held-out test
def test_the_test_stage_draws_other_noise_and_other_real_images(tmp_path: Path) -> None:
    model = small_wgan((1, 32, 32))
    seen: list[Tensor] = []
    sample = model.sample

    def recording(*args, noise: Tensor | None = None, **kwargs) -> Tensor:
        seen.append(noise.cpu())
        return sample(*args, noise=noise, **kwargs)

    model.sample = recording
    model.validation_step = model.test_step = lambda *args, **kwargs: None  # only the callback samples
    callback = ImageQuality(
        feature_extractor="digits", num_samples=64, kid_subset_size=32, cache_dir=str(tmp_path)
    )
    trainer = quiet_trainer(tmp_path, [callback], limit_test_batches=1)
    dm = DigitsDataModule()
    trainer.validate(model, datamodule=dm, verbose=False)
    val_noise, val_cache = torch.cat(seen), callback.cache_path
    seen.clear()
    trainer.test(model, datamodule=dm, verbose=False)
    test_noise = torch.cat(seen)
    assert val_noise.shape == test_noise.shape == (64, model.latent_dim)
    assert not torch.allclose(val_noise, test_noise)  # before: the same seed-0 noise
    want = torch.randn(64, model.latent_dim, generator=torch.Generator().manual_seed(callback.test_seed))
    assert torch.equal(test_noise, want) and callback.test_seed != callback.seed
    assert callback.cache_path != val_cache  # another real subset: 64 of the 1455 training digits
    assert {"test/fid", "test/precision", "test/recall"} <= set(logged(trainer))


# ------------------------------------------------------------------------- the reference implementations
def test_is_std_precision_and_recall_are_torch_fidelitys(tmp_path: Path) -> None:
    n, splits = 300, 10
    fake = mixed_digits(n)
    callback = ImageQuality(
        feature_extractor="digits",
        num_samples=n,
        num_real=n,
        is_splits=splits,
        kid=False,
        cache_dir=str(tmp_path),
    )
    trainer = quiet_trainer(tmp_path, [callback])
    trainer.validate(Replay(fake), datamodule=DigitsDataModule(), verbose=False)
    got = logged(trainer)

    net = DigitsFeatures()
    fake_features, fake_logits = net(((fake + 1) * 127.5).round().to(torch.uint8))
    real_features, _ = net(DigitsDataModule().reference_images("train", n, seed=0))
    isc = isc_features_to_metric(fake_logits, splits=splits)  # torch-fidelity's default: shuffled, seed 2020
    prc = prc_features_to_metric(
        fake_features,
        real_features,
        prc_neighborhood=3,
        prc_batch_size=10000,
        save_cpu_ram=False,
        verbose=False,
    )
    shuffled = fake_logits[
        np.random.RandomState(2020).permutation(len(fake_logits))
    ]  # torch-fidelity's permutation
    scores = [  # the population std over splits, written out: np.std, not the sample std (ddof=1)
        isc_features_to_metric(chunk, splits=1, shuffle=False)["inception_score_mean"]
        for chunk in shuffled.tensor_split(splits)
    ]
    contiguous = isc_features_to_metric(fake_logits, splits=splits, shuffle=False)
    assert got["val/is_std"] != pytest.approx(contiguous["inception_score_std"], rel=1e-3)  # not in order
    assert got["val/is"] == pytest.approx(isc["inception_score_mean"], rel=1e-5)
    assert got["val/is_std"] == pytest.approx(isc["inception_score_std"], rel=1e-4)
    assert got["val/is_std"] == pytest.approx(float(np.std(scores)), rel=1e-4)
    assert got["val/is_std"] < 0.99 * float(np.std(scores, ddof=1))
    assert got["val/precision"] == pytest.approx(prc["precision"], abs=1e-6)
    assert got["val/recall"] == pytest.approx(prc["recall"], abs=1e-6)
    assert 0.3 < got["val/precision"] < 0.95 and 0.3 < got["val/recall"] < 1.0  # not a degenerate case


def write_pngs(images: Tensor, folder: Path, prefix: str) -> Path:
    """uint8 images (N, C, H, W) as numbered PNG files, sorted in their order."""
    folder.mkdir(parents=True, exist_ok=True)
    for i, image in enumerate(images):
        Image.fromarray(image.permute(1, 2, 0).numpy()).save(folder / f"{prefix}{i:04d}.png")
    return folder


def smooth_images(n: int, seed: int) -> Tensor:
    """Random smooth RGB images, uint8 (n, 3, 16, 16)."""
    low = torch.rand(n, 3, 4, 4, generator=torch.Generator().manual_seed(seed))
    return (torch.nn.functional.interpolate(low, size=16, mode="bilinear") * 255).round().to(torch.uint8)


@pytest.mark.slow  # 80 forward passes of Inception-v3 at 299 px on the CPU: 1-3 min
def test_fid_is_kid_precision_recall_equal_torch_fidelity_on_png_folders(
    tmp_path: Path, inception_weights: Path
) -> None:
    import torch_fidelity

    n, splits = 20, 4
    real = smooth_images(n, seed=1)
    # Generated images from another distribution (less contrast): with the same one, KID is about 4e-4, a
    # cancellation whose float32 rounding alone moves it by 1e-3 relative, in either library.
    fake = (smooth_images(n, seed=2).float() * 0.5 + 64).round().to(torch.uint8)
    real_dir = write_pngs(real, tmp_path / "real", "real")
    fake_dir = write_pngs(fake, tmp_path / "fake", "fake")
    callback = ImageQuality(
        feature_extractor="inception",
        feature_extractor_weights_path=str(inception_weights),
        num_samples=n,
        num_real=n,
        is_splits=splits,
        kid_subsets=1,
        kid_subset_size=n,
        cache_dir=str(tmp_path / "cache"),
    )
    dm = ImageFolderDataModule(data_dir=str(real_dir), image_size=16, batch_size=4, val_fraction=0.0)
    trainer = quiet_trainer(tmp_path, [callback])
    trainer.validate(Replay(fake.float() / 127.5 - 1), datamodule=dm, verbose=False)
    got = logged(trainer)

    want = torch_fidelity.calculate_metrics(
        input1=str(fake_dir),
        input2=str(real_dir),
        cuda=False,
        fid=True,
        isc=True,
        kid=True,
        prc=True,
        feature_extractor="inception-v3-compat",
        feature_extractor_weights_path=str(inception_weights),
        isc_splits=splits,
        kid_subsets=1,
        kid_subset_size=n,
        cache=False,
        verbose=False,
    )
    assert got["val/fid"] == pytest.approx(want["frechet_inception_distance"], rel=1e-3)
    assert got["val/is"] == pytest.approx(want["inception_score_mean"], rel=1e-3)
    assert got["val/is_std"] == pytest.approx(want["inception_score_std"], rel=1e-3)
    assert got["val/kid"] == pytest.approx(want["kernel_inception_distance_mean"], rel=1e-3)
    assert got["val/precision"] == pytest.approx(want["precision"], abs=1e-6)
    assert got["val/recall"] == pytest.approx(want["recall"], abs=1e-6)


# ------------------------------------------------------------------------------------ the reference set
def test_in_memory_and_dataloader_modes_give_the_same_fid_with_flips(tmp_path: Path) -> None:
    fake = mixed_digits(150)
    values, fingerprints = {}, {}
    for in_memory in (True, False):
        callback = ImageQuality(
            feature_extractor="digits", num_samples=150, num_real=400, kid=False, cache_real_features=False
        )
        trainer = quiet_trainer(tmp_path, [callback])
        dm = FlippingDigits(in_memory=in_memory)
        trainer.validate(Replay(fake), datamodule=dm, verbose=False)
        values[in_memory] = logged(trainer)["val/fid"]
        reference = dm.reference_images("train", 400, seed=0)
        fingerprints[in_memory] = reference
    # Before: the DataLoader mode put randomly flipped training images into the reference set.
    assert values[False] == pytest.approx(values[True], rel=1e-6)
    assert torch.equal(fingerprints[False], fingerprints[True])
    unflipped = DigitsDataModule().reference_images("train", 400, seed=0)
    assert torch.equal(fingerprints[True], unflipped)


def test_editing_one_reference_image_misses_the_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # 30 files, 10 of them the reference
    files = write_pngs(smooth_images(30, seed=4), tmp_path / "images", "img")
    folder = {"data_dir": str(files), "image_size": 16, "batch_size": 4, "val_fraction": 0.0}

    def measure() -> ImageQuality:
        callback = ImageQuality(
            feature_extractor="tests.test_quality_conventions.TinyFeatures",
            inception_score=False,
            num_samples=10,
            kid_subset_size=10,
            cache_dir=str(tmp_path / "cache"),
        )
        dm = ImageFolderDataModule(**folder)
        quiet_trainer(tmp_path, [callback]).validate(small_wgan((3, 16, 16)), datamodule=dm, verbose=False)
        return callback

    computed: list[int] = []
    real_features = ImageQuality.real_features
    monkeypatch.setattr(
        ImageQuality,
        "real_features",
        lambda self, images, *a: computed.append(len(images)) or real_features(self, images, *a),
    )
    first = measure()
    assert computed == [10] and first.cache_path is not None and first.cache_path.is_file()
    assert measure().cache_path == first.cache_path and computed == [10]  # a hit: nothing recomputed

    # Edit one pixel of one image of the reference subset: the same folder, file count, names and settings.
    reference = ImageFolderDataModule(**folder).reference_images("train", 10, seed=0)  # (10, 3, 16, 16)

    def pixels_of(path: Path) -> Tensor:
        return torch.from_numpy(np.array(Image.open(path))).permute(2, 0, 1)  # (3, 16, 16)

    edited = next(p for p in sorted(files.iterdir()) if torch.equal(pixels_of(p), reference[3]))
    pixels = np.array(Image.open(edited))
    pixels[0, 0, 0] ^= 0xFF
    Image.fromarray(pixels).save(edited)
    second = measure()
    assert second.cache_path != first.cache_path and computed == [10, 10]  # before: a stale hit
