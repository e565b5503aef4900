"""VGG-16 features for precision and recall, through torch-fidelity's real loader with a local weights file."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torchvision

from src.data import DigitsDataModule
from src.evaluation import ImageQuality
from src.evaluation.feature_metrics import PrecisionRecall
from src.metrics.image_features import DigitsFeatures, VGG16Features, build_feature_net
from tests.test_image_quality import Replay, logged, quiet_trainer

pytestmark = pytest.mark.slow  # a 528 MB random VGG-16 saved and loaded, and its forward passes at 224 px


@pytest.fixture(scope="module")
def vgg16_weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """torchvision's VGG-16 with its random initialisation, saved as the state_dict torchvision's file holds."""
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("vgg16") / "vgg16-random.pth"
    torch.save(torchvision.models.vgg16().state_dict(), path)
    return path


def test_vgg16_features_load_a_local_weights_file_and_equal_torch_fidelitys(vgg16_weights: Path) -> None:
    from torch_fidelity.feature_extractor_vgg16 import FeatureExtractorVGG16

    net = build_feature_net("vgg16", str(vgg16_weights))
    assert isinstance(net, VGG16Features) and (net.num_features, net.num_logits) == (4096, 0)
    assert "vgg16" in net.identity and not any(p.requires_grad for p in net.parameters())
    images = torch.randint(0, 256, (3, 3, 32, 32), dtype=torch.uint8)
    features, logits = net(images)
    assert features.shape == (3, 4096) and logits is None and (features >= 0).all()  # fc2 after the ReLU
    (want,) = FeatureExtractorVGG16("vgg16", ["fc2_relu"], str(vgg16_weights))(images)
    torch.testing.assert_close(features, want)
    gray = images[:, :1]  # grayscale is replicated to RGB
    torch.testing.assert_close(net(gray)[0], net(gray.expand(-1, 3, -1, -1))[0])
    with pytest.raises(FileNotFoundError, match="precision_recall_weights_path"):
        VGG16Features(str(vgg16_weights) + ".missing")


def test_precision_recall_on_vgg16_beside_fid_on_the_digits_features(
    tmp_path: Path, vgg16_weights: Path
) -> None:
    n = 12
    dm = DigitsDataModule()
    real = dm.reference_images("train", n, seed=0)  # the callback's real subset (uint8)
    fake_u8 = dm.reference_images("test", n, seed=0)
    fake = fake_u8.float() / 127.5 - 1
    got = {}
    for prc_features in (None, "vgg16"):
        callback = ImageQuality(
            feature_extractor="digits", precision_recall_features=prc_features,
            precision_recall_weights_path=str(vgg16_weights), num_samples=n, num_real=n, kid=False,
            inception_score=False, cache_dir=str(tmp_path / "cache"),
        )  # fmt: skip
        trainer = quiet_trainer(tmp_path, [callback])
        trainer.validate(Replay(fake), datamodule=dm, verbose=False)
        got[prc_features] = logged(trainer)

    vgg = VGG16Features(str(vgg16_weights))
    want = PrecisionRecall()
    want.update(vgg(real)[0], real=True)
    want.update(vgg(fake_u8)[0], real=False)
    precision, recall = (float(v) for v in want.compute())
    digits = PrecisionRecall()
    digits.update(DigitsFeatures()(real)[0], real=True)
    digits.update(DigitsFeatures()(fake_u8)[0], real=False)
    assert got["vgg16"]["val/precision"] == pytest.approx(precision, abs=1e-6)
    assert got["vgg16"]["val/recall"] == pytest.approx(recall, abs=1e-6)
    assert got[None]["val/precision"] == pytest.approx(float(digits.compute()[0]), abs=1e-6)
    assert got["vgg16"]["val/fid"] == pytest.approx(got[None]["val/fid"], rel=1e-5)  # FID: digits features
    assert got["vgg16"]["val/classes_covered"] == got[None]["val/classes_covered"]
