"""LPIPS from a local backbone file: Zhang et al.'s formula by hand, clear errors, no download, the SR callback."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torchmetrics
import torchvision
from torch import Tensor

from src.metrics.lpips import BACKBONES, build_lpips
from tests.helpers import photos, sr_model, trainer

# torchmetrics' LPIPS layers: the ReLU outputs that end these slices of torchvision's `features`.
SLICES = {"alex": (2, 5, 8, 10, 12), "squeeze": (2, 5, 8, 10, 11, 12, 13)}
SHIFT = torch.tensor([-0.030, -0.088, -0.188]).view(1, 3, 1, 1)
SCALE = torch.tensor([0.458, 0.448, 0.450]).view(1, 3, 1, 1)


@pytest.fixture(scope="module")
def backbone_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Randomly initialised torchvision backbones (the ImageNet files cannot be downloaded here), saved."""
    folder = tmp_path_factory.mktemp("backbones")
    files = {}
    for net in SLICES:
        torch.manual_seed(1)
        model = getattr(torchvision.models, BACKBONES[net][0])(weights=None)
        files[net] = folder / f"{net}.pth"
        torch.save(model.state_dict(), files[net])
    return files


def lpips_by_hand(net: str, weights: Path, a: Tensor, b: Tensor) -> Tensor:
    """Zhang et al. 2018, eq. 1: sum over layers of the spatial mean of w_l · (unit-normalised feature diff)^2."""
    backbone = getattr(torchvision.models, BACKBONES[net][0])(weights=None)
    backbone.load_state_dict(torch.load(weights, weights_only=True))
    lins = torch.load(
        Path(torchmetrics.__file__).parent / f"functional/image/lpips_models/{net}.pth", map_location="cpu"
    )
    features = backbone.features.eval()
    total = torch.zeros(a.shape[0])
    x, y, start = (a - SHIFT) / SCALE, (b - SHIFT) / SCALE, 0
    for layer, end in enumerate(SLICES[net]):
        x, y, start = features[start:end](x), features[start:end](y), end
        diff = (x / x.norm(dim=1, keepdim=True) - y / y.norm(dim=1, keepdim=True)) ** 2  # (B, C_l, H_l, W_l)
        weight = lins[f"lin{layer}.model.1.weight"]  # (1, C_l, 1, 1)
        total += (diff * weight).sum(dim=1).mean(dim=(1, 2))
    return total


@pytest.mark.parametrize("net", ["squeeze", "alex"])
def test_lpips_from_a_local_file_matches_the_formula(net: str, backbone_files: dict[str, Path]) -> None:
    torch.manual_seed(0)
    a, b = torch.rand(2, 3, 64, 64) * 2 - 1, torch.rand(2, 3, 64, 64) * 2 - 1
    metric = build_lpips(net, str(backbone_files[net]))
    with torch.no_grad():
        expected = lpips_by_hand(net, backbone_files[net], a, b)
        torch.testing.assert_close(metric(a, b), expected.sum(), rtol=1e-4, atol=1e-6)
        assert metric(a, a).abs() < 1e-6


def test_the_backbone_comes_from_the_file_and_nothing_is_downloaded(
    backbone_files: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_download(*args: object, **kwargs: object) -> None:
        raise AssertionError("tried to download")

    monkeypatch.setattr(torch.hub, "download_url_to_file", no_download)
    before = torch.hub.get_dir()
    other = tmp_path / "other.pth"
    torch.manual_seed(2)
    torch.save(torchvision.models.squeezenet1_1(weights=None).state_dict(), other)
    a, b = torch.rand(1, 3, 64, 64) * 2 - 1, torch.rand(1, 3, 64, 64) * 2 - 1
    with torch.no_grad():
        first = build_lpips("squeeze", str(backbone_files["squeeze"]))(a, b)
        second = build_lpips("squeeze", str(other))(a, b)
    assert not torch.allclose(first, second)  # other weights, other distance
    assert torch.hub.get_dir() == before


def test_bad_lpips_options_are_refused_with_the_fix(
    backbone_files: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from src.evaluation import SuperResolutionQuality

    def offline(*args: object, **kwargs: object) -> None:
        raise OSError("no network")

    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "empty_hub"))
    with pytest.raises(RuntimeError, match=r"alexnet-owt-7be5be79\.pth.*lpips_weights_path.*lpips_net: null"):
        SuperResolutionQuality(lpips_net="alex")

    with pytest.raises(FileNotFoundError, match=r"lpips_weights_path=.*alexnet-owt-7be5be79\.pth"):
        build_lpips("alex", str(tmp_path / "missing.pth"))
    with pytest.raises(ValueError, match=r"not a torchvision alexnet state_dict \(lpips_net='alex'\)"):
        build_lpips("alex", str(backbone_files["squeeze"]))
    with pytest.raises(ValueError, match=r"lpips_net='vgg19' is not one of"):
        build_lpips("vgg19", str(backbone_files["squeeze"]))
    with pytest.raises(ValueError, match=r"lpips_weights_path=.* needs lpips_net"):
        SuperResolutionQuality(lpips_weights_path=str(backbone_files["squeeze"]))


def test_the_sr_callback_logs_lpips_for_sr_and_bicubic(
    backbone_files: dict[str, Path], tmp_path: Path
) -> None:
    from src.evaluation import SuperResolutionQuality

    quality = SuperResolutionQuality(
        num_pictures=0, lpips_net="squeeze", lpips_weights_path=str(backbone_files["squeeze"])
    )
    t = trainer(tmp_path, callbacks=[quality], limit_test_batches=1)
    t.test(sr_model(scale=4), photos(), verbose=False)
    m = t.callback_metrics
    # An untrained residual generator outputs exactly bicubic; LPIPS of a blurred image is above 0.
    torch.testing.assert_close(m["test/lpips"], m["test/lpips_bicubic"])
    assert m["test/lpips_bicubic"] > 0
