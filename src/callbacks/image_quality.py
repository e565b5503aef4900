"""FID, Inception Score and KID of generated images, measured during training and at test time.

The metric math is torchmetrics' (``FrechetInceptionDistance``, ``InceptionScore``,
``KernelInceptionDistance``); the feature networks are torch-fidelity's Inception-v3 or the offline digits
classifier (:mod:`src.metrics.image_features`). Each image goes through the feature network once, and its
features and logits feed all three metrics.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.trainer.states import TrainerFn
from lightning.pytorch.utilities import rank_zero_info, rank_zero_warn
from torch import Tensor, nn
from torch.utils.data import DataLoader, IterableDataset, Subset
from torchmetrics.image.fid import FrechetInceptionDistance
from torchmetrics.image.inception import InceptionScore
from torchmetrics.image.kid import KernelInceptionDistance
from typing_extensions import override

from src.metrics.digits_classifier import class_coverage
from src.metrics.image_features import FeatureNet, build_feature_net, to_uint8

SPLITS = ("train", "val", "test")
CACHE_FORMAT = 1


class _Precomputed(nn.Module):
    """The identity, posing as a torchmetrics feature extractor: the features are computed beforehand."""

    def __init__(self, num_features: int) -> None:
        super().__init__()
        self.num_features = num_features

    @override
    def forward(self, features: Tensor) -> Tensor:
        return features


class ImageQuality(Callback):
    """Logs ``{val,test}/fid``, ``/is``, ``/is_std``, ``/kid``, ``/kid_std`` (and class coverage for digits).

    When it runs:

    * in ``fit``, at the end of validation on the first validation of the run, then every ``every_n_epochs``
      epochs, and on the last epoch; so ``ModelCheckpoint(monitor="val/fid", mode="min")`` always finds the
      key (between evaluations it sees the last value, which never counts as an improvement);
    * in ``validate`` and ``test``, every time (``test`` uses ``test_num_samples``).

    What it measures: ``num_samples`` generated images against ``num_real`` real images of the datamodule's
    ``real_split``. Generated images come from ``pl_module.sample(noise=...)`` (the EMA generator when the
    model keeps one) with fixed noise (and, for a class-conditional model, uniformly drawn classes) from a
    generator seeded by ``seed``, independent of the device count and of the training RNG, so successive
    evaluations differ only through the generator. The real images are a seeded random subset of the split:
    in-memory splits and map-style datasets are indexed directly (the training loader is not iterated, so its
    shuffling is untouched; the dataset's own transforms apply); other loaders are read from the start.
    Images are converted to uint8 exactly as a PNG would store them (``round((x + 1) * 127.5)``, clamped),
    grayscale is replicated to RGB, and Inception resizes to 299 px inside the network with torch-fidelity's
    TensorFlow-compatible bilinear interpolation (do not resize beforehand).

    The real features are computed once per run and kept (torchmetrics' ``reset_real_features=False``), and
    written to ``cache_dir`` under a key made of the datamodule's class and hyperparameters, the split, the
    number of images, the seed, the feature network (with a hash of its weights) and the rank/world size, so a
    resumed run, ``src.evaluate`` or another run on the same data reuses them.

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
        super().__init__()
        for option, value in (
            ("num_samples", num_samples),
            ("every_n_epochs", every_n_epochs),
            ("batch_size", batch_size),
            ("kid_subsets", kid_subsets),
            ("kid_subset_size", kid_subset_size),
            ("is_splits", is_splits),
        ):
            if value < 1:
                raise ValueError(f"ImageQuality {option} must be >= 1, got {option}={value}")
        for option, value in (("test_num_samples", test_num_samples), ("num_real", num_real)):
            if value is not None and value < 2:
                raise ValueError(f"ImageQuality {option} must be >= 2 or null, got {option}={value}")
        if num_samples < 2:
            raise ValueError(f"ImageQuality num_samples must be >= 2, got num_samples={num_samples}")
        if real_split not in SPLITS:
            raise ValueError(
                f"ImageQuality real_split must be one of {SPLITS}, got real_split={real_split!r}"
            )
        if not (fid or inception_score or kid or class_coverage):
            raise ValueError("ImageQuality has nothing to measure: set fid, inception_score or kid to true")
        self.fid, self.inception_score, self.kid = fid, inception_score, kid
        self.num_samples, self.test_num_samples, self.num_real = num_samples, test_num_samples, num_real
        self.real_split, self.every_n_epochs, self.batch_size = real_split, every_n_epochs, batch_size
        self.feature_extractor = feature_extractor
        self.feature_extractor_weights_path = feature_extractor_weights_path
        self.class_coverage = feature_extractor == "digits" if class_coverage is None else class_coverage
        self.kid_subsets, self.kid_subset_size, self.is_splits = kid_subsets, kid_subset_size, is_splits
        self.seed, self.cache_dir, self.cache_real_features = seed, cache_dir, cache_real_features
        self.progress = progress
        self.net: FeatureNet | None = None
        self.metrics: dict[str, Any] = {}
        self.real_count = 0  # real images in the reference statistics, over all ranks
        self.cache_path: Path | None = None  # this rank's real-feature cache file
        self.last_duration_s = 0.0  # seconds the last evaluation took on this rank
        self._key_fields: dict[str, Any] = {}
        self._real_ready = False
        self._evaluated_in_fit = False
        self._last_eval_step: int | None = None

    # ------------------------------------------------------------------------------------------- setup
    @override
    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if self.net is not None:
            return
        shape = getattr(trainer.datamodule, "data_shape", None)
        if shape is not None and len(shape) != 3:
            raise ValueError(
                f"ImageQuality needs image data (C, H, W), but the datamodule's data_shape is {tuple(shape)}; "
                "for 2-D toy data use src.callbacks.ToyMetrics instead (as configs/toy.yaml does: "
                "--config configs/toy.yaml)"
            )
        # Local rank zero first: it downloads the weights into the cache once, the others then read them.
        if trainer.local_rank == 0:
            self.net = build_feature_net(self.feature_extractor, self.feature_extractor_weights_path)
        trainer.strategy.barrier("image_quality_feature_net")
        if trainer.local_rank != 0:
            self.net = build_feature_net(self.feature_extractor, self.feature_extractor_weights_path)
        if self.class_coverage and not self.net.num_logits:
            raise ValueError(
                f"class_coverage needs logits, and feature_extractor={self.feature_extractor!r} has none"
            )
        if self.inception_score and not self.net.num_logits:
            raise ValueError(
                f"inception_score needs logits, and feature_extractor={self.feature_extractor!r} has none; "
                "set inception_score: false"
            )
        self.metrics = self._make_metrics()

    def _make_metrics(self) -> dict[str, Any]:
        assert self.net is not None
        metrics: dict[str, Any] = {}
        dim = self.net.num_features
        with warnings.catch_warnings():  # KID and IS "will save all extracted features in buffer": we know
            warnings.filterwarnings("ignore", message=".*will save all extracted features.*")
            metrics.update(self._torchmetrics(dim))
        for metric in metrics.values():
            metric.eval()
        return metrics

    def _torchmetrics(self, dim: int) -> dict[str, Any]:
        assert self.net is not None
        metrics: dict[str, Any] = {}
        if self.fid:
            metrics["fid"] = FrechetInceptionDistance(feature=_Precomputed(dim), reset_real_features=False)
        if self.kid:
            metrics["kid"] = KernelInceptionDistance(
                feature=_Precomputed(dim),
                subsets=self.kid_subsets,
                subset_size=self.kid_subset_size,
                reset_real_features=False,
            )
        if self.inception_score:
            metrics["is"] = InceptionScore(feature=_Precomputed(self.net.num_logits), splits=self.is_splits)
        return metrics

    def _to(self, device: torch.device) -> None:
        assert self.net is not None
        self.net.to(device)
        for metric in self.metrics.values():
            metric.to(device)

    # ------------------------------------------------------------------------------------------- hooks
    @override
    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._evaluated_in_fit = False
        self._last_eval_step = None

    def _due(self, trainer: pl.Trainer) -> bool:
        if trainer.sanity_checking:
            return False
        if trainer.state.fn != TrainerFn.FITTING:
            return True
        if self._last_eval_step == trainer.global_step:  # several validations in one epoch, no step between
            return False
        epoch = trainer.current_epoch
        last = (
            trainer.should_stop
            or (
                trainer.max_epochs is not None and trainer.max_epochs >= 0 and epoch + 1 >= trainer.max_epochs
            )
            or (trainer.max_steps >= 0 and trainer.global_step >= trainer.max_steps)
        )
        return not self._evaluated_in_fit or (epoch + 1) % self.every_n_epochs == 0 or last

    @override
    def on_validation_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self._due(trainer):
            self.log_metrics(trainer, pl_module, "val", self.num_samples)
            if trainer.state.fn == TrainerFn.FITTING:
                self._evaluated_in_fit, self._last_eval_step = True, trainer.global_step

    @override
    def on_test_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.log_metrics(trainer, pl_module, "test", self.test_num_samples or self.num_samples)

    # -------------------------------------------------------------------------------------- evaluation
    def log_metrics(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, prefix: str, num_samples: int
    ) -> dict:
        """Measure and ``pl_module.log`` the metrics under ``prefix/``; every rank must call it.

        Returns:
            The measured values as floats.
        """
        values = self.measure(trainer, pl_module, num_samples)
        for name, value in values.items():
            # Every rank holds the same synced value; reduce_fx="max" of equal values is exact and keeps
            # Lightning from warning about unsynced epoch-level values under DDP.
            pl_module.log(
                f"{prefix}/{name}",
                torch.tensor(value, device=pl_module.device, dtype=torch.float32),
                sync_dist=True,
                reduce_fx="max",
                prog_bar=name == "fid",
            )
        return values

    def measure(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, num_samples: int
    ) -> dict[str, float]:
        """Generate this rank's share of ``num_samples`` images and compute the metrics over all ranks.

        Runs outside inference mode (under ``no_grad``): ``validate``/``test`` run their hooks in inference mode,
        and metric states made there would be inference tensors that a later ``fit`` could not update in place.

        Args:
            trainer: The trainer (its strategy gives rank, world size and device).
            pl_module: A module with ``latent_dim`` and ``sample(noise=...)`` returning images in [-1, 1].
            num_samples: Generated images over all ranks.

        Returns:
            ``fid``, ``is``, ``is_std``, ``kid``, ``kid_std``, ``classes_covered``, ``class_kl`` (those enabled).
        """
        with torch.inference_mode(False), torch.no_grad():
            return self._measure(trainer, pl_module, num_samples)

    def _measure(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, num_samples: int
    ) -> dict[str, float]:
        if self.net is None:
            self.setup(trainer, pl_module, "validate")
        start = time.perf_counter()
        device = pl_module.device
        self._to(device)
        self.prepare_real(trainer)
        rank, world = trainer.global_rank, trainer.world_size

        g = torch.Generator().manual_seed(self.seed)
        noise = torch.randn(num_samples, pl_module.latent_dim, generator=g)  # (N, Z)
        num_classes = int(getattr(pl_module, "num_classes", 0) or 0)
        # A conditional model gets uniformly drawn classes from the same seeded generator (not the global RNG).
        labels = torch.randint(num_classes, (num_samples,), generator=g) if num_classes else None  # (N,)
        rows = torch.tensor_split(torch.arange(num_samples), world)[
            rank
        ]  # the same images for any world size
        num_logits = self.net.num_logits if self.net is not None else 0
        counts = torch.zeros(max(num_logits, 1), device=device)
        for idx in _progress(rows.split(self.batch_size), self.progress and rank == 0, "generating"):
            extra = {} if labels is None else {"labels": labels[idx].to(device)}
            images = pl_module.sample(noise=noise[idx].to(device), **extra)  # (b, C, H, W) in [-1, 1]
            features, logits = self._features(images)
            self._update(features, logits, real=False)
            if self.class_coverage:
                counts += torch.bincount(logits.argmax(1), minlength=num_logits).float()

        values = self._compute(num_samples)
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

    def _update(self, features: Tensor, logits: Tensor | None, real: bool) -> None:
        for name in ("fid", "kid"):
            if name in self.metrics:
                self.metrics[name].update(features, real=real)
        if not real and "is" in self.metrics and logits is not None:
            self.metrics["is"].update(logits)

    def _compute(self, num_fake: int) -> dict[str, float]:
        values: dict[str, float] = {}
        # KID and IS draw random subsets: a fixed seed makes them equal on every rank and leaves the global
        # RNG of training untouched.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            if "fid" in self.metrics:
                values["fid"] = float(self.metrics["fid"].compute())
            if "kid" in self.metrics:
                kid = self.metrics["kid"]
                kid.subset_size = min(self.kid_subset_size, self.real_count, num_fake)
                mean, std = kid.compute()
                values["kid"], values["kid_std"] = float(mean), float(std)
            if "is" in self.metrics:
                mean, std = self.metrics["is"].compute()
                values["is"], values["is_std"] = float(mean), float(std)
        for metric in self.metrics.values():
            metric.reset()  # the real statistics of FID and KID are kept
        return values

    # ------------------------------------------------------------------------------------------ real data
    def prepare_real(self, trainer: pl.Trainer) -> None:
        """Compute (or load from the cache) this rank's share of the real features, once per run."""
        if self._real_ready or not ({"fid", "kid"} & set(self.metrics)):
            self._real_ready = True
            return
        datamodule = trainer.datamodule
        if datamodule is None or not hasattr(datamodule, f"{self.real_split}_dataloader"):
            raise ValueError(
                f"ImageQuality takes real images from the datamodule's {self.real_split}_dataloader(), but the "
                "trainer has no such datamodule; pass `datamodule=` to the trainer or change real_split"
            )
        rank, world = trainer.global_rank, trainer.world_size
        loader = _split_loader(datamodule, self.real_split)
        available = _num_images(loader)
        wanted = self.num_real or self.num_samples
        total = wanted if available is None else min(wanted, available)
        if available is not None and available < wanted:
            rank_zero_info(
                f"ImageQuality: the {self.real_split} split has {available} images; using all of them as the "
                f"real reference (asked for {wanted})"
            )
        self.cache_path = self._cache_file(trainer, datamodule, total) if self.cache_real_features else None
        features = None
        if self.cache_path is not None and self.cache_path.is_file():
            features = torch.load(self.cache_path, map_location="cpu", weights_only=True)["features"]
        if features is None:
            device = trainer.strategy.root_device
            chunks = [
                self._features(images.to(device))[0].cpu()
                for images in _progress(
                    _real_batches(loader, total, rank, world, self.batch_size, self.seed),
                    self.progress and rank == 0,
                    "real features",
                )
            ]
            features = torch.cat(chunks) if chunks else torch.zeros(0, self.net.num_features)  # type: ignore[union-attr]
            if self.cache_path is not None:
                _atomic_save({"features": features, "key": self._key_fields}, self.cache_path)
        device = next(iter(self.metrics.values())).device
        for block in features.split(self.batch_size * 10):
            self._update(block.to(device), None, real=True)
        count = torch.tensor(float(len(features)), device=trainer.strategy.root_device)
        self.real_count = int(trainer.strategy.reduce(count, reduce_op="sum").item())  # over all ranks
        if self.real_count < 2:
            raise ValueError(
                f"ImageQuality found {self.real_count} real image(s) in the {self.real_split} split; it needs at "
                "least 2 (choose another real_split)"
            )
        self._real_ready = True

    def _cache_file(self, trainer: pl.Trainer, datamodule: Any, total: int) -> Path:
        assert self.net is not None
        hparams = dict(getattr(datamodule, "hparams", {}) or {})
        self._key_fields = {
            "format": CACHE_FORMAT,
            "datamodule": f"{type(datamodule).__module__}.{type(datamodule).__qualname__}",
            "hparams": {k: hparams[k] for k in sorted(hparams)},
            "data_shape": list(getattr(datamodule, "data_shape", []) or []),
            "split": self.real_split,
            "num_real": total,
            "seed": self.seed,
            "features": self.net.identity,
            "rank": trainer.global_rank,
            "world_size": trainer.world_size,
        }
        key = json.dumps(self._key_fields, sort_keys=True, default=str)
        digest = hashlib.sha1(key.encode()).hexdigest()[:16]
        root = self.cache_dir or os.path.join(_save_dir(trainer), "feature_cache")
        name = f"real-{self.real_split}-{total}-{self.net.identity.split(':')[0]}-{digest}"
        return Path(root) / f"{name}-rank{trainer.global_rank}of{trainer.world_size}.pt"


# ---------------------------------------------------------------------------------------------- helpers
def _progress(items: Any, enabled: bool, desc: str) -> Any:
    if not enabled:
        return items
    from tqdm.auto import tqdm

    return tqdm(items, desc=desc, total=len(items) if hasattr(items, "__len__") else None, leave=False)


def _save_dir(trainer: pl.Trainer) -> str:
    """The logger's root folder (shared by the runs of an experiment), else the trainer's root dir."""
    for logger in trainer.loggers:
        save_dir = getattr(logger, "save_dir", None)
        if save_dir:
            return str(save_dir)
    return trainer.default_root_dir


def _atomic_save(obj: Any, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def _split_loader(datamodule: Any, split: str) -> Any:
    """The datamodule's loader of ``split``, set up for it (setup is idempotent in Lightning datamodules)."""
    datamodule.setup("test" if split == "test" else "fit")
    return getattr(datamodule, f"{split}_dataloader")()


def _num_images(loader: Any) -> int | None:
    images = getattr(loader, "images", None)
    if isinstance(images, Tensor):  # src.data.memory.TensorBatches: the whole split, unsharded
        return len(images)
    dataset = getattr(loader, "dataset", None)
    if dataset is not None and not isinstance(dataset, IterableDataset) and hasattr(dataset, "__len__"):
        return len(dataset)
    return None


def _first(batch: Any) -> Tensor:
    return batch[0] if isinstance(batch, (tuple, list)) else batch


def _real_batches(
    loader: Any, total: int, rank: int, world: int, batch_size: int, seed: int
) -> Iterator[Tensor]:
    """This rank's share of ``total`` real images: a seeded random subset of the split, split across ranks.

    In-memory splits and map-style datasets are indexed directly (the training loader is not iterated, so its
    shuffling state is untouched); other loaders are iterated from the start and must give every rank the
    same images in the same order.
    """
    available = _num_images(loader)
    if available is not None:
        order = torch.randperm(available, generator=torch.Generator().manual_seed(seed))[:total]
        mine = torch.tensor_split(order, world)[rank].sort().values  # (n_rank,)
        images = getattr(loader, "images", None)
        if isinstance(images, Tensor):
            for idx in mine.split(batch_size):
                yield images[idx.to(images.device)]
            return
        subset = DataLoader(
            Subset(loader.dataset, mine.tolist()),
            batch_size=batch_size,
            num_workers=getattr(loader, "num_workers", 0),
            collate_fn=getattr(loader, "collate_fn", None),
        )
        for batch in subset:
            yield _first(batch)
        return
    taken: list[Tensor] = []
    count = 0
    for batch in loader:
        images = _first(batch)
        taken.append(images[: total - count])
        count += len(taken[-1])
        if count >= total:
            break
    if not taken:
        rank_zero_warn("ImageQuality: the real-image loader gave no images")
        return
    mine_images = torch.tensor_split(torch.cat(taken), world)[rank]
    yield from mine_images.split(batch_size)
