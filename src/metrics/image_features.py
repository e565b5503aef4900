"""Feature networks for the image metrics: torch-fidelity's Inception-v3 and VGG-16, the offline digits CNN.

Every network here takes uint8 images (B, C, H, W) in [0, 255], the input convention of torch-fidelity and of
the original TensorFlow FID code, and returns ``(features, logits)`` from a single forward pass: features
(B, D) for FID, KID and precision/recall, logits (B, K) for the Inception Score. The feature spaces:

- ``inception``: pool3 (2048) of the TF-FID Inception-v3, FID's standard space.
- ``vgg16``: fc2 after its ReLU (4096) of torchvision's ImageNet VGG-16, the space of Kynkäänniemi et al.'s
  precision and recall and torch-fidelity's default for ``prc``.
- ``digits``: the penultimate layer (128) of the offline digits CNN.

:class:`PairedFeatures` runs two of them, one for FID/KID/IS and one for precision/recall.
"""

from __future__ import annotations

import hashlib
import importlib
import os
from pathlib import Path

import torch
from torch import Tensor, nn
from typing_extensions import override

from src.metrics.digits_classifier import DEFAULT_WEIGHTS, DigitsFeatureExtractor, load_digits_classifier

INCEPTION_FEATURES = "2048"  # pool3 features, the standard FID/KID layer
INCEPTION_LOGITS = "logits_unbiased"  # the logits of torch-fidelity's and torchmetrics' Inception Score


def to_uint8(images: Tensor, dequantized: bool = False) -> Tensor:
    """Generator output in [-1, 1] to uint8-equivalent images, as saving them would give.

    - ``dequantized=False``: ``round((x + 1) * 127.5)``, as a PNG of data scaled by ``x / 127.5 - 1``.
    - ``dequantized=True`` (the model was trained on ``data.dequantize: true`` images, pixel ``v`` spread over
      ``[v/128 - 1, (v+1)/128 - 1)``): ``floor((x + 1) * 255.99 / 2)``, the released ``gan_cifar_resnet.py``'s
      inverse, which maps each bin back to its ``v``; rounding would move half of every bin up by one level.

    Both are clamped to [0, 255].

    Args:
        images: Float images (B, C, H, W) in [-1, 1]; uint8 images are returned as they are.
        dequantized: Invert the dequantisation of the training data instead of rounding.

    Returns:
        uint8 images (B, C, H, W).
    """
    if images.dtype == torch.uint8:
        return images
    if dequantized:
        return ((images.float() + 1) * (255.99 / 2)).floor().clamp(0, 255).to(torch.uint8)
    return ((images.float() + 1) * 127.5).round().clamp(0, 255).to(torch.uint8)


class FeatureNet(nn.Module):
    """A frozen feature network: uint8 images (B, C, H, W) -> ``(features (B, D), logits (B, K) or None)``.

    Subclasses set ``num_features``, ``num_logits`` (0 when there are no logits) and ``identity`` (a string
    that changes whenever the features would change, used as part of the real-feature cache key). A fork can
    pass its own subclass as ``feature_extractor="package.module.Class"``; it is built as
    ``Class(weights_path=...)``.
    """

    num_features: int
    num_logits: int = 0
    identity: str = ""

    @override
    def train(self, mode: bool = True) -> FeatureNet:
        """Stay in eval mode whatever is asked, as torchmetrics' own Inception wrapper does."""
        return super().train(False)


