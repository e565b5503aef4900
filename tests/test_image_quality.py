"""ImageQuality: FID, IS and KID through the callback equal torchmetrics called directly on the same images."""

from __future__ import annotations

import csv
import urllib.error
from pathlib import Path
from unittest import mock

import lightning.pytorch as pl
import pytest
import torch
import yaml
from lightning.pytorch.loggers import CSVLogger
from torch import nn
from torch.utils.data import DataLoader, TensorDataset
from torchmetrics.image.fid import FrechetInceptionDistance, NoTrainInceptionV3
from torchmetrics.image.inception import InceptionScore
from torchmetrics.image.kid import KernelInceptionDistance

from src.data import DigitsDataModule, Toy2DDataModule
from src.data.transforms import to_signed_unit
from src.evaluation import ImageQuality
from src.metrics import DigitsFeatureExtractor, class_coverage, load_digits_classifier
from src.metrics.image_features import InceptionFeatures, build_feature_net, to_uint8
from src.models import WGANGP
from src.nets import DCGANCritic, DCGANGenerator
from tests.helpers import toy_model


# ------------------------------------------------------------------------------------------------ helpers
def reference_uint8(x: torch.Tensor) -> torch.Tensor:
    """What saving [-1, 1] images as PNG gives, written out independently of the code under test."""
    return ((x + 1) * 127.5).round().clamp(0, 255).to(torch.uint8)


def small_wgan(shape: tuple[int, int, int]) -> WGANGP:
    return WGANGP(DCGANGenerator(data_shape=shape, dim=8), DCGANCritic(data_shape=shape, dim=8))


def quiet_trainer(tmp_path: Path, callbacks: list, **kwargs) -> pl.Trainer:
    options = {
        "accelerator": "cpu",
        "devices": 1,
        "logger": False,
        "enable_checkpointing": False,
        "enable_progress_bar": False,
        "enable_model_summary": False,
        "limit_val_batches": 1,
        "default_root_dir": tmp_path,
    }
    options.update(kwargs)
    return pl.Trainer(callbacks=callbacks, **options)


def logged(trainer: pl.Trainer) -> dict[str, float]:
    return {k: float(v) for k, v in trainer.callback_metrics.items()}


def generated(model: WGANGP, n: int, seed: int = 0) -> torch.Tensor:
    """The images the callback generates: rows of noise drawn from a CPU generator seeded with ``seed``."""
    return model.sample(noise=torch.randn(n, model.latent_dim, generator=torch.Generator().manual_seed(seed)))


