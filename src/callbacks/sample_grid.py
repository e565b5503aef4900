"""Sample grids from a fixed noise batch (images) or scatter plots with the critic's contour (2-D data)."""

from __future__ import annotations

import os
from pathlib import Path

import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.utilities import rank_zero_only
from torch import Tensor
from torchvision.utils import make_grid, save_image
from typing_extensions import override

from src.nets.labels import grid_row_length
from src.utils.atomic_io import atomic_path
from src.utils.output_dirs import run_directory


class SampleGrid(Callback):
    """Writes ``samples/epoch=E-gen_step=S.png`` under the run directory and sends it to the logger.

    The file is written atomically (a temporary file, then a rename), so a full disk leaves no partial PNG.

    Images come from the module's ``fixed_noise`` buffer, so successive grids show the same latent points
    (and survive resume). A conditional model also has ``fixed_labels``: the grid shows one row per class,
    and ``nrow`` is ignored. For 2-D data it draws real vs generated points over the critic's contour.
    Runs on rank zero only.

    Args:
        every_n_epochs: Write a grid every this many epochs (and at the end of training).
        nrow: Images per row of the grid.
        num_points: Generated points in a 2-D scatter plot.
        dirpath: Output folder; defaults to ``<run dir>/samples``.
    """

    def __init__(
        self, every_n_epochs: int = 1, nrow: int = 8, num_points: int = 1000, dirpath: str | None = None
    ) -> None:
        super().__init__()
        for name, value in (("every_n_epochs", every_n_epochs), ("nrow", nrow), ("num_points", num_points)):
            if value < 1:
                raise ValueError(f"SampleGrid {name} must be >= 1, got {name}={value}")
        self.every_n_epochs = every_n_epochs
        self.nrow = nrow
        self.num_points = num_points
        self.dirpath = dirpath
        self.last_path: Path | None = None
        self._last_step: int | None = None

    @override
    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        # a broadcast under DDP: read it here, on every rank, not in the rank-zero `write`
        self._log_dir = run_directory(trainer)

    def _dir(self, trainer: pl.Trainer) -> Path:
        log_dir = getattr(self, "_log_dir", None) or trainer.default_root_dir
        root = self.dirpath or os.path.join(log_dir, "samples")
        path = Path(root)
        path.mkdir(parents=True, exist_ok=True)
        return path

    @override
    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if (trainer.current_epoch + 1) % self.every_n_epochs == 0 or trainer.should_stop:
            self.write(trainer, pl_module)

    @override
    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.write(trainer, pl_module)

    @rank_zero_only
    def write(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> Path | None:
        """Render and save one grid or scatter plot now; returns its path (``None`` for a model that does not sample from noise)."""
        if not getattr(
            pl_module, "samples_from_noise", True
        ):  # super-resolution: its evaluation draws pictures
            return None
        step = getattr(pl_module, "generator_steps", trainer.global_step)
        path = self._dir(trainer) / f"epoch={trainer.current_epoch:04d}-gen_step={step:06d}.png"
        if step == self._last_step and self.last_path is not None:
            return self.last_path
        labels = getattr(pl_module, "fixed_labels", None)  # conditional models: one row per class
        if labels is None:
            samples = pl_module.sample(noise=pl_module.fixed_noise).float().cpu()
        else:
            samples = pl_module.sample(noise=pl_module.fixed_noise, labels=labels).float().cpu()
        nrow = self.nrow if labels is None else grid_row_length(len(labels), pl_module.num_classes)
        if samples.dim() == 4:
            grid = make_grid(samples, nrow=nrow, normalize=True, value_range=(-1, 1))
            with atomic_path(path) as temporary:  # a full disk leaves no truncated PNG
                save_image(grid, temporary, format="png")
            self._log_image(trainer, grid, step)
        elif samples.dim() == 2 and samples.shape[1] == 2:
            self._scatter(trainer, pl_module, path)
        else:
            return path
        self.last_path, self._last_step = path, step
        return path

    def _log_image(self, trainer: pl.Trainer, grid: Tensor, step: int) -> None:
        for logger in trainer.loggers:
            if hasattr(logger, "log_image"):  # WandbLogger
                logger.log_image(key="samples", images=[grid], step=trainer.global_step)
            elif hasattr(getattr(logger, "experiment", None), "add_image"):  # TensorBoard
                logger.experiment.add_image("samples", grid, global_step=step)

    def _scatter(self, trainer: pl.Trainer, pl_module: pl.LightningModule, path: Path) -> None:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fake = pl_module.sample(self.num_points).float().cpu()
        datamodule = trainer.datamodule
        real = datamodule.sample(self.num_points).float() if hasattr(datamodule, "sample") else None
        points = fake if real is None else torch.cat([real, fake])
        lo, hi = points.min(0).values - 0.5, points.max(0).values + 0.5
        xs, ys = torch.linspace(lo[0], hi[0], 100), torch.linspace(lo[1], hi[1], 100)
        gx, gy = torch.meshgrid(xs, ys, indexing="xy")
        grid_points = torch.stack([gx.flatten(), gy.flatten()], 1).to(pl_module.device, pl_module.dtype)
        with torch.no_grad():
            scores = pl_module.score(grid_points).float().cpu().view(100, 100)
        fig, ax = plt.subplots(figsize=(5, 5))
        ax.contourf(gx, gy, scores, levels=20, cmap="coolwarm", alpha=0.6)
        if real is not None:
            ax.scatter(real[:, 0], real[:, 1], s=2, c="tab:orange", label="real")
        ax.scatter(fake[:, 0], fake[:, 1], s=2, c="tab:green", label="generated")
        ax.set_title(f"generator step {getattr(pl_module, 'generator_steps', 0)}")
        ax.legend(loc="upper right")
        with atomic_path(path) as temporary:
            fig.savefig(temporary, dpi=100, format="png")
        plt.close(fig)
        for logger in trainer.loggers:
            if hasattr(logger, "log_image"):
                logger.log_image(key="samples", images=[str(path)], step=trainer.global_step)
