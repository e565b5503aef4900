"""The real-against-real floor: disjoint draws at the measurement's own sample sizes, logged beside the metrics."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torchmetrics.image.fid import FrechetInceptionDistance

from src.data import DigitsDataModule
from src.data.transforms import to_signed_unit
from src.evaluation import ImageQuality
from src.evaluation.feature_metrics import _Precomputed
from src.evaluation.real_floor import floor_partition, real_floor
from src.evaluation.real_images import all_images
from src.metrics.image_features import build_feature_net
from tests.test_image_quality import Replay, logged, quiet_trainer


def test_partition_is_disjoint_and_sized_and_says_when_it_must_replace() -> None:
    reference, generated, replaced = floor_partition(100, 40, 60, seed=0)
    assert (len(reference), len(generated), replaced) == (40, 60, False)
    assert not set(reference.tolist()) & set(generated.tolist())
    assert len(set(generated.tolist())) == 60
    other, _, _ = floor_partition(100, 40, 60, seed=1)
    assert not torch.equal(reference, other)  # each draw is another partition
    reference, generated, replaced = floor_partition(100, 40, 80, seed=0)
    assert replaced and len(generated) == 80
    assert not set(reference.tolist()) & set(
        generated.tolist()
    )  # replacement only among the left-over images


def test_floor_is_the_mean_and_std_of_torchmetrics_fid_over_the_draws() -> None:
    features = torch.randn(300, 8, generator=torch.Generator().manual_seed(0)).double()
    floor = real_floor(features, 100, 150, draws=3, seed=7, kid=False, precision_recall=False)
    fids = []
    for i in range(3):
        reference, generated, _ = floor_partition(300, 100, 150, seed=7 + i)
        fid = FrechetInceptionDistance(feature=_Precomputed(8))
        fid.update(features[reference].float(), real=True)
        fid.update(features[generated].float(), real=False)
        fids.append(float(fid.compute()))
    expected = torch.tensor(fids, dtype=torch.float64)
    assert floor["fid_floor"] == pytest.approx(float(expected.mean()), rel=1e-5)
    assert floor["fid_floor_std"] == pytest.approx(float(expected.std()), rel=1e-4)
    assert set(floor) == {"fid_floor", "fid_floor_std"}


def test_fid_floor_falls_with_the_sample_size() -> None:
    """FID is biased by the sample counts: the same distribution scores higher with fewer samples."""
    features = torch.randn(2000, 16, generator=torch.Generator().manual_seed(0))
    small = real_floor(features, 100, 100, draws=5, seed=0, kid=False, precision_recall=False)["fid_floor"]
    large = real_floor(features, 900, 900, draws=5, seed=0, kid=False, precision_recall=False)["fid_floor"]
    assert small > 3 * large


def test_all_images_takes_every_split_once() -> None:
    data = DigitsDataModule(image_size=16)
    assert len(all_images(data)) == 1797
    empty_val = DigitsDataModule(image_size=16, val_fraction=0.0)  # val falls back to test: not taken twice
    assert len(all_images(empty_val)) == 1797


def test_image_quality_logs_the_floor_at_its_own_sizes_and_real_digits_sit_on_it(tmp_path: Path) -> None:
    """Held-out real digits 'generated' score within the floor's spread; noise scores far above it."""
    data = DigitsDataModule(image_size=16)
    held_out = to_signed_unit(data.reference_images("test"))  # (180, 1, 16, 16): never in the reference
    options = dict(
        feature_extractor="digits",
        num_samples=180,
        num_real=600,
        kid_subset_size=100,
        cache_dir=str(tmp_path),
    )
    values = {}
    for name, images in (("real", held_out), ("noise", torch.rand_like(held_out) * 2 - 1)):
        trainer = quiet_trainer(tmp_path, [ImageQuality(inception_score=False, floor_draws=5, **options)])
        trainer.validate(Replay(images), datamodule=data)
        values[name] = logged(trainer)
    real, noise = values["real"], values["noise"]
    for key in ("fid_floor", "fid_floor_std", "kid_floor", "precision_floor", "recall_floor"):
        assert f"val/{key}" in real
    assert real["val/fid_floor"] == noise["val/fid_floor"]  # the floor does not depend on the generator
    assert abs(real["val/fid"] - real["val/fid_floor"]) < 4 * real["val/fid_floor_std"] + 2
    assert noise["val/fid"] > 10 * real["val/fid_floor"]
    assert real["val/precision_floor"] > 0.8 and real["val/recall_floor"] > 0.8

    # the same floor as real_floor on all the digits' features, at 180 generated against 600 real
    net = build_feature_net("digits", None)
    features = net(all_images(data))[0].float()
    direct = real_floor(features, 600, 180, draws=5, seed=0, kid_subsets=100, kid_subset_size=100)
    assert real["val/fid_floor"] == pytest.approx(direct["fid_floor"], rel=1e-4)
    assert real["val/precision_floor"] == pytest.approx(direct["precision_floor"], abs=1e-6)
