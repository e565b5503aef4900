"""Shared logic of the image datamodules: option checks, seeded splits, loaders and the in-memory mode.

A subclass says where its images come from (:meth:`ImageDataModule.load_splits`, returning datasets of
``(PIL image, target)``) and how to shape them (:meth:`ImageDataModule.geometry`, deterministic PIL
transforms); this base turns them into ``(images in [-1, 1] (B, C, H, W), labels (B,))`` batches, either
through a ``DataLoader`` with workers or, with ``in_memory=True``, from one uint8 tensor on the training device.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch
from lightning.pytorch.utilities import rank_zero_warn
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, Subset
from torchvision.transforms import v2

from src.data.memory import TensorBatches

SPLITS = ("train", "val", "test")
# Where the val and test loaders look when their own split is empty (e.g. ``val_fraction=0``).
FALLBACK = {"val": ("val", "test", "train"), "test": ("test", "val", "train")}


class DatasetNotFoundError(FileNotFoundError):
    """A dataset is absent and could not be obtained; the message names it, where we looked and the fix."""


def to_signed_unit(images: Tensor) -> Tensor:
    """uint8 images (..., C, H, W) in [0, 255] -> float32 in [-1, 1] (``x / 127.5 - 1``)."""
    return images.float().div(127.5).sub(1.0)


class BatchTransform:
    """Turns a uint8 batch (B, C, H, W) into float in [-1, 1], flipping each image left-right with p=0.5.

    Used by the in-memory mode, on the training device; draws from torch's global RNG (seeded by
    ``seed_everything``), as ``RandomHorizontalFlip`` does in the DataLoader path.

    Args:
        flip: Apply random horizontal flips.
    """

    def __init__(self, flip: bool) -> None:
        self.flip = flip

    def __call__(self, images: Tensor) -> Tensor:
        """Convert (and maybe flip) a batch (B, C, H, W)."""
        out = to_signed_unit(images)  # (B, C, H, W)
        if self.flip:
            mask = torch.rand(out.shape[0], device=out.device) < 0.5  # (B,)
            out = torch.where(mask[:, None, None, None], out.flip(-1), out)
        return out


def as_label(target: Any) -> int:
    """A dataset target as an integer class label; ``None`` (unlabelled data) becomes 0."""
    if target is None:
        return 0
    if isinstance(target, Tensor):
        return int(target.reshape(-1)[0]) if target.numel() else 0
    return int(target)


class ImageSplit(Dataset):
    """A dataset of ``(PIL image, target)`` seen through a transform: ``(transform(image), int label)``.

    Args:
        dataset: Yields ``(PIL image, target)``.
        transform: Applied to each image.
    """

    def __init__(self, dataset: Dataset, transform: Callable[[Any], Tensor]) -> None:
        self.dataset, self.transform = dataset, transform

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def __getitem__(self, index: int) -> tuple[Tensor, int]:
        image, target = self.dataset[index]
        return self.transform(image), as_label(target)


def unwrap_subset(dataset: Dataset) -> tuple[Dataset, Tensor]:
    """The underlying dataset of a (possibly nested) ``Subset`` and the indices (n,) into it."""
    indices = torch.arange(len(dataset))  # type: ignore[arg-type]
    while isinstance(dataset, Subset):
        indices = torch.as_tensor(dataset.indices, dtype=torch.long)[indices]
        dataset = dataset.dataset
    return dataset, indices


def seeded_split(n: int, fractions: Sequence[float], seed: int) -> list[Tensor]:
    """Split ``range(n)`` at random into the rest plus one part per fraction, the same for the same seed.

    Args:
        n: Number of items.
        fractions: Share of the items in each held-out part.
        seed: Seed of the permutation.

    Returns:
        Sorted index tensors: ``[rest, part_0, part_1, ...]``.
    """
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    sizes = [round(f * n) for f in fractions]
    parts, start = [], n - sum(sizes)
    rest = order[:start]
    for size in sizes:
        parts.append(order[start : start + size])
        start += size
    return [p.sort().values for p in (rest, *parts)]


def available_cpus() -> int:
    """CPU cores this process may use."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


