"""FID, Inception Score, KID and precision/recall of generated images, during training and at test time.

The schedule and logging are :class:`~src.evaluation.schedule.ScheduledEvaluation`'s, the metric math
:class:`~src.evaluation.feature_metrics.FeatureMetrics`' (torchmetrics and torch-fidelity on precomputed
features); the real images come from the datamodule (:mod:`src.evaluation.real_images`) and their features are
cached by :mod:`src.evaluation.feature_cache`.
"""

from __future__ import annotations

import time
from pathlib import Path

import lightning.pytorch as pl
import torch
from torch import Tensor
from tqdm.auto import tqdm
from typing_extensions import override

from src.evaluation import real_images
from src.evaluation.feature_metrics import FeatureMetrics
from src.evaluation.real_reference import RealReference
from src.evaluation.schedule import ScheduledEvaluation
from src.metrics.image_features import FeatureNet, build_feature_net, to_uint8


class ImageQuality(RealReference, ScheduledEvaluation):
    """Logs ``{val,test}/fid``, ``is``, ``is_std``, ``kid``, ``kid_std``, ``precision``, ``recall`` (+ digits coverage).

    When it runs: see :class:`~src.evaluation.schedule.ScheduledEvaluation`.

    What it measures: ``num_samples`` generated images (``test_num_samples`` at test time) against ``num_real``
    real images of ``real_split``: torchmetrics' FID and KID; torch-fidelity's Inception Score (its seeded
    shuffle, splits and population std ``np.std``) and improved precision/recall (Kynkäänniemi et al. 2019,
    k = 3). Feature spaces (:mod:`src.metrics.image_features`): every metric uses ``feature_extractor``'s
    (Inception pool3 or the digits CNN), except precision/recall with ``precision_recall_features: vgg16`` (the
    VGG-16 fc2 space of their paper and of torch-fidelity's ``prc``); each image goes through each network once.
    Generated images come from ``pl_module.sample(noise=...)`` (the EMA generator when there is one) with noise
    (and, when conditional, uniform classes) from a generator seeded by ``seed``, independent of the device
    count and of the training RNG. The real images are a random subset seeded by ``seed``
    (``datamodule.reference_images``: uint8, never augmented); their features are cached on disk under a hash
    of the images. Generated images become uint8 as a PNG would store them, ``round((x + 1) * 127.5)`` (with
    the datamodule's ``dequantize: true``, the released code's inverse ``floor((x + 1) * 255.99 / 2)``);
    grayscale is replicated to RGB, and the networks resize inside as torch-fidelity does.

    ``floor_draws > 0`` also logs what real data scores at the same sample sizes (``fid_floor``,
    ``fid_floor_std``, ``precision_floor``, ...: :mod:`src.evaluation.real_floor`); FID is biased by both
    counts, so compare a FID only with the floor at its own sizes.

    Held out at test time: ``test`` draws its noise, its real subset and KID's subsets from ``test_seed``, not
    from the ``seed`` of the validations that chose the best checkpoint (when ``num_real`` covers the whole
    split, both use all of it).

    Under DDP every rank generates ``num_samples / world_size`` images and features its share of the real ones;
    torchmetrics gathers the states in ``compute()``, which every rank calls, so all ranks log the same value.

    Paper-comparable Inception numbers (CIFAR-10) use 50,000 generated against the 50,000 training images
    (``test_num_samples=50000``, ``num_real=50000``, as configs/cifar10.yaml); fewer bias FID upward. IS uses
    10 splits (Salimans et al. 2016); KID is unbiased (Bińkowski et al. 2018). FIDs on ``digits`` features are
    only comparable among themselves.

    Args:
        fid: Measure the Fréchet Inception Distance (logged as ``fid``).
        inception_score: Measure the Inception Score (``is`` and ``is_std`` over ``is_splits`` splits).
        kid: Measure the Kernel Inception Distance (``kid`` and ``kid_std`` over ``kid_subsets`` subsets).
        precision_recall: Measure improved precision and recall (``precision``, ``recall``).
        num_samples: Generated images per evaluation during fit/validate, over all ranks.
        test_num_samples: Generated images at test time; ``None`` uses ``num_samples``.
        num_real: Real images for the reference statistics; ``None`` uses ``num_samples`` (capped to the split).
        real_split: The datamodule split the real images come from: ``train``, ``val`` or ``test``.
        every_n_epochs: Evaluate every this many epochs during fit (on validation epochs).
        batch_size: Images per generator/feature-network batch, per rank.
        feature_extractor: ``inception`` (torch-fidelity's Inception-v3, downloaded once), ``digits`` (the
            offline digits classifier: FID/KID on its features, IS on its logits) or a
            :class:`~src.metrics.image_features.FeatureNet` class path.
        feature_extractor_weights_path: A local weights file for the feature network, e.g. a copy of
            torch-fidelity's ``weights-inception-2015-12-05-6726825d.pth`` on clusters without internet.
        precision_recall_features: The feature space of precision and recall: ``None``, that of
            ``feature_extractor``; ``vgg16`` (VGG-16 fc2, the space of their paper and of torch-fidelity's
            ``prc``) or another feature network's name or class path. Each image goes through both once.
        precision_recall_weights_path: A local weights file for ``precision_recall_features``, e.g. a copy of
            torchvision's ``vgg16-397923af.pth``.
        class_coverage: Log ``classes_covered`` and ``class_kl`` (KL of the predicted class histogram from
            uniform) from the feature network's logits; ``None`` turns it on for ``digits`` only.
        kid_subsets: Number of random subsets KID averages over.
        kid_subset_size: Images per KID subset (capped to the numbers of real and generated images).
        is_splits: Number of splits of the Inception Score (with 1, ``is_std`` is 0).
        seed: Seed of the generated noise, of the real-image subset and of KID's random subsets (validation).
        test_seed: The same seeds at test time; ``None``: ``seed + 1000``.
        cache_dir: Folder of the real-feature cache; ``None`` uses ``<logger save_dir>/feature_cache``.
        cache_real_features: Read and write the real-feature cache.
        progress: Show a progress bar while generating (rank zero).
        floor_draws: Real-against-real draws of the floor logged beside the metrics (at least 2 for a std);
            0 logs none. Every rank features all the real images once (cached like the reference features).
    """

    prog_bar_metric = "fid"

    def __init__(
        self,
        fid: bool = True,
        inception_score: bool = True,
        kid: bool = True,
        precision_recall: bool = True,
        num_samples: int = 10_000,
        test_num_samples: int | None = None,
        num_real: int | None = None,
        real_split: str = "train",
        every_n_epochs: int = 1,
        batch_size: int = 200,
        feature_extractor: str = "inception",
        feature_extractor_weights_path: str | None = None,
        precision_recall_features: str | None = None,
        precision_recall_weights_path: str | None = None,
        class_coverage: bool | None = None,
        kid_subsets: int = 100,
        kid_subset_size: int = 1000,
        is_splits: int = 10,
        seed: int = 0,
        test_seed: int | None = None,
        cache_dir: str | None = None,
        cache_real_features: bool = True,
        progress: bool = False,
        floor_draws: int = 0,
    ) -> None:
        for option, value, least in (
            ("num_samples", num_samples, 2),
            ("test_num_samples", test_num_samples, 2),
            ("num_real", num_real, 2),
            ("batch_size", batch_size, 1),
            ("kid_subsets", kid_subsets, 1),
            ("kid_subset_size", kid_subset_size, 1),
            ("is_splits", is_splits, 1),
            ("floor_draws", floor_draws, 0),
        ):
            if value is not None and value < least:
                raise ValueError(f"ImageQuality {option} must be >= {least}, got {option}={value}")
        super().__init__(every_n_epochs)
        if real_split not in real_images.SPLITS:
            raise ValueError(
                f"ImageQuality real_split must be one of {real_images.SPLITS}, got real_split={real_split!r}"
            )
        if not (fid or inception_score or kid or precision_recall or class_coverage):
            raise ValueError(
                "ImageQuality has nothing to measure: set fid, inception_score, kid or precision_recall to true"
            )
        self.fid, self.inception_score, self.kid = fid, inception_score, kid
        self.precision_recall = precision_recall
        self.num_samples, self.test_num_samples, self.num_real = num_samples, test_num_samples, num_real
        self.real_split, self.batch_size = real_split, batch_size
        self.feature_extractor = feature_extractor
        self.feature_extractor_weights_path = feature_extractor_weights_path
        prc_features = precision_recall_features if precision_recall else None
        self.nets = (
            feature_extractor,
            feature_extractor_weights_path,
            prc_features,
            precision_recall_weights_path,
        )
        self.class_coverage = feature_extractor == "digits" if class_coverage is None else class_coverage
        self.kid_subsets, self.kid_subset_size, self.is_splits = kid_subsets, kid_subset_size, is_splits
        self.seed, self.test_seed = seed, seed + 1000 if test_seed is None else test_seed
        self.cache_dir, self.cache_real_features, self.progress = cache_dir, cache_real_features, progress
        self.floor_draws = floor_draws
        self.floors: dict[tuple[str, int, int], dict[str, float]] = {}  # (stage, generated, real) -> floor
        self.net: FeatureNet | None = None
        self.metrics: dict[str, FeatureMetrics] = {}  # per stage ("val", "test"): its own real statistics
        self.real_count = 0  # real images in the last prepared reference statistics, over all ranks
        self.cache_path: Path | None = None  # this rank's last real-feature cache file
        self.dequantized = False  # the datamodule dequantises its training images (data.dequantize)

    # ------------------------------------------------------------------------------------------- setup
    @override
    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if self.net is not None:
            return
        shape = getattr(trainer.datamodule, "data_shape", None)
        if shape is not None and len(shape) != 3:
            raise ValueError(
                f"ImageQuality needs image data (C, H, W), but the datamodule's data_shape is {tuple(shape)}; "
                "for 2-D toy data use src.evaluation.ToyMetrics instead (as configs/toy.yaml does: "
                "--config configs/toy.yaml)"
            )
        # Local rank zero first: it downloads the weights into the cache once, the others then read them.
        if trainer.local_rank == 0:
            self.net = build_feature_net(*self.nets)
        trainer.strategy.barrier("image_quality_feature_net")
        if trainer.local_rank != 0:
            self.net = build_feature_net(*self.nets)
        for option in ("class_coverage", "inception_score"):
            if getattr(self, option) and not self.net.num_logits:
                hint = "; set inception_score: false" if option == "inception_score" else ""
                raise ValueError(
                    f"{option} needs logits, and feature_extractor={self.feature_extractor!r} has none{hint}"
                )

    def stage_metrics(self, stage: str) -> FeatureMetrics:
        """The metrics of ``stage`` (``val`` or ``test``), each with its own real statistics and seed."""
        assert self.net is not None
        if stage not in self.metrics:
            split = self.prc_from
            self.metrics[stage] = FeatureMetrics(
                self.net.num_features if split is None else split,
                self.net.num_logits,
                fid=self.fid,
                kid=self.kid,
                inception_score=self.inception_score,
                precision_recall=self.precision_recall,
                class_coverage=self.class_coverage,
                kid_subsets=self.kid_subsets,
                kid_subset_size=self.kid_subset_size,
                is_splits=self.is_splits,
                seed=self.stage_seed(stage),
                prc_from=split,
            )
        return self.metrics[stage]

    def stage_seed(self, stage: str) -> int:
        """The seed of the noise, real subset and KID subsets: ``test_seed`` at test time, else ``seed``."""
        return self.test_seed if stage == "test" else self.seed

    # -------------------------------------------------------------------------------------- evaluation
    @override
    def measure(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str = "val"
    ) -> dict[str, float]:
        """Generate this rank's share of the images and compute the metrics over all ranks.

        ``stage="test"`` generates ``test_num_samples`` images (``num_samples`` when unset) from ``test_seed``,
        else ``num_samples`` from ``seed``. Runs outside inference mode (under ``no_grad``):
        ``validate``/``test`` run their hooks in inference mode, and metric states made there would be
        inference tensors that a later ``fit`` could not update in place.

        Args:
            trainer: The trainer (its strategy gives rank, world size and device).
            pl_module: A module with ``latent_dim`` and ``sample(noise=...)`` returning images in [-1, 1].
            stage: ``"val"`` or ``"test"``.

        Returns:
            ``fid``, ``is``, ``is_std``, ``kid``, ``kid_std``, ``precision``, ``recall``, ``classes_covered``,
            ``class_kl`` (those enabled).
        """
        stage = "test" if stage == "test" else "val"
        num_samples = (self.test_num_samples or self.num_samples) if stage == "test" else self.num_samples
        with torch.inference_mode(False), torch.no_grad():
            return self._measure(trainer, pl_module, num_samples, stage)

    def _measure(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, num_samples: int, stage: str
    ) -> dict[str, float]:
        if self.net is None:
            self.setup(trainer, pl_module, "validate")
        assert self.net is not None
        start = time.perf_counter()
        device = pl_module.device
        self.net.to(device)
        metrics = self.stage_metrics(stage).to(device)
        self.prepare_real(trainer, stage)
        rank, world = trainer.global_rank, trainer.world_size
        self.dequantized = bool(getattr(trainer.datamodule, "dequantize", False))  # generated images only

        g = torch.Generator().manual_seed(self.stage_seed(stage))
        noise = torch.randn(num_samples, pl_module.latent_dim, generator=g)  # (N, Z)
        num_classes = int(getattr(pl_module, "num_classes", 0) or 0)
        # A conditional model gets uniformly drawn classes from the same seeded generator (not the global RNG).
        labels = torch.randint(num_classes, (num_samples,), generator=g) if num_classes else None  # (N,)
        # This rank's rows of the noise: together, the ranks generate the same images for any world size.
        rows = torch.tensor_split(torch.arange(num_samples), world)[rank]
        show = self.progress and rank == 0
        for idx in tqdm(rows.split(self.batch_size), "generating", disable=not show, leave=False):
            extra = {} if labels is None else {"labels": labels[idx].to(device)}
            images = pl_module.sample(noise=noise[idx].to(device), **extra)  # (b, C, H, W) in [-1, 1]
            features, logits = self._features(images, self.dequantized)
            metrics.update(features, logits, real=False)
        values = metrics.compute(self.real_count, num_samples)
        if self.floor_draws:
            values.update(self.floor(trainer, stage, num_samples))
        self.last_duration_s = time.perf_counter() - start
        return values

    def _features(self, images: Tensor, dequantized: bool = False) -> tuple[Tensor, Tensor | None]:
        assert self.net is not None
        features, logits = self.net(to_uint8(images, dequantized))  # (B, D), (B, K)
        return features.float(), None if logits is None else logits.float()
