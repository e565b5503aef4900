"""The real side of :class:`~src.evaluation.image_quality.ImageQuality`: reference features, their cache, the floor.

A mixin: it reads the settings and the feature network of the ``ImageQuality`` it is mixed into (``net``,
``real_split``, ``num_real``, ``num_samples``, ``batch_size``, ``cache_dir``, ``cache_real_features``,
``progress``, ``floor_draws``, the metric switches) and its :meth:`stage_metrics`, :meth:`stage_seed` and
:meth:`_features`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch
from lightning.pytorch.utilities import rank_zero_info
from torch import Tensor
from tqdm.auto import tqdm

from src.evaluation import feature_cache, real_images
from src.evaluation.real_floor import real_floor
from src.metrics.image_features import PairedFeatures


class RealReference:
    """Feeds the real features to the metrics of a stage, caches them on disk, and measures the real floor."""

    net: Any  # the FeatureNet of the mixing class
    real_count: int  # real images in the last prepared reference, over all ranks
    cache_path: Path | None  # this rank's last reference-feature cache file
    floors: dict[tuple[str, int, int], dict[str, float]]  # (stage, generated, real) -> the floor

    @property
    def prc_from(self) -> int | None:
        """Where precision/recall's columns start in the features (paired features), else ``None``."""
        return self.net.split if isinstance(self.net, PairedFeatures) else None

    def prepare_real(self, trainer: pl.Trainer, stage: str = "val") -> None:
        """Feed this rank's share of the real features of ``stage`` (from the cache when there), once per stage.

        The real images come from ``datamodule.reference_images(real_split, n, seed)`` (uint8, never
        augmented); every rank loads all of them, hashes them for the cache key and keeps its share.
        """
        assert self.net is not None
        metrics = self.stage_metrics(stage)
        if metrics.real_count is not None or not metrics.needs_real:
            self.real_count = metrics.real_count or 0
            return
        images = real_images.reference_images(
            trainer.datamodule, self.real_split, self.num_real or self.num_samples, self.stage_seed(stage)
        )  # (N, C, H, W) uint8, the same on every rank
        if self.num_real is not None and len(images) < self.num_real:
            rank_zero_info(
                f"ImageQuality: the {self.real_split} split has {len(images)} images; using all of them as the "
                f"real reference (num_real={self.num_real})"
            )
        if len(images) < 2:
            raise ValueError(
                f"ImageQuality found {len(images)} real image(s) in the {self.real_split} split; it needs at "
                "least 2 (choose another real_split)"
            )
        features = self.cached_features(trainer, images, self.real_split, share=True)
        for block in features.split(self.batch_size * 10):
            metrics.update(block.to(metrics.device), None, real=True)
        self.real_count = metrics.real_count = len(images)  # over all ranks

    def floor(self, trainer: pl.Trainer, stage: str, num_samples: int) -> dict[str, float]:
        """What real data scores at this measurement's sample sizes: ``<metric>_floor`` and ``_floor_std``.

        Once per stage and sample sizes, the same on every rank (no sync): all the datamodule's real images are
        featured (or read from the cache), then split ``floor_draws`` times at random, seeded by the stage's seed.
        """
        key = (stage, num_samples, self.real_count)
        if key not in self.floors:
            images = real_images.all_images(trainer.datamodule)  # (P, C, H, W) uint8
            self.floors[key] = real_floor(
                self.cached_features(trainer, images, "all", share=False),
                self.real_count,
                num_samples,
                self.floor_draws,
                self.stage_seed(stage),
                fid=self.fid,
                kid=self.kid,
                precision_recall=self.precision_recall,
                kid_subsets=self.kid_subsets,
                kid_subset_size=self.kid_subset_size,
                prc_from=self.prc_from,
            )
        return self.floors[key]

    def cached_features(self, trainer: pl.Trainer, images: Tensor, split: str, share: bool) -> Tensor:
        """Features (N, D) of uint8 ``images`` (this rank's share when ``share``), from the disk cache when there."""
        assert self.net is not None
        key = feature_cache.cache_key(
            trainer, real_images.fingerprint(images), split, len(images), self.net.identity
        )
        root = self.cache_dir or feature_cache.default_cache_dir(trainer)
        path = feature_cache.cache_file(root, key) if self.cache_real_features else None
        if share:
            self.cache_path = path
        features = None if path is None else feature_cache.load_features(path)
        if features is None:
            rank, world = trainer.global_rank, trainer.world_size
            part = images.tensor_split(world)[rank] if share else images
            features = self.real_features(part, trainer.strategy.root_device, self.progress and rank == 0)
            if path is not None:
                feature_cache.save_features(path, features, key)
        return features

    def real_features(self, images: Tensor, device: torch.device, progress: bool = False) -> Tensor:
        """Features (N, D) on the CPU of uint8 images (N, C, H, W), in batches of ``batch_size``."""
        assert self.net is not None
        batches = tqdm(images.split(self.batch_size), "real features", disable=not progress, leave=False)
        chunks = [self._features(batch.to(device))[0].cpu() for batch in batches]
        return torch.cat(chunks) if chunks else torch.zeros(0, self.net.num_features)
