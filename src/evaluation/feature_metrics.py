"""FID, KID, Inception Score and precision/recall fed with features computed beforehand, one pass per image.

The states and their sync across ranks are torchmetrics'; the math is torchmetrics' (FID, KID) or
torch-fidelity's (IS with its seeded shuffle, split boundaries and population std; precision and recall), so the numbers are
those of the reference implementations.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import torch
from torch import Tensor, nn
from torch_fidelity.metric_isc import isc_features_to_metric
from torch_fidelity.metric_prc import calculate_precision_recall_part
from torchmetrics import Metric
from torchmetrics.image.fid import FrechetInceptionDistance
from torchmetrics.image.inception import InceptionScore
from torchmetrics.image.kid import KernelInceptionDistance
from torchmetrics.utilities import dim_zero_cat
from typing_extensions import override

from src.metrics.digits_classifier import class_coverage


class _Precomputed(nn.Module):
    """The identity, posing as a torchmetrics feature extractor: the features are computed beforehand."""

    def __init__(self, num_features: int) -> None:
        super().__init__()
        self.num_features = num_features

    @override
    def forward(self, features: Tensor) -> Tensor:
        return features


class SplitInceptionScore(InceptionScore):
    """torchmetrics' Inception Score state and sync with torch-fidelity's math and splits (``isc_features_to_metric``).

    As torch-fidelity's default (``samples_shuffle=True``, ``rng_seed=2020``), the logits are permuted by
    ``np.random.RandomState(2020)`` before they are split at ``i * N // splits``: with ``sample_bn: batch``
    neighbouring images share batch statistics, and contiguous splits would each hold whole batches. The ranks
    gather in the order of the noise rows, so any world size permutes the same images the same way. The std over
    the splits is the population std (``np.std``) as in Salimans et al. 2016 and torch-fidelity; torchmetrics'
    own compute shuffles with the global RNG, splits with ``chunk`` and takes the sample std (√(10/9) ≈ 5%
    larger for 10 splits).
    """

    #: torch-fidelity's default seed of the permutation before splitting.
    shuffle_seed: int = 2020

    @override
    def compute(self) -> tuple[Tensor, Tensor]:
        """Mean and population std of the Inception Score over the splits."""
        logits = dim_zero_cat(self.features)  # (N, K)
        out = isc_features_to_metric(logits, splits=self.splits, shuffle=True, rng_seed=self.shuffle_seed)
        return torch.tensor(out["inception_score_mean"]), torch.tensor(out["inception_score_std"])


class PrecisionRecall(Metric):
    """Improved precision and recall (Kynkäänniemi et al. 2019) on features, with torch-fidelity's math.

    The feature space is the caller's: :class:`~src.evaluation.ImageQuality` feeds the digits CNN's features,
    Inception's pool3, or VGG-16's fc2 (``precision_recall_features: vgg16``, the paper's space).

    Precision: the share of generated samples inside the k-NN ball (k = ``neighborhood``) of some real sample;
    recall: the share of real samples inside the ball of some generated sample. The features of all ranks are
    gathered before computing (torchmetrics' ``cat`` sync), so the value equals the single-process one. The
    pairwise distances are computed in blocks of ``batch_size`` rows (torch-fidelity's
    ``calculate_precision_recall_part``). The real features are kept across :meth:`reset` like KID's.

    Args:
        neighborhood: k of the k-NN radius (3, as the paper and torch-fidelity).
        batch_size: Rows per block of pairwise distances.
    """

    full_state_update = False
    real_features: list[Tensor]
    fake_features: list[Tensor]

    def __init__(self, neighborhood: int = 3, batch_size: int = 10_000, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.neighborhood, self.batch_size = neighborhood, batch_size
        self.add_state("real_features", [], dist_reduce_fx="cat")
        self.add_state("fake_features", [], dist_reduce_fx="cat")

    @override
    def update(self, features: Tensor, real: bool) -> None:
        """Add features (B, D) of real or generated images."""
        (self.real_features if real else self.fake_features).append(features)

    @override
    def compute(self) -> tuple[Tensor, Tensor]:
        """Precision and recall (NaN when either side has no more than ``neighborhood`` samples)."""
        real, fake = dim_zero_cat(self.real_features), dim_zero_cat(self.fake_features)  # (R, D), (F, D)
        if min(len(real), len(fake)) <= self.neighborhood:
            return torch.tensor(math.nan), torch.tensor(math.nan)
        # torch-fidelity's convention: features_1 generated, features_2 real
        precision, recall = calculate_precision_recall_part(fake, real, self.neighborhood, self.batch_size)
        return torch.tensor(precision), torch.tensor(recall)

    @override
    def reset(self) -> None:
        """Forget the generated features; keep the real ones."""
        real = self._defaults.pop("real_features")
        try:
            super().reset()
        finally:
            self._defaults["real_features"] = real


class ClassCounts(Metric):
    """How many generated images the feature network assigns to each class (argmax of the logits), summed over ranks.

    Args:
        num_classes: Width of the logits.
    """

    full_state_update = False
    counts: Tensor

    def __init__(self, num_classes: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.add_state("counts", torch.zeros(num_classes, dtype=torch.long), dist_reduce_fx="sum")

    @override
    def update(self, logits: Tensor) -> None:
        """Add logits (B, K)."""
        self.counts += torch.bincount(logits.argmax(1), minlength=len(self.counts))

    @override
    def compute(self) -> tuple[Tensor, Tensor]:
        """Classes covered and the KL divergence of the class histogram from uniform (:func:`class_coverage`)."""
        labels = torch.repeat_interleave(torch.arange(len(self.counts)), self.counts.cpu())  # (N,)
        cover = class_coverage(labels, len(self.counts))
        return torch.tensor(float(cover["classes_covered"])), torch.tensor(cover["kl_from_uniform"])


class FeatureMetrics:
    """FID, KID and precision/recall on features, IS on logits, synced across ranks by torchmetrics.

    The real statistics are kept across :meth:`compute` calls (``reset_real_features=False``), so the real
    features are fed once per reference set.

    Args:
        num_features: Width of the feature vectors (FID, KID, precision/recall).
        num_logits: Width of the logits (IS); 0 when the network has none.
        fid: Measure the Fréchet Inception Distance.
        kid: Measure the Kernel Inception Distance over ``kid_subsets`` subsets of ``kid_subset_size``.
        inception_score: Measure the Inception Score over ``is_splits`` splits.
        precision_recall: Measure improved precision and recall (:class:`PrecisionRecall`).
        class_coverage: Count the classes of the generated images from the logits (:class:`ClassCounts`).
        kid_subsets: Number of random subsets KID averages over.
        kid_subset_size: Images per KID subset (capped at compute time to the real and generated counts).
        is_splits: Number of splits of the Inception Score.
        seed: Seed of KID's random subsets.
        prc_from: Where precision/recall's features start in each feature vector
            (:class:`~src.metrics.image_features.PairedFeatures`): FID and KID take the columns before it,
            precision/recall those from it on. ``None``: all of them take the whole vector.
        sync: Gather the states of all ranks in :meth:`compute` (torchmetrics' ``sync_on_compute``); ``False``
            when every rank already holds all the features (the real-against-real floor).
    """

    def __init__(
        self,
        num_features: int,
        num_logits: int,
        fid: bool = True,
        kid: bool = True,
        inception_score: bool = True,
        precision_recall: bool = True,
        class_coverage: bool = False,
        kid_subsets: int = 100,
        kid_subset_size: int = 1000,
        is_splits: int = 10,
        seed: int = 0,
        prc_from: int | None = None,
        sync: bool = True,
    ) -> None:
        self.kid_subset_size, self.seed, self.prc_from = kid_subset_size, seed, prc_from
        kw = {"sync_on_compute": sync}
        self.real_count: int | None = None  # real images fed, over all ranks (the caller sets it)
        self.metrics: dict[str, Any] = {}
        with warnings.catch_warnings():  # KID and IS "will save all extracted features in buffer": we know
            warnings.filterwarnings("ignore", message=".*will save all extracted features.*")
            if fid:
                features = _Precomputed(num_features)
                self.metrics["fid"] = FrechetInceptionDistance(
                    feature=features, reset_real_features=False, **kw
                )
            if kid:
                self.metrics["kid"] = KernelInceptionDistance(
                    feature=_Precomputed(num_features),
                    subsets=kid_subsets,
                    subset_size=kid_subset_size,
                    reset_real_features=False,
                    **kw,
                )
            if inception_score:
                self.metrics["is"] = SplitInceptionScore(
                    feature=_Precomputed(num_logits), splits=is_splits, **kw
                )
            if precision_recall:
                self.metrics["prc"] = PrecisionRecall(**kw)
            if class_coverage:
                self.metrics["classes"] = ClassCounts(num_logits, **kw)
        for metric in self.metrics.values():
            metric.eval()

    @property
    def needs_real(self) -> bool:
        """Whether any metric compares with real images (FID, KID or precision/recall)."""
        return bool({"fid", "kid", "prc"} & set(self.metrics))

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
        """Add a batch: features (B, D) to FID, KID, precision/recall; generated images' logits (B, K) to IS, classes.

        With ``prc_from``, FID and KID take ``features[:, :prc_from]`` and precision/recall the rest.
        """
        split = self.prc_from
        for name in ("fid", "kid", "prc"):
            if name in self.metrics:
                part = (
                    features
                    if split is None
                    else features[:, split:]
                    if name == "prc"
                    else features[:, :split]
                )
                self.metrics[name].update(part, real=real)
        for name in ("is", "classes"):
            if not real and name in self.metrics and logits is not None:
                self.metrics[name].update(logits)

    def compute(self, num_real: int, num_fake: int) -> dict[str, float]:
        """The metrics over all ranks (every rank must call it); then forget the generated images.

        Args:
            num_real: Real images in the reference statistics, over all ranks.
            num_fake: Generated images, over all ranks.

        Returns:
            ``fid``, ``kid``, ``kid_std``, ``is``, ``is_std``, ``precision``, ``recall``, ``classes_covered``,
            ``class_kl`` (those enabled).
        """
        values: dict[str, float] = {}
        # KID draws random subsets: a fixed seed makes them equal on every rank and leaves the global RNG of
        # training untouched.
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
            if "prc" in self.metrics:
                precision, recall = self.metrics["prc"].compute()
                values["precision"], values["recall"] = float(precision), float(recall)
            if "classes" in self.metrics:
                covered, kl = self.metrics["classes"].compute()
                values["classes_covered"], values["class_kl"] = float(covered), float(kl)
        for metric in self.metrics.values():
            metric.reset()  # the real features of FID, KID and precision/recall are kept
        return values
