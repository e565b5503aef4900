import math

import pytest
import torch
from torchmetrics.image.fid import FrechetInceptionDistance
from torchmetrics.image.inception import InceptionScore

from src.data import DigitsDataModule
from src.data.digits import load_digits_tensors, split_indices
from src.metrics import DigitsFeatureExtractor, class_coverage, load_digits_classifier
from src.metrics.image_features import to_uint8
from src.tools.train_digits_classifier import main


def held_out_split(size: int = 32) -> tuple[torch.Tensor, ...]:
    """The classifier's split of the digits, at ``size`` px: ``(x_train, x_test, y_train, y_test)``."""
    images, labels = load_digits_tensors(size)  # (1797, 1, S, S) in [-1, 1]
    train, _, test = split_indices(labels, val_fraction=0.0, seed=0)
    return images[train], images[test], labels[train], labels[test]


@pytest.fixture(scope="module")
def split():
    return held_out_split()


@pytest.fixture(scope="module")
def model():
    return load_digits_classifier()


def test_split_sizes(split):
    x_tr, x_te, y_tr, y_te = split
    assert x_tr.shape == (1617, 1, 32, 32) and x_te.shape == (180, 1, 32, 32)
    assert x_tr.min() >= -1 and x_tr.max() <= 1
    assert torch.bincount(y_te).min() >= 17  # stratified


def test_committed_classifier_held_out_accuracy(split, model):
    _, x_te, _, y_te = split
    assert not model.training and not any(p.requires_grad for p in model.parameters())
    acc = (model(x_te).argmax(1) == y_te).float().mean().item()
    assert acc >= 0.97


@pytest.mark.parametrize("size", [8, 16, 28, 32, 64])
def test_shapes_any_size(model, size):
    x = torch.rand(4, 1, size, size) * 2 - 1
    assert model.features(x).shape == (4, model.feature_dim)
    assert model(x).shape == (4, 10)


def test_native_8x8_input_classifies(split, model):
    _, x_te, _, y_te = held_out_split(size=8)
    acc = (model(x_te).argmax(1) == y_te).float().mean().item()
    assert acc >= 0.97


def test_extractor_input_conventions(split, model):
    _, x_te, _, _ = split
    x = x_te[:8]  # (8, 1, 32, 32) in [-1, 1]
    ref = model.features(x)
    unit = (x + 1) / 2
    ext = DigitsFeatureExtractor("features", classifier=model)
    assert ext.num_features == model.feature_dim
    assert torch.allclose(ext(unit), ref, atol=1e-5)
    assert torch.allclose(ext(unit.repeat(1, 3, 1, 1)), ref, atol=1e-5)
    assert torch.allclose(
        DigitsFeatureExtractor(classifier=model, float_range="symmetric")(x), ref, atol=1e-5
    )
    u8 = (unit * 255).round().to(torch.uint8)
    assert torch.allclose(ext(u8), ref, rtol=1e-2, atol=5e-2)  # uint8 quantisation
    ext.train()
    assert not ext.training
    logits = DigitsFeatureExtractor("logits", classifier=model)
    assert logits.num_features == 10 and logits(unit).shape == (8, 10)


def test_fid_with_digits_features(split, model):
    x_tr, x_te, _, _ = split
    real, other = (x_tr[:800] + 1) / 2, (x_tr[800:1600] + 1) / 2  # float in [0, 1]
    fid = FrechetInceptionDistance(
        feature=DigitsFeatureExtractor("features", classifier=model),
        normalize=True,
        reset_real_features=False,
    )
    fid.update(real, real=True)
    fid.update(real, real=False)
    same = fid.compute().item()
    fid.reset()
    fid.update(other, real=False)
    halves = fid.compute().item()
    fid.reset()
    fid.update(torch.randn_like(real).mul(0.3).add(0.5).clamp(0, 1), real=False)
    noise = fid.compute().item()
    print(f"FID same={same:.4g} halves={halves:.4g} noise={noise:.4g}")
    assert abs(same) < 1e-2
    assert noise > 20 * max(halves, 1e-3)


def test_inception_score_with_digits_logits(split, model):
    _, x_te, _, _ = split
    ext = DigitsFeatureExtractor("logits", classifier=model)
    # InceptionScore converts normalize=True floats to uint8 before the custom module.
    is_metric = InceptionScore(feature=ext, normalize=True, splits=2)
    is_metric.update((x_te + 1) / 2)
    mean, _ = is_metric.compute()
    print(f"IS on held-out digits: {mean.item():.3f}")
    assert mean.item() > 8.0  # close to 10 for a confident, balanced classifier


def test_class_coverage():
    one = class_coverage(torch.full((50,), 3))
    assert one["classes_covered"] == 1
    assert one["kl_from_uniform"] == pytest.approx(math.log(10))
    uniform = class_coverage(torch.eye(10).repeat(5, 1))  # one-hot "logits", 5 of each class
    assert uniform["classes_covered"] == 10
    assert uniform["kl_from_uniform"] == pytest.approx(0.0, abs=1e-12)
    two = class_coverage(torch.tensor([0] * 99 + [1] * 1 + [2] * 0), min_fraction=0.02)
    assert two["classes_covered"] == 1 and sum(two["histogram"]) == pytest.approx(1.0)


def test_the_datamodule_test_split_is_the_classifier_held_out_split(split):
    _, x_te, _, y_te = split
    dm = DigitsDataModule()
    images, labels = dm.reference_images("test"), dm.tensors["test"][1]
    assert torch.equal(labels, y_te)
    assert torch.equal(images, to_uint8(x_te))  # the same digits, stored as uint8


@pytest.mark.slow
def test_the_training_entry_point_writes_loadable_weights(tmp_path, capsys):
    out = tmp_path / "digits_cnn.pt"
    main(["--epochs", "1", "--out", str(out)])
    assert "held-out accuracy" in capsys.readouterr().out
    model = load_digits_classifier(out)
    assert model(torch.zeros(2, 1, 32, 32)).shape == (2, 10)