class Replay(pl.LightningModule):
    """A stand-in generator that 'generates' given images, in order, from the start at each validation."""

    latent_dim = 1

    def __init__(self, images: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("images", images)
        self.position = 0

    def on_validation_epoch_start(self) -> None:
        self.position = 0

    def sample(self, noise: torch.Tensor) -> torch.Tensor:
        out = self.images[self.position : self.position + len(noise)]
        self.position += len(noise)
        return out

    def validation_step(self, batch, batch_idx: int) -> None:
        return None


class FixedImages(pl.LightningDataModule):
    """Given images (N, C, H, W) in [-1, 1] in a map-style DataLoader (the path torchvision datamodules take)."""

    def __init__(self, images: torch.Tensor) -> None:
        super().__init__()
        self.images = images
        self.data_shape = tuple(images.shape[1:])

    def _loader(self) -> DataLoader:
        return DataLoader(TensorDataset(self.images, torch.zeros(len(self.images))), batch_size=64)

    def train_dataloader(self) -> DataLoader:
        return self._loader()

    def val_dataloader(self) -> DataLoader:
        return self._loader()


def digits(n: int) -> torch.Tensor:
    """The first ``n`` training digits (n, 1, 32, 32) in [-1, 1]."""
    return to_signed_unit(DigitsDataModule().reference_images("train")[:n])


@pytest.fixture(scope="module")
def inception_weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """torch-fidelity's Inception-v3 architecture with random (Kaiming) weights, saved as its state_dict.

    torch-fidelity always loads weights in its constructor, so the constructor's download and load are
    patched out once here; the saved file then goes through the real loader (``feature_extractor_weights_path``).
    """
    import torch_fidelity.feature_extractor_inceptionv3 as tf_inception

    torch.manual_seed(0)
    with (
        mock.patch.object(tf_inception, "load_state_dict_from_url", lambda *a, **k: None),
        mock.patch.object(tf_inception.FeatureExtractorInceptionV3, "load_state_dict", lambda *a, **k: None),
    ):
        net = tf_inception.FeatureExtractorInceptionV3("inception-v3-compat", ["2048"])
    for module in net.modules():
        if isinstance(module, nn.Conv2d):  # features of order one instead of vanishing ones
            nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
    path = tmp_path_factory.mktemp("inception") / "random-inception.pth"
    torch.save(net.state_dict(), path)
    return path


# ------------------------------------------------------------------------------------------------ tests
def test_to_uint8_is_the_png_conversion() -> None:
    x = torch.tensor([-1.5, -1.0, -0.999, 0.0, 0.5, 0.999, 1.0, 1.2])
    assert torch.equal(to_uint8(x), reference_uint8(x))
    assert to_uint8(x).tolist() == [0, 0, 0, 128, 191, 255, 255, 255]
    u8 = torch.randint(0, 256, (2, 3, 4, 4), dtype=torch.uint8)
    assert to_uint8(u8) is u8


def test_digits_metrics_equal_torchmetrics_on_the_same_images(tmp_path: Path) -> None:
    n = 400
    real = digits(n)  # (n, 1, 32, 32) in [-1, 1]
    dm = FixedImages(real)
    model = small_wgan((1, 32, 32))
    # num_samples = num_real = n and KID subsets of all n images: KID and IS (one split) do not depend on the
    # random subsets, so the reference needs no knowledge of the callback's seeding.
    callback = ImageQuality(
        feature_extractor="digits",
        num_samples=n,
        kid_subsets=2,
        kid_subset_size=n,
        is_splits=1,
        cache_dir=str(tmp_path),
    )
    trainer = quiet_trainer(tmp_path, [callback])
    trainer.validate(model, datamodule=dm, verbose=False)
    got = logged(trainer)

    fake = generated(model, n)
    classifier = load_digits_classifier()
    fid = FrechetInceptionDistance(feature=DigitsFeatureExtractor("features", classifier))
    kid = KernelInceptionDistance(
        feature=DigitsFeatureExtractor("features", classifier), subsets=2, subset_size=n
    )
    inception_score = InceptionScore(feature=DigitsFeatureExtractor("logits", classifier), splits=1)
    for metric in (fid, kid):
        metric.update(reference_uint8(real), real=True)
        metric.update(reference_uint8(fake), real=False)
    inception_score.update(reference_uint8(fake))
    want_kid = kid.compute()[0].item()
    want_is = inception_score.compute()[0].item()
    cover = class_coverage(DigitsFeatureExtractor("logits", classifier)(reference_uint8(fake)))

    assert got["val/fid"] == pytest.approx(fid.compute().item(), rel=1e-4)
    assert got["val/kid"] == pytest.approx(want_kid, rel=1e-4)
    assert got["val/is"] == pytest.approx(want_is, rel=1e-4)
    assert got["val/classes_covered"] == cover["classes_covered"]
    assert got["val/class_kl"] == pytest.approx(cover["kl_from_uniform"], rel=1e-5)
    assert {"val/kid_std", "val/is_std", "val/wasserstein"} <= set(got)


def test_fid_of_digits_against_themselves_is_zero_and_against_noise_large(tmp_path: Path) -> None:
    real = digits(600)
    dm = FixedImages(real)
    values = {}
    noise = (0.5 * torch.randn(real.shape, generator=torch.Generator().manual_seed(0))).clamp(-1, 1)
    for name, images in (("self", real), ("noise", noise)):
        callback = ImageQuality(
            feature_extractor="digits",
            num_samples=len(real),
            kid=False,
            inception_score=False,
            cache_dir=str(tmp_path),
        )
        trainer = quiet_trainer(tmp_path, [callback])
        trainer.validate(Replay(images), datamodule=dm, verbose=False)
        values[name] = logged(trainer)
    assert abs(values["self"]["val/fid"]) < 1e-2
    assert values["noise"]["val/fid"] > 100.0
    assert values["self"]["val/classes_covered"] == 10
    assert values["self"]["val/class_kl"] < 0.01


def test_real_features_are_cached_and_reused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    dm = DigitsDataModule()
    model = small_wgan((1, 32, 32))

    def make() -> ImageQuality:
        return ImageQuality(
            feature_extractor="digits", num_samples=200, kid_subset_size=100, cache_dir=str(tmp_path)
        )

    first = make()
    trainer = quiet_trainer(tmp_path, [first])
    trainer.validate(model, datamodule=dm, verbose=False)
    assert first.cache_path is not None and first.cache_path.is_file()
    assert first.cache_path.parent == tmp_path and "digits" in first.cache_path.name

    def no_real_features(*args, **kwargs):
        raise AssertionError("real features were recomputed instead of read from the cache")

    monkeypatch.setattr(ImageQuality, "real_features", no_real_features)
    second = make()
    trainer2 = quiet_trainer(tmp_path, [second])
    trainer2.validate(model, datamodule=DigitsDataModule(), verbose=False)
    assert second.cache_path == first.cache_path
    assert logged(trainer2)["val/fid"] == pytest.approx(logged(trainer)["val/fid"], rel=1e-6)
    # A different real-image count is a different cache entry.
    other = ImageQuality(feature_extractor="digits", num_samples=100, cache_dir=str(tmp_path))
    monkeypatch.undo()
    quiet_trainer(tmp_path, [other]).validate(model, datamodule=DigitsDataModule(), verbose=False)
    assert other.cache_path != first.cache_path


def test_schedule_in_fit_first_every_n_and_last(tmp_path: Path) -> None:
    callback = ImageQuality(
        feature_extractor="digits", num_samples=64, kid=False, every_n_epochs=2, cache_dir=str(tmp_path)
    )
    logger = CSVLogger(tmp_path, name="schedule")
    trainer = quiet_trainer(tmp_path, [callback], max_epochs=5, limit_train_batches=1, logger=logger)
    trainer.fit(small_wgan((1, 32, 32)), datamodule=DigitsDataModule())
    rows = list(csv.DictReader(open(Path(logger.log_dir) / "metrics.csv")))
    measured = [int(row["epoch"]) for row in rows if row.get("val/fid")]
    validated = [int(row["epoch"]) for row in rows if row.get("val/wasserstein")]
    assert validated == [0, 1, 2, 3, 4]  # every epoch validates ...
    assert measured == [0, 1, 3, 4]  # ... and measures on the first validation, every 2nd epoch and the last


def test_validate_fit_and_test_share_one_callback(tmp_path: Path) -> None:
    # validate/test run their hooks in inference mode, fit's validation does not: metric states made in one
    # must stay usable in the other.
    callback = ImageQuality(
        feature_extractor="digits", num_samples=64, kid_subset_size=32, cache_dir=str(tmp_path)
    )
    trainer = quiet_trainer(tmp_path, [callback], max_epochs=1, limit_train_batches=1, num_sanity_val_steps=0)
    model, dm = small_wgan((1, 32, 32)), DigitsDataModule()
    trainer.validate(model, datamodule=dm, verbose=False)
    before = logged(trainer)["val/fid"]
    trainer.fit(model, datamodule=dm)
    trainer.test(model, datamodule=dm, verbose=False)
    assert {"test/fid", "test/kid", "test/is"} <= set(logged(trainer))
    trainer.validate(model, datamodule=dm, verbose=False)
    assert logged(trainer)["val/fid"] != before  # the generator was trained in between


def test_inception_features_load_a_local_weights_file(inception_weights: Path) -> None:
    net = build_feature_net("inception", str(inception_weights))
    assert isinstance(net, InceptionFeatures) and not net.training
    assert net.num_features == 2048 and net.num_logits == 1008
    features, logits = net(torch.randint(0, 256, (2, 1, 8, 8), dtype=torch.uint8))  # grayscale, tiny
    assert features.shape == (2, 2048) and logits.shape == (2, 1008)
    assert torch.isfinite(features).all() and features.abs().max() > 1e-3


def test_failed_inception_download_names_the_offline_option(monkeypatch: pytest.MonkeyPatch) -> None:
    import torch_fidelity.feature_extractor_inceptionv3 as tf_inception

    def offline(*args, **kwargs):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(tf_inception, "load_state_dict_from_url", offline)
    with pytest.raises(RuntimeError, match="feature_extractor_weights_path"):
        InceptionFeatures()
    with pytest.raises(FileNotFoundError, match="feature_extractor_weights_path"):
        InceptionFeatures("/nonexistent/weights.pth")


def test_bad_options_are_named() -> None:
    with pytest.raises(ValueError, match="real_split"):
        ImageQuality(real_split="holdout")
    with pytest.raises(ValueError, match="num_samples"):
        ImageQuality(num_samples=0)
    with pytest.raises(ValueError, match="feature_extractor"):
        build_feature_net("vgg")


def test_rejects_2d_data_and_points_to_toy_metrics(tmp_path: Path) -> None:
    trainer = quiet_trainer(tmp_path, [ImageQuality(feature_extractor="digits")])
    with pytest.raises(ValueError, match="ToyMetrics"):
        trainer.validate(toy_model(), datamodule=Toy2DDataModule(val_batches=1), verbose=False)


@pytest.mark.slow  # 56 forward passes of Inception-v3 at 299 px: 1-2 min on one CPU core
def test_inception_fid_is_kid_equal_torchmetrics(tmp_path: Path, inception_weights: Path) -> None:
    n = 8
    dm = FixedImages(torch.rand(n, 1, 16, 16, generator=torch.Generator().manual_seed(1)) * 2 - 1)
    model = small_wgan(dm.data_shape)
    callback = ImageQuality(
        feature_extractor="inception",
        feature_extractor_weights_path=str(inception_weights),
        num_samples=n,
        kid_subsets=2,
        kid_subset_size=n,
        is_splits=1,
        cache_dir=str(tmp_path),
    )
    trainer = quiet_trainer(tmp_path, [callback])
    trainer.validate(model, datamodule=dm, verbose=False)
    got = logged(trainer)

    real = reference_uint8(dm.images).repeat(1, 3, 1, 1)  # grayscale replicated to RGB
    fake = reference_uint8(generated(model, n)).repeat(1, 3, 1, 1)
    path = str(inception_weights)
    fid = FrechetInceptionDistance(feature=2048, feature_extractor_weights_path=path, antialias=False)

    def inception(features: str) -> NoTrainInceptionV3:
        return NoTrainInceptionV3("inception-v3-compat", [features], path, antialias=False)

    kid = KernelInceptionDistance(feature=inception("2048"), subsets=2, subset_size=n)
    inception_score = InceptionScore(feature=inception("logits_unbiased"), splits=1)
    for metric in (fid, kid):
        metric.update(real, real=True)
        metric.update(fake, real=False)
    inception_score.update(fake)

    assert got["val/fid"] == pytest.approx(fid.compute().item(), rel=1e-4)
    assert got["val/kid"] == pytest.approx(kid.compute()[0].item(), rel=1e-4)
    assert got["val/is"] == pytest.approx(inception_score.compute()[0].item(), rel=1e-4)
    assert "val/classes_covered" not in got  # ImageNet classes say nothing about coverage


def printed_callbacks(args: list[str], capsys: pytest.CaptureFixture) -> tuple[dict, dict]:
    from src.cli import build_cli

    with pytest.raises(SystemExit):
        build_cli([*args, "--print_config"])
    config = yaml.safe_load(capsys.readouterr().out)
    return config["quality"], config["best"]


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        (
            None,
            {
                "feature_extractor": "digits",
                "num_samples": 800,
                "num_real": 800,
                "floor_draws": 5,
                "every_n_epochs": 10,
                "kid_subset_size": 500,
            },
        ),
        ("configs/digits.yaml", {"feature_extractor": "digits", "num_samples": 800, "every_n_epochs": 10}),
        (
            "configs/cifar10.yaml",
            {"feature_extractor": "inception", "num_samples": 10000, "kid_subsets": 100, "floor_draws": 0},
        ),
        (
            "configs/celeba.yaml",
            {"feature_extractor": "inception", "kid_subset_size": 1000, "num_real": 50000, "floor_draws": 0},
        ),
        (
            "configs/folder.yaml",
            {"feature_extractor": "inception", "every_n_epochs": 1, "num_real": None, "floor_draws": 0},
        ),
        ("configs/toy.yaml", {"num_points": 1000, "every_n_epochs": 1}),
    ],
)
def test_configs_measure_quality_and_keep_the_best_checkpoint(
    config: str | None,
    expected: dict,
    capsys: pytest.CaptureFixture,
    repo_root: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # --quality and --best merge key by key with the defaults (src/defaults.py), and a class_path switch keeps the
    # init_args the classes share (jsonargparse): the configs must not inherit the digits settings by accident.
    monkeypatch.chdir(repo_root)
    metrics, best = printed_callbacks(["--config", config] if config else [], capsys)
    assert metrics["class_path"].split(".")[-1] == (
        "ToyMetrics" if config == "configs/toy.yaml" else "ImageQuality"
    )
    assert {k: metrics["init_args"][k] for k in expected} == expected
    monitor = "val/w1" if config == "configs/toy.yaml" else "val/fid"
    assert best["class_path"] == "lightning.pytorch.callbacks.ModelCheckpoint"
    assert best["init_args"]["monitor"] == monitor and best["init_args"]["mode"] == "min"
