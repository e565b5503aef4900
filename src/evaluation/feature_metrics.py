"""torchmetrics' FID, KID and Inception Score fed with features computed beforehand, one network pass per image."""

from __future__ import annotations

import warnings
from typing import Any

import torch
from torch import Tensor, nn
from torchmetrics.image.fid import FrechetInceptionDistance
from torchmetrics.image.inception import InceptionScore
from torchmetrics.image.kid import KernelInceptionDistance
from typing_extensions import override


class _Precomputed(nn.Module):
    """The identity, posing as a torchmetrics feature extractor: the features are computed beforehand."""

    def __init__(self, num_features: int) -> None:
        super().__init__()
        self.num_features = num_features

    @override
    def forward(self, features: Tensor) -> Tensor:
        return features


class FeatureMetrics:
    """FID and KID on features, IS on logits, with torchmetrics' math and its sync across ranks.

    The real statistics of FID and KID are kept across :meth:`compute` calls (``reset_real_features=False``),
    so the real features are fed once per run.

    Args:
        num_features: Width of the feature vectors (FID, KID).
        num_logits: Width of the logits (IS); 0 when the network has none.
        fid: Measure the Fréchet Inception Distance.
        kid: Measure the Kernel Inception Distance over ``kid_subsets`` subsets of ``kid_subset_size``.
        inception_score: Measure the Inception Score over ``is_splits`` splits.
        kid_subsets: Number of random subsets KID averages over.
        kid_subset_size: Images per KID subset (capped at compute time to the real and generated counts).
        is_splits: Number of splits of the Inception Score.
        seed: Seed of KID's and IS's random subsets.
    """

    def __init__(
        self,
        num_features: int,
        num_logits: int,
        fid: bool = True,
        kid: bool = True,
        inception_score: bool = True,
        kid_subsets: int = 100,
        kid_subset_size: int = 1000,
        is_splits: int = 10,
        seed: int = 0,
    ) -> None:
        self.kid_subset_size, self.seed = kid_subset_size, seed
        self.metrics: dict[str, Any] = {}
        with warnings.catch_warnings():  # KID and IS "will save all extracted features in buffer": we know
            warnings.filterwarnings("ignore", message=".*will save all extracted features.*")
            if fid:
                features = _Precomputed(num_features)
                self.metrics["fid"] = FrechetInceptionDistance(feature=features, reset_real_features=False)
            if kid:
                self.metrics["kid"] = KernelInceptionDistance(
                    feature=_Precomputed(num_features),
                    subsets=kid_subsets,
                    subset_size=kid_subset_size,
                    reset_real_features=False,
                )
            if inception_score:
                self.metrics["is"] = InceptionScore(feature=_Precomputed(num_logits), splits=is_splits)
        for metric in self.metrics.values():
            metric.eval()

    @property
    def needs_real(self) -> bool:
        """Whether any metric compares with real images (FID or KID)."""
        return bool({"fid", "kid"} & set(self.metrics))

    @property
    def device(self) -> torch.device:
        """Where the metric states live."""
        return next(iter(self.metrics.values())).device if self.metrics else torch.device("cpu")

    def to(self, device: torch.device) -> FeatureMetrics:
        """Move the metric states to ``device``."""
        for metric in self.metrics.values():
            metric.to(device)
        return self

    def update(self, features: Tensor, logits: Tensor | None, real: bool) -> None:
        """Add a batch: features (B, D) to FID and KID, and for generated images logits (B, K) to IS."""
        for name in ("fid", "kid"):
            if name in self.metrics:
                self.metrics[name].update(features, real=real)
        if not real and "is" in self.metrics and logits is not None:
            self.metrics["is"].update(logits)

    def compute(self, num_real: int, num_fake: int) -> dict[str, float]:
        """The metrics over all ranks (every rank must call it); then forget the generated images.

        Args:
            num_real: Real images in the reference statistics, over all ranks.
            num_fake: Generated images, over all ranks.

        Returns:
            ``fid``, ``kid``, ``kid_std``, ``is``, ``is_std`` (those enabled).
        """
        values: dict[str, float] = {}
        # KID and IS draw random subsets: a fixed seed makes them equal on every rank and leaves the global
        # RNG of training untouched.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            if "fid" in self.metrics:
                values["fid"] = float(self.metrics["fid"].compute())
            if "kid" in self.metrics:
                kid = self.metrics["kid"]
                kid.subset_size = min(self.kid_subset_size, num_real, num_fake)
                mean, std = kid.compute()
                values["kid"], values["kid_std"] = float(mean), float(std)
            if "is" in self.metrics:
                mean, std = self.metrics["is"].compute()
                values["is"], values["is_std"] = float(mean), float(std)
        for metric in self.metrics.values():
            metric.reset()  # the real statistics of FID and KID are kept
        return values