class InceptionFeatures(FeatureNet):
    """torch-fidelity's ``FeatureExtractorInceptionV3`` (the TF-FID Inception-v3), pool3 features and logits.

    Images are resized to 299x299 inside the network with torch-fidelity's TensorFlow-1.x-compatible bilinear
    interpolation, as torch-fidelity's own FID/IS/KID do; do not resize them beforehand. Grayscale images are
    replicated to three channels. (torchmetrics' default ``antialias=True`` resize differs from the reference;
    torchmetrics' ``FrechetInceptionDistance(antialias=False)`` gives the same features as this class.)

    Args:
        weights_path: A local copy of torch-fidelity's weights file
            (``weights-inception-2015-12-05-6726825d.pth``) for machines without internet. ``None`` downloads it
            once into the torch hub cache (``$TORCH_HOME/hub/checkpoints``).
    """

    num_features = 2048
    num_logits = 1008

    def __init__(self, weights_path: str | None = None) -> None:
        super().__init__()
        from torch_fidelity.feature_extractor_inceptionv3 import URL_INCEPTION_V3, FeatureExtractorInceptionV3

        if weights_path is not None and not os.path.isfile(weights_path):
            raise FileNotFoundError(
                f"feature_extractor_weights_path={weights_path!r} is not a file; point it at a copy of "
                f"{URL_INCEPTION_V3}"
            )
        try:
            self.net = FeatureExtractorInceptionV3(
                "inception-v3-compat", [INCEPTION_FEATURES, INCEPTION_LOGITS], weights_path
            )
        except Exception as err:
            if weights_path is not None:
                raise
            hub = os.path.join(torch.hub.get_dir(), "checkpoints")
            raise RuntimeError(
                f"Could not download the Inception-v3 weights for FID/IS/KID from {URL_INCEPTION_V3} ({err!r}). "
                "Without internet, copy that file here and pass its path as the image-quality callback's "
                "`feature_extractor_weights_path` (e.g. `init_args: {feature_extractor_weights_path: "
                f"/path/to/{os.path.basename(URL_INCEPTION_V3)}}}`), or put it into {hub}; or use "
                "`feature_extractor: digits` for digit images."
            ) from err
        self.identity = f"inception-v3-compat:{_file_tag(weights_path) if weights_path else URL_INCEPTION_V3}"
        self.eval()

    @override
    def forward(self, images: Tensor) -> tuple[Tensor, Tensor]:
        """Pool3 features (B, 2048) and unbiased logits (B, 1008) of uint8 images (B, 1 or 3, H, W)."""
        if images.shape[1] == 1:
            images = images.expand(-1, 3, -1, -1)  # (B, 3, H, W): grayscale replicated
        features, logits = self.net(images)
        return features, logits


class DigitsFeatures(FeatureNet):
    """The offline digits CNN (:mod:`src.metrics.digits_classifier`): penultimate features and class logits.

    The domain-specific stand-in for Inception on digit images (as MNIST papers use LeNet): no download, and
    fast on a CPU. Numbers are not comparable with Inception FIDs.

    Args:
        weights_path: The classifier's state_dict; ``None`` uses the committed ``digits_cnn.pt``.
    """

    def __init__(self, weights_path: str | None = None) -> None:
        super().__init__()
        classifier = load_digits_classifier(weights_path)
        self.extractor = DigitsFeatureExtractor("features", classifier=classifier)
        self.num_features = classifier.feature_dim
        self.num_logits = classifier.num_classes
        self.identity = f"digits-cnn:{_file_tag(weights_path or DEFAULT_WEIGHTS)}"
        self.eval()

    @override
    def forward(self, images: Tensor) -> tuple[Tensor, Tensor]:
        """Features (B, 128) and logits (B, 10) of uint8 images (B, 1 or 3, H, W)."""
        classifier = self.extractor.classifier
        x = self.extractor.to_model_input(images)  # (B, 1, H, W) in [-1, 1]
        features = classifier.features(x)  # (B, D)
        return features, classifier.head(features)  # dropout is the identity in eval mode


class VGG16Features(FeatureNet):
    """torch-fidelity's ``FeatureExtractorVGG16``: fc2 features after the ReLU (B, 4096), no logits.

    The feature space of Kynkäänniemi et al.'s improved precision and recall, and torch-fidelity's default for
    ``prc``. Images are resized to 224x224 inside the network with torch-fidelity's TensorFlow-1.x-compatible
    bilinear interpolation and normalized with ImageNet's mean and std; grayscale is replicated to RGB.

    Args:
        weights_path: A local copy of torchvision's ``vgg16-397923af.pth`` (a ``torchvision.models.vgg16``
            state_dict) for machines without internet; ``None`` downloads it once into the torch hub cache.
    """

    num_features = 4096

    def __init__(self, weights_path: str | None = None) -> None:
        super().__init__()
        from torch_fidelity.feature_extractor_vgg16 import FeatureExtractorVGG16
        from torchvision.models import VGG16_Weights

        url = VGG16_Weights.IMAGENET1K_V1.url
        if weights_path is not None and not os.path.isfile(weights_path):
            raise FileNotFoundError(
                f"the VGG-16 weights path {weights_path!r} (precision_recall_weights_path, or "
                f"feature_extractor_weights_path for feature_extractor: vgg16) is not a file; point it at a "
                f"copy of {url}"
            )
        try:
            self.net = FeatureExtractorVGG16("vgg16", ["fc2_relu"], weights_path)
        except Exception as err:
            if weights_path is not None:
                raise
            raise RuntimeError(
                f"Could not download the VGG-16 weights for precision/recall from {url} ({err!r}). Without "
                "internet, copy that file here and pass its path as the image-quality callback's "
                "`precision_recall_weights_path` (`feature_extractor_weights_path` for `feature_extractor: "
                "vgg16`), or set `precision_recall_features: null` (precision and recall then use the FID "
                "features)."
            ) from err
        self.identity = f"vgg16-fc2-relu:{_file_tag(weights_path) if weights_path else url}"
        self.eval()

    @override
    def forward(self, images: Tensor) -> tuple[Tensor, None]:
        """fc2 features after the ReLU (B, 4096) of uint8 images (B, 1 or 3, H, W)."""
        if images.shape[1] == 1:
            images = images.expand(-1, 3, -1, -1)  # (B, 3, H, W): grayscale replicated
        (features,) = self.net(images)
        return features, None


