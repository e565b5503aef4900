"""When an evaluation callback measures, and how it logs: the base of the image and toy metrics."""

from __future__ import annotations

import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.trainer.states import TrainerFn
from typing_extensions import override


class ScheduledEvaluation(Callback):
    """Measures at the end of validation epochs on a schedule and logs the values under ``val/`` or ``test/``.

    At test time the prefix is the model's ``test_prefix`` when it has one (``src.train`` logs the best
    checkpoint's test under ``test_best/``).

    When it runs:

    * in ``fit``, at the end of validation on the first validation of the run, then every ``every_n_epochs``
      epochs, and on the last epoch (``trainer.should_stop``, ``max_epochs`` or ``max_steps`` reached); never in
      the sanity check, and once per global step (several validations in one epoch with no step in between
      measure once). So ``ModelCheckpoint(monitor="val/<metric>")`` always finds the key: between evaluations
      it sees the last value, which never counts as an improvement;
    * in ``validate`` and ``test``, every time.

    Values are logged with ``sync_dist=True, reduce_fx="max"``: subclasses return the same value on every rank
    (torchmetrics syncs its states), and the max of equal values is exact and keeps Lightning from warning
    about unsynced epoch-level values under DDP. Every rank must therefore call :meth:`log_metrics`.

    Subclasses implement :meth:`measure` and may set :attr:`prog_bar_metric`, the metric shown in the progress
    bar. To be used as ``--quality`` (``src/cli.py``), a subclass needs nothing else.

    Args:
        every_n_epochs: Evaluate every this many epochs during fit (on validation epochs).
    """

    prog_bar_metric: str | None = None

    def __init__(self, every_n_epochs: int = 1) -> None:
        super().__init__()
        if every_n_epochs < 1:
            raise ValueError(
                f"{type(self).__name__} every_n_epochs must be >= 1, got every_n_epochs={every_n_epochs}"
            )
        self.every_n_epochs = every_n_epochs
        self.last_duration_s = 0.0  # seconds the last measurement took on this rank (subclasses set it)
        self._evaluated_in_fit = False
        self._last_eval_step: int | None = None

    def measure(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> dict[str, float]:
        """Measure the model; every rank gets (and returns) the same values.

        Args:
            trainer: The trainer.
            pl_module: The model being evaluated.
            stage: ``"val"`` or ``"test"`` (a subclass may measure more samples at test time).

        Returns:
            Metric name (without prefix) to value.
        """
        raise NotImplementedError(f"{type(self).__name__} must implement measure()")

    @property
    def last_eval_step(self) -> int | None:
        """The global step of the last measurement in this fit (``None`` before the first)."""
        return self._last_eval_step

    @override
    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._evaluated_in_fit = False
        self._last_eval_step = None

    def is_due(self, trainer: pl.Trainer) -> bool:
        """Whether this validation epoch end measures (see the class docstring for the schedule)."""
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
        if self.is_due(trainer):
            self.log_metrics(trainer, pl_module, "val")
            if trainer.state.fn == TrainerFn.FITTING:
                self._evaluated_in_fit, self._last_eval_step = True, trainer.global_step

    @override
    def on_test_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.log_metrics(trainer, pl_module, "test", getattr(pl_module, "test_prefix", "test"))

    def log_metrics(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str, prefix: str | None = None
    ) -> dict[str, float]:
        """Measure and ``pl_module.log`` the metrics under ``prefix/``; every rank must call it.

        Args:
            trainer: The trainer.
            pl_module: The model being evaluated.
            stage: ``"val"`` or ``"test"``: what is measured (a subclass may measure more samples, from other
                seeds, at test time).
            prefix: The prefix of the logged keys; ``None``: ``stage``. ``test`` logs under the model's
                ``test_prefix`` when it has one (``test_best`` for the best checkpoint, see ``src.train``).

        Returns:
            The measured values, unprefixed.
        """
        values = self.measure(trainer, pl_module, stage)
        for name, value in values.items():
            pl_module.log(
                f"{prefix or stage}/{name}",
                torch.tensor(value, device=pl_module.device, dtype=torch.float32),
                sync_dist=True,
                reduce_fx="max",
                prog_bar=name == self.prog_bar_metric,
            )
        return values
