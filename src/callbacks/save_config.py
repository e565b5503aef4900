"""The callback that writes ``config.yaml`` into the run directory, logs the config and stores it in checkpoints."""

from __future__ import annotations

import functools
from pathlib import Path

import lightning.pytorch as pl
import yaml
from lightning.pytorch.cli import SaveConfigCallback

from src.utils.atomic_io import atomic_write_text
from src.utils.output_dirs import run_directory
from src.utils.resume import RUN_CONFIG_KEY


class SaveAndLogConfig(SaveConfigCallback):
    """Writes ``config.yaml`` into the run directory and logs the resolved config to every logger.

    W&B shows it as the run's config; CSV and TensorBoard add it to their hyperparameters. Only what the
    parser holds is logged: environment variables such as ``WANDB_API_KEY`` are never part of it. The file goes
    into the run's own folder (:func:`~src.utils.output_dirs.run_directory`: a W&B run's, not the ``save_dir``
    all runs share) and is written atomically, so a full disk leaves the previous file, not an empty one.
    """

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        """Write ``config.yaml`` (rank zero) and log the config, once per run."""
        if self.already_saved:
            return
        run_dir = run_directory(trainer) if self.save_to_log_dir else None  # a broadcast: every rank
        if run_dir is not None and "://" in run_dir:  # a remote folder: Lightning's fsspec write
            super().setup(trainer, pl_module, stage)
            return
        if trainer.is_global_zero:
            if run_dir is not None:
                atomic_write_text(Path(run_dir) / self.config_filename, self.run_config)
            self.save_config(trainer, pl_module, stage)
            self.already_saved = True
        self.already_saved = trainer.strategy.broadcast(self.already_saved)

    def save_config(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        """Log the resolved config (rank zero only; LightningCLI calls this once per run)."""
        config = yaml.safe_load(self.parser.dump(self.config, skip_none=False))
        config.pop("config", None)  # the paths of the --config files, not settings
        for logger in trainer.loggers:
            logger.log_hyperparams(config)

    def on_save_checkpoint(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, checkpoint: dict
    ) -> None:
        """Save the resolved config in every checkpoint, so ``--ckpt_path`` resumes only a matching run."""
        checkpoint[RUN_CONFIG_KEY] = self.run_config

    @functools.cached_property
    def run_config(self) -> str:
        """The resolved config as YAML, dumped once: a dump takes ~0.15 s, and the default run saves ~100 times."""
        return self.parser.dump(self.config, skip_none=False)
