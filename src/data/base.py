"""The base of the image datamodules: option checks, setup, loaders, the in-memory mode and reference images.

A subclass says where its images come from (:meth:`ImageDataModule.load_splits`, returning datasets of
``(PIL image, target)``) and how to shape them (:meth:`ImageDataModule.geometry`, deterministic PIL
transforms); this base turns them into ``(images in [-1, 1] (B, C, H, W), labels (B,))`` batches, either
through a ``DataLoader`` with workers or, with ``in_memory=True``, from one uint8 tensor on the training device.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections.abc import Callable
from pathlib import Path

import lightning.pytorch as pl
import torch
from lightning.pytorch.utilities import rank_zero_warn
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, Subset
from torchvision.transforms import v2

from src.data.errors import DatasetNotFoundError
from src.data.global_batch import log_global_batch, per_device_batch_size
from src.data.memory import TensorBatches
from src.data.splits import FALLBACK, SPLITS, holdout
from src.data.transforms import BatchTransform, ImageSplit, dequantize, to_signed_unit


def available_cpus() -> int:
    """CPU cores this process may use."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


class ImageDataModule(pl.LightningDataModule, ABC):
    """Base of the image datamodules: batches ``(images (B, C, H, W) in [-1, 1], labels (B,))``.

    Subclasses implement :meth:`load_splits`, :meth:`geometry` and :attr:`data_shape`, and may override
    :meth:`prepare_data` to download. This class checks the options, builds the loaders (DataLoader or the
    in-memory :class:`~src.data.memory.TensorBatches`), refuses to train on nothing and gives the real images
    that metrics compare against (:meth:`reference_images`). A subclass takes its own arguments plus
    ``**kwargs``, which it passes on to this constructor (the CLI lists them as the subclass's options); the
    saved hyperparameters are the arguments of both.

    Args:
        data_dir: Root folder of the data.
        batch_size: Images per batch, per device (the global batch is ``batch_size * devices``).
        global_batch_size: Images per batch over all devices, split across them (it must divide evenly);
            replaces ``batch_size`` when set. The run prints the global batch it uses.
        val_fraction: Share of the training images held out for validation (seeded by ``seed``).
        seed: Seed of the held-out splits and of the in-memory shuffling.
        flip: Random horizontal flips of training images.
        in_memory: Keep the whole dataset as one uint8 tensor on the training device and slice batches from
            it (no workers); for small datasets.
        num_workers: DataLoader workers; ``None``: 0 on the CPU, else ``min(8, cores per device - 1)``.
        pin_memory: Pinned host memory for faster copies; ``None``: on when training on a CUDA device.
        persistent_workers: Keep workers alive between epochs; ``None``: on when there are workers.
        dequantize: Training images become ``2·(x/256 - 0.5) + U[0, 1/128)`` instead of ``x/127.5 - 1``, as the
            paper's CIFAR-10 code (:func:`~src.data.transforms.dequantize`); validation, test and the metrics'
            reference images are never dequantised.
    """

    num_classes: int = 0
    dataset_name: str = "images"

    def __init__(
        self,
        data_dir: str = "data/",
        batch_size: int = 64,
        val_fraction: float = 0.1,
        seed: int = 0,
        flip: bool = False,
        in_memory: bool = False,
        num_workers: int | None = None,
        pin_memory: bool | None = None,
        persistent_workers: bool | None = None,
        global_batch_size: int | None = None,
        dequantize: bool = False,
    ) -> None:
        super().__init__()
        # Collects the arguments of this constructor and of the subclass constructors that called it.
        self.save_hyperparameters()
        if batch_size < 1:
            raise ValueError(f"data.batch_size must be >= 1, got batch_size={batch_size}")
        if not 0 <= val_fraction < 1:
            raise ValueError(f"data.val_fraction must be in [0, 1), got val_fraction={val_fraction}")
        if num_workers is not None and num_workers < 0:
            raise ValueError(
                f"data.num_workers must be >= 0 or null (automatic), got num_workers={num_workers}"
            )
        if in_memory and num_workers:
            rank_zero_warn(
                f"data.in_memory=true slices batches from one tensor with no workers; "
                f"data.num_workers={num_workers} only speeds up loading the dataset once in setup."
            )
        self.data_dir = Path(data_dir).expanduser()
        self.batch_size, self.val_fraction, self.seed = batch_size, val_fraction, seed
        self.flip, self.in_memory, self.dequantize = flip, in_memory, dequantize
        self.global_batch_size, self._batch_world, self._batch_size = global_batch_size, 0, batch_size
        per_device_batch_size(batch_size, global_batch_size, 1)  # fails early on a global batch < 1
        self.num_workers, self.pin_memory, self.persistent_workers = (
            num_workers,
            pin_memory,
            persistent_workers,
        )
        self.datasets: dict[str, ImageSplit] = {}
        self.tensors: dict[str, tuple[Tensor, Tensor]] = {}
        self._train_batches: TensorBatches | None = None
        self._loader_state: dict = {}

    # ------------------------------------------------------------------------------- subclass interface
    @property
    @abstractmethod
    def data_shape(self) -> tuple[int, int, int]:
        """Shape (C, H, W) of one image, linked into the networks."""

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """Alias of :attr:`data_shape`."""
        return self.data_shape

    @abstractmethod
    def load_splits(self) -> dict[str, Dataset]:
        """Datasets of ``(PIL image, target)`` for the keys ``train``, ``val`` and ``test`` (may be empty)."""

    @abstractmethod
    def geometry(self) -> list[Callable]:
        """Deterministic PIL transforms (mode, crop, resize, pad) that give images of :attr:`data_shape`."""

    def uint8_split(self, dataset: Dataset) -> tuple[Tensor, Tensor] | None:
        """Optional fast path of the in-memory mode: a whole split read straight from the dataset's arrays.

        Returns uint8 images (N, C, H, W) and labels (N,) equal to decoding each image through
        :meth:`uint8_transform`, or ``None`` (the default) to decode image by image.
        """
        return None

    # ----------------------------------------------------------------------------------------- helpers
    def holdout(self, dataset: Dataset, *fractions: float) -> list[Subset]:
        """Split ``dataset`` into the rest and one part per fraction, seeded by ``seed`` (:func:`holdout`)."""
        return holdout(dataset, fractions, self.seed)

    def image_transform(self, train: bool) -> v2.Compose:
        """PIL image -> float tensor (C, H, W) in [-1, 1]: geometry, then (for training) random flips."""
        to_float = dequantize if train and self.dequantize else to_signed_unit
        steps = [*self.geometry(), v2.PILToTensor(), to_float]
        if train and self.flip:
            steps.append(v2.RandomHorizontalFlip())
        return v2.Compose(steps)

    def uint8_transform(self) -> v2.Compose:
        """PIL image -> uint8 tensor (C, H, W): the deterministic part, stored by the in-memory mode."""
        return v2.Compose([*self.geometry(), v2.PILToTensor()])

    def _device(self) -> torch.device:
        return self.trainer.strategy.root_device if self.trainer is not None else torch.device("cpu")

    def _world(self) -> tuple[int, int]:
        return (self.trainer.global_rank, self.trainer.world_size) if self.trainer is not None else (0, 1)

    def resolved_num_workers(self) -> int:
        """``num_workers``, or its automatic value: 0 on the CPU, ``min(8, cores per device - 1)`` otherwise."""
        if self.num_workers is not None:
            return self.num_workers
        if self._device().type == "cpu":
            return 0
        local_devices = max(1, self.trainer.num_devices if self.trainer is not None else 1)
        return max(0, min(8, available_cpus() // local_devices - 1))

    def resolved_pin_memory(self) -> bool:
        """``pin_memory``, or on when training on a CUDA device."""
        return self.pin_memory if self.pin_memory is not None else self._device().type == "cuda"

    # ----------------------------------------------------------------------------------------- setup
    def setup(self, stage: str | None = None) -> None:
        """Load the splits (once); in the in-memory mode, decode every image into one uint8 tensor per split."""
        _, world = self._world()
        if world != self._batch_world:  # split data.global_batch_size across the devices, and say so
            self.batch_size = per_device_batch_size(self._batch_size, self.global_batch_size, world)
            log_global_batch(self.dataset_name, self.batch_size, world)
            self._batch_world = world
        if self.datasets:
            return
        raw = self.load_splits()
        missing = [name for name in SPLITS if name not in raw]
        if missing:
            raise KeyError(f"{type(self).__name__}.load_splits() returned no {', '.join(missing)} split")
        num_train = len(raw["train"])  # type: ignore[arg-type]
        if num_train == 0:
            raise DatasetNotFoundError(
                f"{self.dataset_name}: the training split under {self.data_dir} is empty; nothing to train on."
            )
        if num_train < self.batch_size * world:
            raise ValueError(
                f"data.batch_size={self.batch_size} (per device, {world} device(s)) is larger than the "
                f"{num_train} training images of {self.dataset_name}: every batch would be dropped. "
                f"Lower --data.batch_size or add images."
            )
        for name in SPLITS:
            self.datasets[name] = ImageSplit(raw[name], self.image_transform(train=name == "train"))
        if self.in_memory:
            for name in SPLITS:
                fast = self.uint8_split(raw[name])
                self.tensors[name] = fast or self._stack(ImageSplit(raw[name], self.uint8_transform()))

    def _stack(self, dataset: ImageSplit) -> tuple[Tensor, Tensor]:
        """Decode a whole split into uint8 images (N, C, H, W) and labels (N,)."""
        if len(dataset) == 0:
            return torch.zeros(0, *self.data_shape, dtype=torch.uint8), torch.zeros(0, dtype=torch.long)
        images, labels = [], []
        loader = DataLoader(dataset, batch_size=512, num_workers=self.resolved_num_workers())
        for x, y in loader:
            images.append(x)  # (b, C, H, W) uint8
            labels.append(y)  # (b,)
        return torch.cat(images), torch.cat(labels).long()

    def reference_images(self, split: str, n: int | None = None, seed: int = 0) -> Tensor:
        """Real images of a split for metrics to compare against: uint8 (N, C, H, W), never augmented.

        The in-memory mode slices its stored tensor; the DataLoader mode decodes the chosen images through
        the deterministic :meth:`uint8_transform`. Both give the same tensor, with no random flips.

        Args:
            split: ``train``, ``val`` or ``test``; an empty ``val`` or ``test`` split falls back as its loader
                does (e.g. ``val`` -> ``test`` -> ``train``).
            n: How many images: a random subset (seeded by ``seed``) of ``n`` images, in the order of that
                permutation, so ``images.tensor_split(world_size)[rank]`` gives each rank a disjoint share;
                ``None`` or at least ``len(split)``: the whole split, in its order (the same for any seed).
            seed: Seed of the subset.

        Returns:
            uint8 images (N, C, H, W) on the CPU.
        """
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got split={split!r}")
        if n is not None and n < 0:
            raise ValueError(f"n must be >= 0 or None (the whole split), got n={n}")
        self.setup("test" if split == "test" else "fit")
        split = self._split_for(split)
        available = len(self.datasets[split])
        if n is None or n >= available:  # the whole split, in its order, whatever the seed
            idx = torch.arange(available)
        else:
            idx = torch.randperm(available, generator=torch.Generator().manual_seed(seed))[:n]  # (N,)
        if self.in_memory:
            images = self.tensors[split][0]
            return images[idx.to(images.device)].cpu()
        chosen = Subset(self.datasets[split].dataset, idx.tolist())
        return self._stack(ImageSplit(chosen, self.uint8_transform()))[0]

    # ----------------------------------------------------------------------------------------- loaders
    def _split_for(self, stage: str) -> str:
        return next(name for name in FALLBACK[stage] if len(self.datasets[name]) > 0)

    def _loader(self, split: str, train: bool) -> TensorBatches | DataLoader:
        if self.in_memory:
            images, labels = self.tensors[split]
            rank, world = self._world()
            return TensorBatches(
                images,
                labels,
                self.batch_size,
                shuffle=train,
                drop_last=train,
                seed=self.seed,
                rank=rank,
                world_size=world,
                transform=BatchTransform(flip=train and self.flip, dequantize=train and self.dequantize),
            ).to(self._device())
        workers = self.resolved_num_workers()
        persistent = self.persistent_workers if self.persistent_workers is not None else workers > 0
        return DataLoader(
            self.datasets[split],
            batch_size=self.batch_size,
            shuffle=train,
            drop_last=train,
            num_workers=workers,
            pin_memory=self.resolved_pin_memory(),
            persistent_workers=persistent and workers > 0,
        )

    def train_dataloader(self) -> TensorBatches | DataLoader:
        """Shuffled training batches; incomplete last batches are dropped."""
        if not self.in_memory:
            return self._loader("train", True)
        if self._train_batches is None:
            self._train_batches = self._loader("train", True)  # type: ignore[assignment]
            if self._loader_state:
                self._train_batches.load_state_dict(self._loader_state)
        return self._train_batches  # type: ignore[return-value]

    def val_dataloader(self) -> TensorBatches | DataLoader:
        """Validation batches in a fixed order (the test split, then train, when there is no val split)."""
        return self._loader(self._split_for("val"), False)

    def test_dataloader(self) -> TensorBatches | DataLoader:
        """Test batches in a fixed order (the val split, then train, when there is no test split)."""
        return self._loader(self._split_for("test"), False)

    def state_dict(self) -> dict:
        """Shuffling state of the in-memory loader, so a resumed run sees the same epochs."""
        return self._train_batches.state_dict() if self._train_batches is not None else {}

    def load_state_dict(self, state_dict: dict) -> None:
        """Restore the shuffling state."""
        self._loader_state = dict(state_dict)
        if state_dict and self._train_batches is not None:
            self._train_batches.load_state_dict(state_dict)
