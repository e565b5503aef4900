"""The 2-D toy distributions of the paper (``gan_toy.py``): 8 Gaussians, 25 Gaussians, Swiss roll, and their modes."""

from __future__ import annotations

import math
from collections.abc import Iterator

import lightning.pytorch as pl
import torch
from sklearn.datasets import make_swiss_roll
from torch import Tensor
from torch.utils.data import IterableDataset

from src.data.global_batch import log_global_batch, per_device_batch_size
from src.utils.rng import gather_rows, own_row, rank_seed

TOY_DATASETS = ("8gaussians", "25gaussians", "swissroll")

# Gaussian mixtures: name -> (noise std before rescaling, divisor applied to the whole dataset), as gan_toy.py of
# igul222/improved_wgan_training (Gulrajani et al. 2017), including the final division by a constant.
_TOY_SPECS: dict[str, tuple[float, float]] = {
    "8gaussians": (0.02, 1.414),
    "25gaussians": (0.05, 2.828),
}


def _raw_centers(name: str) -> list[tuple[float, float]]:
    if name == "8gaussians":
        s, r = 2.0, 1.0 / math.sqrt(2.0)
        unit = [(1, 0), (-1, 0), (0, 1), (0, -1), (r, r), (r, -r), (-r, r), (-r, -r)]
        return [(s * x, s * y) for x, y in unit]
    if name == "25gaussians":
        return [(2.0 * x, 2.0 * y) for x in range(-2, 3) for y in range(-2, 3)]
    raise ValueError(f"unknown toy dataset {name!r}; expected one of {sorted(_TOY_SPECS)}")


def toy_mode_centers(name: str) -> Tensor:
    """Mode centres of a toy mixture, in the same (rescaled) coordinates as the data.

    Args:
        name: ``"8gaussians"`` or ``"25gaussians"``.

    Returns:
        Float32 tensor of shape (K, 2): K = 8 or 25, in the order of the paper's code.
    """
    centers = torch.tensor(_raw_centers(name), dtype=torch.float64)  # (K, 2)
    return (centers / _TOY_SPECS[name][1]).float()


def toy_mode_std(name: str) -> float:
    """Per-coordinate standard deviation of each mode, in the rescaled coordinates.

    Args:
        name: ``"8gaussians"`` or ``"25gaussians"``.

    Returns:
        The noise std divided by the dataset's divisor (0.02 / 1.414 or 0.05 / 2.828).
    """
    _raw_centers(name)  # validates the name
    std, divisor = _TOY_SPECS[name]
    return std / divisor


def sample_toy(name: str, n: int, generator: torch.Generator | None = None) -> Tensor:
    """Draw ``n`` points (n, 2) exactly as the paper's toy code does.

    Args:
        name: ``8gaussians``, ``25gaussians`` or ``swissroll``.
        n: Number of points.
        generator: Optional torch RNG for reproducible draws.
    """
    if name in ("8gaussians", "25gaussians"):
        centers = toy_mode_centers(name)
        idx = torch.randint(len(centers), (n,), generator=generator)
        return centers[idx] + toy_mode_std(name) * torch.randn(n, 2, generator=generator)
    if name == "swissroll":
        seed = int(torch.randint(2**31 - 1, (1,), generator=generator))
        data = make_swiss_roll(n_samples=n, noise=0.25, random_state=seed)[0]
        return torch.from_numpy(data[:, [0, 2]]).float() / 7.5
    raise ValueError(f"data.dataset must be one of {', '.join(TOY_DATASETS)}; got {name!r}")


class ToyStream(IterableDataset):
    """Fresh batches (batch_size, 2) every epoch; ``num_batches`` of them per epoch."""

    def __init__(self, name: str, batch_size: int, num_batches: int, seed: int) -> None:
        super().__init__()
        self.name, self.batch_size, self.num_batches = name, batch_size, num_batches
        self.generator = torch.Generator().manual_seed(seed)

    def __iter__(self) -> Iterator[Tensor]:
        for _ in range(self.num_batches):
            yield sample_toy(self.name, self.batch_size, self.generator)

    def __len__(self) -> int:
        return self.num_batches


