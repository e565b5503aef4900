"""A small CNN trained on scikit-learn's digits, used as the feature network for domain FID/KID/IS.

The committed weights (``weights/digits_cnn.pt``) come from ``python -m src.tools.train_digits_classifier``,
trained and checked on the digits' fixed split (:func:`src.data.digits.split_indices`). Images are
(B, 1, H, W) in [-1, 1]; any H, W is resized to 32x32 inside the model.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

DEFAULT_WEIGHTS = Path(__file__).resolve().parent / "weights" / "digits_cnn.pt"
INPUT_SIZE = 32
NUM_CLASSES = 10


def resize(x: Tensor, size: int = INPUT_SIZE) -> Tensor:
    """Bilinear, antialiased resize of (B, C, H, W) to (B, C, size, size); a no-op at that size."""
    if x.shape[-2:] == (size, size):
        return x
    return F.interpolate(x, size=(size, size), mode="bilinear", antialias=True, align_corners=False)


class DigitsClassifier(nn.Module):
    """Small CNN for 10-class digit images.

    Three conv blocks (32x32 -> 16 -> 8 -> 4), a 2x2 average pool, and a ``feature_dim``-wide
    hidden layer whose ReLU activations are the features for FID/KID. No BatchNorm, so the
    outputs do not depend on the batch or on train/eval mode (dropout aside).

    Args:
        feature_dim: Width of the penultimate (feature) layer.
        num_classes: Number of output classes.
    """

    def __init__(self, feature_dim: int = 128, num_classes: int = NUM_CLASSES) -> None:
        super().__init__()
        self.feature_dim = feature_dim
        self.num_classes = num_classes
        self.body = nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),  # (B, 16, 16, 16)
            nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),  # (B, 32, 8, 8)
            nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),  # (B, 64, 4, 4)
            nn.AdaptiveAvgPool2d(2), nn.Flatten(),  # (B, 256)
            nn.Linear(256, feature_dim), nn.ReLU(),  # (B, F)
        )  # fmt: skip
        self.dropout = nn.Dropout(0.3)
        self.head = nn.Linear(feature_dim, num_classes)

    def features(self, x: Tensor) -> Tensor:
        """Penultimate activations.

        Args:
            x: Images (B, 1, H, W) in [-1, 1]; resized to 32x32 if needed.

        Returns:
            Features of shape (B, feature_dim).
        """
        return self.body(resize(x))

    def logits(self, x: Tensor) -> Tensor:
        """Class logits (B, num_classes) for images (B, 1, H, W) in [-1, 1]."""
        return self.head(self.dropout(self.features(x)))

    def forward(self, x: Tensor) -> Tensor:
        """Same as :meth:`logits`."""
        return self.logits(x)


def load_digits_classifier(
    path: str | Path | None = None, map_location: str | torch.device = "cpu"
) -> DigitsClassifier:
    """Load the trained classifier, frozen and in eval mode.

    Args:
        path: A state_dict file; defaults to the committed ``src/metrics/weights/digits_cnn.pt``.
        map_location: Device to load the weights on.

    Returns:
        The classifier with ``requires_grad=False`` on every parameter.
    """
    state = torch.load(
        DEFAULT_WEIGHTS if path is None else path, map_location=map_location, weights_only=True
    )
    model = DigitsClassifier(
        feature_dim=state["head.weight"].shape[1], num_classes=state["head.weight"].shape[0]
    )
    model.load_state_dict(state)
    model.to(map_location).eval().requires_grad_(False)
    return model


class DigitsFeatureExtractor(nn.Module):
    """Wraps :class:`DigitsClassifier` as a torchmetrics custom feature extractor.

    Pass it as ``feature=`` to ``FrechetInceptionDistance`` / ``KernelInceptionDistance`` (mode
    ``"features"``) or ``InceptionScore`` (mode ``"logits"``). torchmetrics hands a custom module the
    images unchanged (FID/KID) or, for IS with ``normalize=True``, converted to uint8 [0, 255]; so:

    * uint8 input is read as [0, 255] (torchmetrics' default ``normalize=False`` convention);
    * float input is read as [0, 1] (``float_range="unit"``, torchmetrics' ``normalize=True``
      convention) or as [-1, 1] (``float_range="symmetric"``, the raw generator output);
    * 1 or 3 channels: 3 channels are averaged back to grayscale. Any H, W.

    ``num_features`` is set, so torchmetrics does not probe the module with a dummy image.
    The module always stays in eval mode and its parameters are frozen.

    Args:
        mode: ``"features"`` (B, feature_dim) for FID/KID, ``"logits"`` (B, 10) for IS.
        classifier: The classifier to wrap; defaults to :func:`load_digits_classifier`.
        float_range: How float inputs are scaled: ``"unit"`` for [0, 1], ``"symmetric"`` for [-1, 1].
    """

    def __init__(
        self,
        mode: Literal["features", "logits"] = "features",
        classifier: DigitsClassifier | None = None,
        float_range: Literal["unit", "symmetric"] = "unit",
    ) -> None:
        super().__init__()
        if mode not in ("features", "logits"):
            raise ValueError(f"mode must be 'features' or 'logits', got {mode!r}")
        if float_range not in ("unit", "symmetric"):
            raise ValueError(f"float_range must be 'unit' or 'symmetric', got {float_range!r}")
        self.classifier = load_digits_classifier() if classifier is None else classifier
        self.classifier.eval().requires_grad_(False)
        self.mode = mode
        self.float_range = float_range
        self.num_features = self.classifier.feature_dim if mode == "features" else self.classifier.num_classes

    def train(self, mode: bool = True) -> DigitsFeatureExtractor:
        """Stay in eval mode whatever is asked (as torchmetrics' own Inception wrapper does)."""
        return super().train(False)

    def to_model_input(self, imgs: Tensor) -> Tensor:
        """Convert (B, 1|3, H, W) uint8 or float images to (B, 1, H, W) float in [-1, 1]."""
        if imgs.ndim != 4 or imgs.shape[1] not in (1, 3):
            raise ValueError(f"expected images (B, 1 or 3, H, W), got shape {tuple(imgs.shape)}")
        dtype = self.classifier.head.weight.dtype
        if imgs.dtype == torch.uint8:
            x = imgs.to(dtype) / 127.5 - 1.0
        elif self.float_range == "unit":
            x = imgs.to(dtype) * 2.0 - 1.0
        else:
            x = imgs.to(dtype)
        return x.mean(dim=1, keepdim=True) if x.shape[1] == 3 else x  # (B, 1, H, W)

    def forward(self, imgs: Tensor) -> Tensor:
        """Features (B, feature_dim) or logits (B, 10), depending on ``mode``."""
        x = self.to_model_input(imgs)
        return self.classifier.features(x) if self.mode == "features" else self.classifier.logits(x)


def class_coverage(predictions: Tensor, num_classes: int = NUM_CLASSES, min_fraction: float = 0.01) -> dict:
    """How many classes the generated samples hit, and how far the class histogram is from uniform.

    Args:
        predictions: Logits or probabilities (N, num_classes), or predicted labels (N,).
        num_classes: Number of classes.
        min_fraction: A class is covered when at least this share of the samples is predicted as it
            (default 1%, i.e. a tenth of its share under a uniform 10-class distribution), and at least one.

    Returns:
        Dict with ``classes_covered`` (int), ``kl_from_uniform`` (float, KL(p || uniform) in nats:
        0 for a uniform histogram, log(num_classes) when one class takes all), and ``histogram``
        (list of num_classes shares summing to 1).
    """
    labels = predictions.argmax(dim=1) if predictions.ndim == 2 else predictions
    labels = labels.detach().long().cpu()  # (N,)
    if labels.numel() == 0:
        raise ValueError("class_coverage needs at least one prediction")
    counts = torch.bincount(labels, minlength=num_classes).double()  # (C,)
    p = counts / counts.sum()  # (C,)
    kl = torch.where(p > 0, p * torch.log(p * num_classes), torch.zeros_like(p)).sum()
    return {
        "classes_covered": int(((counts >= 1) & (p >= min_fraction - 1e-12)).sum()),
        "kl_from_uniform": float(kl),
        "histogram": p.tolist(),
    }
