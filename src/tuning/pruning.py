"""The pruning callback of a tuning trial: reports every scheduled evaluation to the study, stops a pruned run."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import optuna
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.utilities import rank_zero_info, rank_zero_warn
from optuna.trial import TrialState
from typing_extensions import override

from src.evaluation import ScheduledEvaluation
from src.tuning.objective import combine
from src.tuning.space import make_pruner
from src.tuning.storage import RUN_DIR, open_storage

PRUNED_AT = "pruned_at_generator_step"  # the trial's user attribute a pruned run sets


class OptunaPruning(Callback):
    """Feeds the study's pruner at every scheduled evaluation and stops the run when it says so.

    ``python -m src.tune`` adds it to each trial (``trainer.callbacks``). Rank zero reports ``monitor`` at the
    model's generator step to the trial in the study's storage and asks the pruner; the decision is broadcast,
    so under DDP every rank stops at the same step. A pruned run sets the trial's user attribute
    :data:`PRUNED_AT` and stops as a finished run does (its checkpoints and metrics stay);
    ``src.tune`` then marks the trial pruned. Unlike optuna-integration's Lightning callback it works with any
    storage under DDP, because the trial is reopened from the storage by rank zero only.

    The trial is the study's running trial whose ``run_dir`` user attribute is this run's directory, so the
    config names no trial and a killed trial's run resumes under the trial that retries it.

    Args:
        storage: The study's storage (``--storage`` of ``src.tune``).
        study_name: The study.
        monitor: The logged metric to report (``val/fid``), or a reduction of several
            (``min(val/precision, val/recall)``, :mod:`src.tuning.objective`).
        pruner: The study's pruner as ``{"class_path": ..., "init_args": {...}}`` (Optuna's storage does not
            keep it); ``None`` never prunes.
    """

    def __init__(
        self, storage: str, study_name: str, monitor: str, pruner: dict[str, Any] | None = None
    ) -> None:
        super().__init__()
        self.storage, self.study_name, self.monitor, self.pruner = storage, study_name, monitor, pruner
        self._trial: optuna.Trial | None = None
        self._looked_up = False
        self.pruned_at: int | None = None

    def _open_trial(self, trainer: pl.Trainer) -> optuna.Trial | None:
        if not self._looked_up:
            self._looked_up = True
            study = optuna.load_study(
                study_name=self.study_name,
                storage=open_storage(self.storage),
                pruner=make_pruner(self.pruner),
            )
            run_dir = str(Path(trainer.log_dir or "").resolve())
            running = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
            found = [t for t in running if t.user_attrs.get(RUN_DIR) == run_dir]
            if not found:
                rank_zero_warn(
                    f"No running trial of study {self.study_name} runs in {run_dir}: not reporting."
                )
                return None
            self._trial = optuna.Trial(study, found[-1]._trial_id)
        return self._trial

    def _evaluated_now(self, trainer: pl.Trainer) -> bool:
        scheduled = [cb for cb in trainer.callbacks if isinstance(cb, ScheduledEvaluation)]
        if not scheduled:  # the model logs the metric itself: every validation reports
            return True
        return any(cb.last_eval_step == trainer.global_step for cb in scheduled)

    @override
    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        prune = False
        value = combine(self.monitor, trainer.callback_metrics.get)
        if trainer.is_global_zero and value is not None and self._evaluated_now(trainer):
            trial = self._open_trial(trainer)
            step = int(getattr(pl_module, "generator_steps", trainer.global_step))
            value = float(value)
            if trial is not None and math.isfinite(value):
                trial.report(value, step)
                prune = trial.should_prune()
                if prune:
                    trial.set_user_attr(PRUNED_AT, step)
                    rank_zero_info(
                        f"Optuna pruned trial {trial.number} at generator step {step} ({self.monitor}={value:.4g})."
                    )
        if trainer.strategy.broadcast(prune, src=0):
            self.pruned_at = int(getattr(pl_module, "generator_steps", trainer.global_step))
            trainer.should_stop = True
