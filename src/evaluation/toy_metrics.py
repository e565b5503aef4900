"""Metrics of 2-D toy runs: modes covered, high-quality share, exact W1 and sliced Wasserstein."""

from __future__ import annotations

import time

import lightning.pytorch as pl
import torch
from torch import Tensor
from typing_extensions import override

from src.data.toy import TOY_DATASETS, sample_toy, toy_mode_centers, toy_mode_std
from src.evaluation.schedule import ScheduledEvaluation
from src.metrics.toy import exact_w1, mode_coverage, sliced_wasserstein


class ToyMetrics(ScheduledEvaluation):
    """Logs ``{val,test}/w1``, ``/swd``, ``/w1_floor`` and, for 8/25 Gaussians, ``/modes_covered``, ``/high_quality``.

    * ``w1``: exact Wasserstein-1 between ``num_points`` generated and ``num_points`` fresh real points
      (optimal assignment, O(n³): 1000 points take about 0.4 s on one CPU core, 2000 about 2.5 s);
    * ``w1_floor``: the same distance between two independent real samples of that size, the value a perfect
      generator would get (empirical W1 does not go to zero at finite n);
    * ``swd``: sliced Wasserstein-1 over ``num_projections`` random directions (a lower bound on W1);
    * ``modes_covered``: mixture modes with at least ``min_count`` generated points within ``n_std``
      standard deviations (PacGAN's 20 of 2,500, scaled to ``num_points``); ``high_quality``: the share of
      generated points within ``n_std`` std of a mode.

    When it runs: see :class:`~src.evaluation.schedule.ScheduledEvaluation`. Generated and real points come
    from fixed seeds (``seed`` in validation, ``test_seed`` at test time, so the test is held out from the
    validations that chose the best checkpoint), so successive evaluations differ only through the generator,
    and the global RNG of training is untouched. Every rank computes the same values (no collective is needed), so it is safe under
    DDP.

    Args:
        num_points: Generated and real points per evaluation.
        every_n_epochs: Evaluate every this many epochs during fit (on validation epochs), and on the first
            and the last validation.
        num_projections: Random directions of the sliced Wasserstein distance.
        min_count: High-quality points a mode needs to count as covered; ``None``: ``0.008 * num_points``
            (PacGAN's 20 of 2,500, :func:`~src.metrics.toy.mode_coverage`).
        n_std: Radius of a mode in standard deviations of its Gaussian.
        seed: Seed of the noise, of the real points and of the projections (validation).
        test_seed: The same at test time; ``None``: ``seed + 1000``.
    """

    prog_bar_metric = "w1"

    def __init__(
        self,
        num_points: int = 1000,
        every_n_epochs: int = 1,
        num_projections: int = 128,
        min_count: float | None = None,
        n_std: float = 3.0,
        seed: int = 0,
        test_seed: int | None = None,
    ) -> None:
        if num_points < 1:
            raise ValueError(f"ToyMetrics num_points must be >= 1, got num_points={num_points}")
        super().__init__(every_n_epochs)
        if num_projections < 1:
            raise ValueError(
                f"ToyMetrics num_projections must be >= 1, got num_projections={num_projections}"
            )
        if not 0 < n_std < float("inf"):  # NaN fails too
            raise ValueError(f"ToyMetrics n_std must be a finite number > 0, got n_std={n_std}")
        if min_count is not None and not 0 <= min_count < float("inf"):
            raise ValueError(
                f"ToyMetrics min_count must be a finite number >= 0 or null, got min_count={min_count}"
            )
        self.num_points, self.num_projections = num_points, num_projections
        self.min_count, self.n_std, self.seed = min_count, n_std, seed
        self.test_seed = seed + 1000 if test_seed is None else test_seed
        self._floor: float | None = None

    @override
    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        shape = tuple(getattr(trainer.datamodule, "data_shape", (2,)))
        if shape != (2,):
            raise ValueError(
                f"ToyMetrics needs 2-D points, but the datamodule's data_shape is {shape}; "
                "for images use src.evaluation.ImageQuality"
            )

    @override
    @torch.no_grad()
    def measure(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str = "val"
    ) -> dict[str, float]:
        """Generate ``num_points`` points and compare them with fresh real points (other ones at test time).

        Args:
            trainer: The trainer (its datamodule gives the real points).
            pl_module: A module with ``latent_dim`` and ``sample(noise=...)`` returning points (n, 2).
            stage: ``"val"`` or ``"test"``; both measure ``num_points`` points, from ``seed`` or ``test_seed``.

        Returns:
            ``w1``, ``w1_floor``, ``swd`` and, for Gaussian mixtures, ``modes_covered`` and ``high_quality``.
        """
        start = time.perf_counter()
        datamodule = trainer.datamodule
        name = getattr(datamodule, "dataset", None)
        seed = self.test_seed if stage == "test" else self.seed
        noise = torch.randn(
            self.num_points, pl_module.latent_dim, generator=torch.Generator().manual_seed(seed)
        )
        fake = pl_module.sample(noise=noise.to(pl_module.device)).float().cpu()  # (n, 2)
        real = self._real(datamodule, name, seed + 1)  # (n, 2)
        if self._floor is None:  # a property of the sample size: measured once, from the validation seed
            first = real if seed == self.seed else self._real(datamodule, name, self.seed + 1)
            self._floor = exact_w1(first, self._real(datamodule, name, self.seed + 2))
        projections = torch.Generator().manual_seed(seed)
        values = {
            "w1": exact_w1(fake, real),
            "w1_floor": self._floor,
            "swd": sliced_wasserstein(fake, real, self.num_projections, generator=projections),
        }
        if name in ("8gaussians", "25gaussians"):
            cover = mode_coverage(
                fake, toy_mode_centers(name), toy_mode_std(name), self.min_count, self.n_std
            )
            values["modes_covered"] = float(cover["modes_covered"])
            values["high_quality"] = float(cover["high_quality_fraction"])
        self.last_duration_s = time.perf_counter() - start
        return values

    def _real(self, datamodule: object, name: str | None, seed: int) -> Tensor:
        generator = torch.Generator().manual_seed(seed)
        if name in TOY_DATASETS:
            return sample_toy(name, self.num_points, generator).float()
        if hasattr(datamodule, "sample"):
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed)
                return datamodule.sample(self.num_points).float().cpu()  # type: ignore[attr-defined]
        raise ValueError(
            "ToyMetrics needs real points: a src.data.Toy2DDataModule or a datamodule with sample(n)"
        )
