"""LPIPS (Zhang et al. 2018) from torchmetrics, with the backbone's ImageNet weights from a local file.

torchmetrics ships LPIPS's linear layers but takes the backbone (AlexNet, VGG-16 or SqueezeNet 1.1) from
torchvision, which downloads its ImageNet weights into the torch hub cache. :func:`build_lpips` builds the same
metric on a machine without internet: the local file is shown to torchvision as its hub cache entry (a symbolic
link in a temporary hub folder), so the metric is torchmetrics' own, unchanged.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import torch
import torchvision
from torch import Tensor
from torchmetrics.image.lpip import LearnedPerceptualImagePatchSimilarity

# net_type -> (torchvision builder, its ImageNet weights): the backbones torchmetrics' LPIPS loads.
BACKBONES = {
    "alex": ("alexnet", "AlexNet_Weights"),
    "vgg": ("vgg16", "VGG16_Weights"),
    "squeeze": ("squeezenet1_1", "SqueezeNet1_1_Weights"),
}


def backbone_url(net: str) -> str:
    """The torchvision download address of ``net``'s ImageNet weights (the file ``lpips_weights_path`` copies)."""
    return getattr(torchvision.models, BACKBONES[net][1]).DEFAULT.url


def _check_weights(net: str, weights_path: str) -> None:
    """Raise a clear error unless ``weights_path`` is a state_dict of torchvision's ``net`` backbone."""
    url = backbone_url(net)
    fix = f"point lpips_weights_path at a copy of {url} (torchvision's {BACKBONES[net][0]} ImageNet weights)"
    if not os.path.isfile(weights_path):
        raise FileNotFoundError(f"lpips_weights_path={weights_path!r} is not a file; {fix}")
    try:
        state_dict = torch.load(weights_path, map_location="cpu", weights_only=True)
        getattr(torchvision.models, BACKBONES[net][0])(weights=None).load_state_dict(state_dict)
    except Exception as err:
        raise ValueError(
            f"lpips_weights_path={weights_path!r} is not a torchvision {BACKBONES[net][0]} state_dict "
            f"(lpips_net={net!r}): {str(err).splitlines()[0]}; {fix}"
        ) from None


def build_lpips(net: str = "alex", weights_path: str | None = None) -> LearnedPerceptualImagePatchSimilarity:
    """The LPIPS metric of torchmetrics (inputs in [-1, 1], per-batch sum) with ``net``'s backbone weights.

    Args:
        net: The backbone: ``"alex"`` (LPIPS's default), ``"vgg"`` or ``"squeeze"``.
        weights_path: A local copy of torchvision's ImageNet weights of that backbone
            (:func:`backbone_url`); ``None`` lets torchvision download them once into the torch hub cache.

    Returns:
        The metric; ``metric(a, b)`` returns the sum of the per-image distances of a batch.

    Raises:
        ValueError: An unknown ``net``, or a file that is not the backbone's state_dict.
        FileNotFoundError: ``weights_path`` does not exist.
        RuntimeError: No file given and the download failed (the message says where to get the file).
    """
    if net not in BACKBONES:
        raise ValueError(f"lpips_net={net!r} is not one of {sorted(BACKBONES)} (or null for no LPIPS)")
    if weights_path is None:
        try:
            return LearnedPerceptualImagePatchSimilarity(net_type=net, reduction="sum")
        except Exception as err:
            raise RuntimeError(
                f"Could not download the LPIPS backbone weights from {backbone_url(net)} ({err!r}). Without "
                "internet, copy that file here and pass its path as SuperResolutionQuality's "
                "`lpips_weights_path`, or set `lpips_net: null`."
            ) from err
    _check_weights(net, weights_path)
    previous = torch.hub.get_dir()
    with tempfile.TemporaryDirectory() as hub:
        cached = Path(hub, "checkpoints", os.path.basename(backbone_url(net)))
        cached.parent.mkdir()
        cached.symlink_to(Path(weights_path).resolve())
        torch.hub.set_dir(hub)
        try:
            return LearnedPerceptualImagePatchSimilarity(net_type=net, reduction="sum")
        finally:
            torch.hub.set_dir(previous)


def lpips_sum(metric: LearnedPerceptualImagePatchSimilarity, images: Tensor, reference: Tensor) -> Tensor:
    """The summed LPIPS of a batch against its references, (B, C, H, W) in [-1, 1] (clamped; grayscale as RGB).

    The metric moves to the images' device and keeps no state between batches.
    """
    metric = metric.to(images.device)
    value = metric(*(x.float().clamp(-1, 1).expand(-1, 3, -1, -1) for x in (images, reference)))
    metric.reset()
    return value