class ImageDataModule(pl.LightningDataModule, ABC):
    """Base of the image datamodules: batches ``(images (B, C, H, W) in [-1, 1], labels (B,))``.

    Subclasses implement :meth:`load_splits`, :meth:`geometry` and :attr:`data_shape`, and may override
    :meth:`prepare_data` to download. This class checks the options, builds the loaders (DataLoader or the
    in-memory :class:`~src.data.memory.TensorBatches`) and refuses to train on nothing. Subclasses call
    ``self.save_hyperparameters()`` themselves, so the saved arguments are exactly their own.

    Args:
        data_dir: Root folder of the data.
        batch_size: Images per batch, per device (the global batch is ``batch_size * devices``).
        val_fraction: Share of the training images held out for validation (seeded by ``seed``).
        seed: Seed of the held-out splits and of the in-memory shuffling.
        flip: Random horizontal flips of training images.
        in_memory: Keep the whole dataset as one uint8 tensor on the training device and slice batches from
            it (no workers); for small datasets.
        num_workers: DataLoader workers; ``None``: 0 on the CPU, else ``min(8, cores per device - 1)``.
        pin_memory: Pinned host memory for faster copies; ``None``: on when training on a CUDA device.
        persistent_workers: Keep workers alive between epochs; ``None``: on when there are workers.
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
    ) -> None:
        super().__init__()
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
        self.flip, self.in_memory = flip, in_memory
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

    # ----------------------------------------------------------------------------------------- helpers
    def holdout(self, dataset: Dataset, *fractions: float) -> list[Dataset]:
        """Split ``dataset`` into the rest and one seeded random part per fraction (:func:`seeded_split`)."""
        parts = seeded_split(len(dataset), fractions, self.seed)  # type: ignore[arg-type]
        return [Subset(dataset, idx.tolist()) for idx in parts]

    def image_transform(self, train: bool) -> v2.Compose:
        """PIL image -> float tensor (C, H, W) in [-1, 1]: geometry, then (for training) random flips."""
        steps = [*self.geometry(), v2.PILToTensor(), to_signed_unit]
        if train and self.flip:
            steps.append(v2.RandomHorizontalFlip())
        return v2.Compose(steps)

    def uint8_transform(self) -> v2.Compose:
        """PIL image -> uint8 tensor (C, H, W): the deterministic part, stored by the in-memory mode."""
        return v2.Compose([*self.geometry(), v2.PILToTensor()])

    def uint8_split(self, dataset: Dataset) -> tuple[Tensor, Tensor] | None:
        """Optional fast path of the in-memory mode: a whole split read straight from the dataset's arrays.

        Returns uint8 images (N, C, H, W) and labels (N,) equal to decoding each image through
        :meth:`uint8_transform`, or ``None`` (the default) to decode image by image.
        """
        return None

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
        _, world = self._world()
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

    # ----------------------------------------------------------------------------------------- loaders
    def _split_for(self, stage: str) -> str:
        sizes = {name: len(self.datasets[name]) for name in SPLITS}
        return next(name for name in FALLBACK[stage] if sizes[name] > 0)

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
                transform=BatchTransform(flip=train and self.flip),
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


def require_download(
    name: str, where: Path | str, how: str, error: BaseException | None = None, download: bool = True
) -> DatasetNotFoundError:
    """The error for an absent dataset: which one, where we looked, why it was not downloaded, how to get it.

    Args:
        name: The dataset.
        where: The folder that was searched.
        how: Instructions to obtain the files.
        error: The download's exception, if a download was tried.
        download: Whether downloading was on (``data.download``).
    """
    if error is not None:
        text = str(error).strip()
        reason = f" and the download failed ({type(error).__name__}: {text.splitlines()[0] if text else ''})"
    elif not download:
        reason = " and downloading is off (--data.download=false)"
    else:
        reason = ""
    return DatasetNotFoundError(f"{name} was not found in {where}{reason}. {how}")


class TorchvisionTrainTestDataModule(ImageDataModule):
    """A torchvision dataset with ``train=True/False`` files (MNIST, CIFAR-10): download, load, split.

    Subclasses set :attr:`dataset_class` and implement :meth:`not_found`, the error that says where the files
    go; the training files are split into train/val (seeded) and the official test files are the test split.
    """

    dataset_class: type

    @abstractmethod
    def not_found(self, error: BaseException | None = None) -> Exception:
        """The error to raise when the files are missing and cannot be downloaded."""

    def prepare_data(self) -> None:
        """Download the dataset when it is missing (Lightning calls this on rank zero); failing, raise a clear error."""
        if not self.download:
            return
        try:
            self.dataset_class(self.data_dir, train=True, download=True)
        except Exception as error:
            raise self.not_found(error) from error

    def _load(self, train: bool) -> Dataset:
        try:
            return self.dataset_class(self.data_dir, train=train, download=False)
        except RuntimeError as error:
            raise self.not_found() from error

    def load_splits(self) -> dict[str, Dataset]:
        """The training files split into train/val (seeded) and the official test files."""
        train, val = self.holdout(self._load(train=True), self.val_fraction)
        return {"train": train, "val": val, "test": self._load(train=False)}