class PairedFeatures(FeatureNet):
    """Two feature networks in one pass: ``main`` for FID, KID and IS, ``other`` for precision and recall.

    ``forward`` returns the two feature vectors side by side, (B, D_main + D_other), and ``main``'s logits;
    :class:`~src.evaluation.feature_metrics.FeatureMetrics` splits them at :attr:`split`. One cache entry
    (keyed by both identities) holds the real features of both.

    Args:
        main: The network of FID, KID and the Inception Score.
        other: The network of precision and recall.
    """

    def __init__(self, main: FeatureNet, other: FeatureNet) -> None:
        super().__init__()
        self.main, self.other = main, other
        self.split = main.num_features
        self.num_features = main.num_features + other.num_features
        self.num_logits = main.num_logits
        self.identity = f"{main.identity}+prc:{other.identity}"

    @override
    def forward(self, images: Tensor) -> tuple[Tensor, Tensor | None]:
        """Features (B, D_main + D_other) and ``main``'s logits (B, K) or ``None``."""
        features, logits = self.main(images)
        return torch.cat([features.float(), self.other(images)[0].float()], dim=1), logits


FEATURE_EXTRACTORS = {"inception": InceptionFeatures, "digits": DigitsFeatures, "vgg16": VGG16Features}


def build_feature_net(
    name: str,
    weights_path: str | None = None,
    precision_recall_name: str | None = None,
    precision_recall_weights_path: str | None = None,
) -> FeatureNet:
    """Build a feature network by name (``inception``, ``vgg16``, ``digits``) or class path (``package.module.Class``).

    Args:
        name: ``"inception"``, ``"vgg16"``, ``"digits"`` or the import path of a :class:`FeatureNet` subclass.
        weights_path: Passed to the class as ``weights_path``.
        precision_recall_name: Another network for precision and recall (same choices): the result is then
            their :class:`PairedFeatures`. ``None``: one network for every metric.
        precision_recall_weights_path: Its ``weights_path``.

    Returns:
        The network, frozen and in eval mode.
    """
    if precision_recall_name is not None:
        pair = PairedFeatures(
            build_feature_net(name, weights_path),
            build_feature_net(precision_recall_name, precision_recall_weights_path),
        )
        return pair.eval().requires_grad_(False)
    if name in FEATURE_EXTRACTORS:
        net = FEATURE_EXTRACTORS[name](weights_path)
    elif "." in name:
        module_name, _, class_name = name.rpartition(".")
        try:
            cls = getattr(importlib.import_module(module_name), class_name)
        except (ImportError, AttributeError) as err:
            raise ValueError(f"feature_extractor={name!r} cannot be imported: {err}") from err
        net = cls(weights_path=weights_path)
        if not isinstance(net, FeatureNet):
            raise TypeError(f"feature_extractor={name!r} must build a src.metrics.image_features.FeatureNet")
        if not net.identity:
            net.identity = f"{name}:{_file_tag(weights_path) if weights_path else 'default'}"
    else:
        raise ValueError(
            f"feature_extractor must be one of {sorted(FEATURE_EXTRACTORS)} or a class path "
            f"'package.module.Class', got {name!r}"
        )
    return net.eval().requires_grad_(False)


def _file_tag(path: str | Path) -> str:
    """A short content hash of a weights file, so the cache key changes when the weights do."""
    digest = hashlib.sha1()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:12]
