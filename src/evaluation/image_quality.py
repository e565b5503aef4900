"""FID, Inception Score and KID of generated images, measured during training and at test time.

The schedule and logging are :class:`~src.evaluation.schedule.ScheduledEvaluation`'s, the metric math
:class:`~src.evaluation.feature_metrics.FeatureMetrics`' (torchmetrics on precomputed features); the real images
come from :mod:`src.evaluation.real_images` and their features are cached by :mod:`src.evaluation.feature_cache`.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch
from torch import Tensor
from typing_extensions import override

from src.evaluation import feature_cache, real_images
from src.evaluation.feature_metrics import FeatureMetrics
from src.evaluation.schedule import ScheduledEvaluation
from src.metrics.digits_classifier import class_coverage
from src.metrics.image_features import FeatureNet, build_feature_net, to_uint8


class ImageQuality(ScheduledEvaluation):
    """Logs ``{val,test}/fid``, ``/is``, ``/is_std``, ``/kid``, ``/kid_std`` (and class coverage for digits).

    When it runs: see :class:`~src.evaluation.schedule.ScheduledEvaluation`; ``test`` uses ``test_num_samples``.

    What it measures: ``num_samples`` generated images against ``num_real`` real images of the datamodule's
    ``real_split``, with torchmetrics' ``FrechetInceptionDistance``, ``InceptionScore`` and
    ``KernelInceptionDistance``. Each image goes through the feature network (torch-fidelity's Inception-v3 or
    the offline digits classifier, :mod:`src.metrics.image_features`) once, and its features and logits feed all
    three metrics. Generated images come from ``pl_module.sample(noise=...)`` (the EMA generator when the model
    keeps one) with fixed noise (and, for a class-conditional model, uniformly drawn classes) from a generator
    seeded by ``seed``, independent of the device count and of the training RNG, so successive evaluations
    differ only through the generator. The real images are a seeded random subset of the split; their features
    are computed once per run (``reset_real_features=False``) and cached on disk. Images are converted to uint8
    exactly as a PNG would store them (``round((x + 1) * 127.5)``, clamped), grayscale is replicated to RGB, and
    Inception resizes to 299 px inside the network with torch-fidelity's TensorFlow-compatible bilinear
    interpolation (do not resize beforehand).

    Under DDP every rank generates ``num_samples / world_size`` images and takes its own share of the real
    images; torchmetrics gathers the states in ``compute()``, which every rank calls, so every rank logs the
    same value (and ``ModelCheckpoint`` decides the same on all of them).

    Paper-comparable Inception numbers (CIFAR-10: Heusel et al. 2017, Gulrajani et al. 2017) use 50,000
    generated images against the 50,000 training images: ``num_samples=10000`` (the default) is cheaper but
    biased upward for FID, so set ``test_num_samples=50000`` and ``num_real=50000`` to report the final number
    in the standard way (configs/cifar10.yaml does). The Inception Score uses 10 splits as in Salimans et al.
    2016; KID is unbiased (Bińkowski et al. 2018). FIDs on the ``digits`` features are on another scale than
    Inception FIDs and only comparable among themselves.

    Args:
        fid: Measure the Fréchet Inception Distance (logged as ``fid``).
        inception_score: Measure the Inception Score (``is`` and ``is_std`` over ``is_splits`` splits).
        kid: Measure the Kernel Inception Distance (``kid`` and ``kid_std`` over ``kid_subsets`` subsets).
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
        class_coverage: Log ``classes_covered`` and ``class_kl`` (KL of the predicted class histogram from
            uniform) from the feature network's logits; ``None`` turns it on for ``digits`` only.
        kid_subsets: Number of random subsets KID averages over.
        kid_subset_size: Images per KID subset (capped to the numbers of real and generated images).
        is_splits: Number of splits of the Inception Score (with 1, ``is_std`` is NaN).
        seed: Seed of the generated noise, of the real-image subset and of KID's and IS's random subsets.
        cache_dir: Folder of the real-feature cache; ``None`` uses ``<logger save_dir>/feature_cache``.
        cache_real_features: Read and write the real-feature cache.
        progress: Show a progress bar while generating (rank zero).
    """

    prog_bar_metric = "fid"

    def __init__(
        self,
        fid: bool = True,
        inception_score: bool = True,
        kid: bool = True,
        num_samples: int = 10_000,
        test_num_samples: int | None = None,
        num_real: int | None = None,
        real_split: str = "train",
        every_n_epochs: int = 1,
        batch_size: int = 200,
        feature_extractor: str = "inception",
        feature_extractor_weights_path: str | None = None,
        class_coverage: bool | None = None,
        kid_subsets: int = 100,
        kid_subset_size: int = 1000,
        is_splits: int = 10,
        seed: int = 0,
        cache_dir: str | None = None,
        cache_real_features: bool = True,
        progress: bool = False,
    ) -> None:
        for option, value, least in (
            ("num_samples", num_samples, 2),
            ("test_num_samples", test_num_samples, 2),
            ("num_real", num_real, 2),
            ("batch_size", batch_size, 1),
            ("kid_subsets", kid_subsets, 1),
            ("kid_subset_size", kid_subset_size, 1),
            ("is_splits", is_splits, 1),
        ):
            if value is not None and value < least:
                raise ValueError(f"ImageQuality {option} must be >= {least}, got {option}={value}")
        super().__init__(every_n_epochs)
        if real_split not in real_images.SPLITS:
            raise ValueError(
                f"ImageQuality real_split must be one of {real_images.SPLITS}, got real_split={real_split!r}"
            )
        if not (fid or inception_score or kid or class_coverage):
            raise ValueError("ImageQuality has nothing to measure: set fid, inception_score or kid to true")
        self.fid, self.inception_score, self.kid = fid, inception_score, kid
        self.num_samples, self.test_num_samples, self.num_real = num_samples, test_num_samples, num_real
        self.real_split, self.batch_size = real_split, batch_size
        self.feature_extractor = feature_extractor
        self.feature_extractor_weights_path = feature_extractor_weights_path
        self.class_coverage = feature_extractor == "digits" if class_coverage is None else class_coverage
        self.kid_subsets, self.kid_subset_size, self.is_splits = kid_subsets, kid_subset_size, is_splits
        self.seed, self.cache_dir, self.cache_real_features = seed, cache_dir, cache_real_features
        self.progress = progress
        self.net: FeatureNet | None = None
        self.metrics: FeatureMetrics | None = None
        self.real_count = 0  # real images in the reference statistics, over all ranks
        self.cache_path: Path | None = None  # this rank's real-feature cache file
        self._real_ready = False

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
            self.net = build_feature_net(self.feature_extractor, self.feature_extractor_weights_path)
        trainer.strategy.barrier("image_quality_feature_net")
        if trainer.local_rank != 0:
            self.net = build_feature_net(self.feature_extractor, self.feature_extractor_weights_path)
        for option in ("class_coverage", "inception_score"):
            if getattr(self, option) and not self.net.num_logits:
                hint = "; set inception_score: false" if option == "inception_score" else ""
                raise ValueError(
                    f"{option} needs logits, and feature_extractor={self.feature_extractor!r} has none{hint}"
                )
        self.metrics = FeatureMetrics(
            self.net.num_features,
            self.net.num_logits,
            fid=self.fid,
            kid=self.kid,
            inception_score=self.inception_score,
            kid_subsets=self.kid_subsets,
            kid_subset_size=self.kid_subset_size,
            is_splits=self.is_splits,
            seed=self.seed,
        )

    # -------------------------------------------------------------------------------------- evaluation
    @override
    def measure(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str = "val"
    ) -> dict[str, float]:
        """Generate this rank's share of the images and compute the metrics over all ranks.

        ``stage="test"`` generates ``test_num_samples`` images (``num_samples`` when unset), else
        ``num_samples``. Runs outside inference mode (under ``no_grad``): ``validate``/``test`` run their hooks
        in inference mode, and metric states made there would be inference tensors that a later ``fit`` could
        not update in place.

        Args:
            trainer: The trainer (its strategy gives rank, world size and device).
            pl_module: A module with ``latent_dim`` and ``sample(noise=...)`` returning images in [-1, 1].
            stage: ``"val"`` or ``"test"``.

        Returns:
            ``fid``, ``is``, ``is_std``, ``kid``, ``kid_std``, ``classes_covered``, ``class_kl`` (those enabled).
        """
        num_samples = (self.test_num_samples or self.num_samples) if stage == "test" else self.num_samples
        with torch.inference_mode(False), torch.no_grad():
            return self._measure(trainer, pl_module, num_samples)

    def _measure(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, num_samples: int
    ) -> dict[str, float]:
        if self.net is None:
            self.setup(trainer, pl_module, "validate")
        assert self.net is not None and self.metrics is not None
        start = time.perf_counter()
        device = pl_module.device
        self.net.to(device)
        self.metrics.to(device)
        self.prepare_real(trainer)
        rank, world = trainer.global_rank, trainer.world_size

        g = torch.Generator().manual_seed(self.seed)
        noise = torch.randn(num_samples, pl_module.latent_dim, generator=g)  # (N, Z)
        num_classes = int(getattr(pl_module, "num_classes", 0) or 0)
        # A conditional model gets uniformly drawn classes from the same seeded generator (not the global RNG).
        labels = torch.randint(num_classes, (num_samples,), generator=g) if num_classes else None  # (N,)
        # This rank's rows of the noise: together, the ranks generate the same images for any world size.
        rows = torch.tensor_split(torch.arange(num_samples), world)[rank]
        num_logits = self.net.num_logits
        counts = torch.zeros(max(num_logits, 1), device=device)
        for idx in _progress(rows.split(self.batch_size), self.progress and rank == 0, "generating"):
            extra = {} if labels is None else {"labels": labels[idx].to(device)}
            images = pl_module.sample(noise=noise[idx].to(device), **extra)  # (b, C, H, W) in [-1, 1]
            features, logits = self._features(images)
            self.metrics.update(features, logits, real=False)
            if self.class_coverage:
                counts += torch.bincount(logits.argmax(1), minlength=num_logits).float()

        values = self.metrics.compute(self.real_count, num_samples)
        if self.class_coverage:
            total = trainer.strategy.reduce(counts, reduce_op="sum").long().cpu()  # (K,)
            cover = class_coverage(torch.repeat_interleave(torch.arange(len(total)), total), len(total))
            values["classes_covered"] = float(cover["classes_covered"])
            values["class_kl"] = float(cover["kl_from_uniform"])
        self.last_duration_s = time.perf_counter() - start
        return values

    def _features(self, images: Tensor) -> tuple[Tensor, Tensor | None]:
        assert self.net is not None
        features, logits = self.net(to_uint8(images))  # (B, D), (B, K)
        return features.float(), None if logits is None else logits.float()

    # ------------------------------------------------------------------------------------------ real data
    def prepare_real(self, trainer: pl.Trainer) -> None:
        """Compute (or load from the cache) this rank's share of the real features, once per run."""
        assert self.net is not None and self.metrics is not None
        if self._real_ready or not self.metrics.needs_real:
            self._real_ready = True
            return
        datamodule = trainer.datamodule
        rank, world = trainer.global_rank, trainer.world_size
        loader, total = real_images.reference_loader(
            datamodule, self.real_split, self.num_real or self.num_samples
        )
        key = feature_cache.cache_key(
            trainer, datamodule, self.real_split, total, self.seed, self.net.identity
        )
        root = self.cache_dir or feature_cache.default_cache_dir(trainer)
        self.cache_path = feature_cache.cache_file(root, key) if self.cache_real_features else None
        features = None if self.cache_path is None else feature_cache.load_features(self.cache_path)
        if features is None:
            device = trainer.strategy.root_device
            batches = real_images.real_batches(loader, total, rank, world, self.batch_size, self.seed)
            chunks = [
                self._features(images.to(device))[0].cpu()
                for images in _progress(batches, self.progress and rank == 0, "real features")
            ]
            features = torch.cat(chunks) if chunks else torch.zeros(0, self.net.num_features)
            if self.cache_path is not None:
                feature_cache.save_features(self.cache_path, features, key)
        for block in features.split(self.batch_size * 10):
            self.metrics.update(block.to(self.metrics.device), None, real=True)
        count = torch.tensor(float(len(features)), device=trainer.strategy.root_device)
        self.real_count = int(trainer.strategy.reduce(count, reduce_op="sum").item())  # over all ranks
        if self.real_count < 2:
            raise ValueError(
                f"ImageQuality found {self.real_count} real image(s) in the {self.real_split} split; it needs at "
                "least 2 (choose another real_split)"
            )
        self._real_ready = True


def _progress(items: Any, enabled: bool, desc: str) -> Any:
    if not enabled:
        return items
    from tqdm.auto import tqdm

    return tqdm(items, desc=desc, total=len(items) if hasattr(items, "__len__") else None, leave=False)