class Toy2DDataModule(pl.LightningDataModule):
    """2-D toy data sampled fresh each epoch (Gulrajani et al. 2017, section 5.1 and ``gan_toy.py``).

    Args:
        dataset: ``8gaussians``, ``25gaussians`` or ``swissroll``.
        batch_size: Points per batch, per device (256 in the paper).
        batches_per_epoch: Length of an epoch in batches.
        val_batches: Batches of fresh points for validation and test.
        seed: Seed of the data stream; each DDP rank adds its rank so ranks see different points.
        global_batch_size: Points per batch over all devices, split across them; replaces ``batch_size`` when
            set (:mod:`src.data.global_batch`).
    """

    data_shape = (2,)
    num_classes = 0

    def __init__(
        self,
        dataset: str = "25gaussians",
        batch_size: int = 256,
        batches_per_epoch: int = 500,
        val_batches: int = 4,
        seed: int = 0,
        global_batch_size: int | None = None,
    ) -> None:
        super().__init__()
        if dataset not in TOY_DATASETS:
            raise ValueError(
                f"data.dataset must be one of {', '.join(TOY_DATASETS)}; got dataset={dataset!r}"
            )
        for option, value in (("batch_size", batch_size), ("batches_per_epoch", batches_per_epoch)):
            if value < 1:
                raise ValueError(f"data.{option} must be >= 1, got {option}={value}")
        if val_batches < 0:
            raise ValueError(f"data.val_batches must be >= 0, got val_batches={val_batches}")
        self.save_hyperparameters()
        self.dataset = dataset
        self.batch_size = batch_size
        self.batches_per_epoch = batches_per_epoch
        self.val_batches = val_batches
        self.seed = seed
        self.global_batch_size = global_batch_size
        per_device_batch_size(batch_size, global_batch_size, 1)  # fails early on a global batch < 1
        self._train: ToyStream | None = None

    def setup(self, stage: str) -> None:
        """Split ``global_batch_size`` (when set) across the devices; print the global batch when fitting."""
        world = self.trainer.world_size if self.trainer is not None else 1
        self.batch_size = per_device_batch_size(self.hparams.batch_size, self.global_batch_size, world)
        if stage == "fit":
            log_global_batch(self.dataset, self.batch_size, world)

    def sample(self, n: int) -> Tensor:
        """``n`` fresh real points (n, 2), for plots and metrics."""
        return sample_toy(self.dataset, n)

    def _rank(self) -> int:
        return self.trainer.global_rank if self.trainer is not None else 0

    def train_dataloader(self) -> ToyStream:
        """The training stream; its RNG state carries over from epoch to epoch."""
        if self._train is None:
            self._train = ToyStream(
                self.dataset, self.batch_size, self.batches_per_epoch, self.seed + self._rank()
            )
        return self._train

    def _fixed(self, offset: int) -> ToyStream:
        # A new stream with a fixed seed: the same batches at every evaluation.
        return ToyStream(self.dataset, self.batch_size, self.val_batches, self.seed + offset + self._rank())

    def state_dict(self) -> dict:
        """Every rank's RNG state of its training stream, so a resumed run draws what a straight run would.

        ``{"generators": (world_size, N) uint8}``, one row per rank: under DDP the states are gathered from all
        ranks (a collective: Lightning builds the checkpoint on every rank).
        """
        if self._train is None:
            return {}
        strategy = self.trainer.strategy if self.trainer is not None else None
        return {"generators": gather_rows(strategy, self._train.generator.get_state())}

    def load_state_dict(self, state_dict: dict) -> None:
        """Restore this rank's row of the training streams' RNG states.

        A rank the checkpoint has no row for (a resume on more devices), and every rank but 0 of a checkpoint
        that kept rank 0's state only (``"generator"``, before each rank's was saved), continues from rank 0's
        state reseeded for its rank (:func:`~src.utils.rng.rank_seed`), so that no two ranks draw the same points.
        """
        rank = self._rank()
        rows = state_dict.get("generators")
        if rows is None and "generator" in state_dict:
            rows = state_dict["generator"].unsqueeze(0)
        if rows is None:
            return
        generator = self.train_dataloader().generator
        own = own_row(rows, rank)
        if own is not None:
            generator.set_state(own)
            return
        generator.set_state(own_row(rows, 0))
        generator.manual_seed(rank_seed(int(torch.randint(2**62, (1,), generator=generator)), rank))

    def val_dataloader(self) -> ToyStream:
        """Fixed validation batches."""
        return self._fixed(10_000)

    def test_dataloader(self) -> ToyStream:
        """Fixed test batches."""
        return self._fixed(20_000)
