"""One trial of a study: a ``python -m src.train`` run in its own directory, its value read from its metrics."""

from __future__ import annotations

import csv
import ctypes
import json
import math
import os
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import optuna
from optuna.storages import RetryFailedTrialCallback
from optuna.trial import TrialState

from src.tuning.config import flags
from src.tuning.objective import combine
from src.tuning.pruning import PRUNED_AT
from src.tuning.space import SearchSpace
from src.tuning.storage import RUN_DIR

COUNTED = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING, TrialState.WAITING)
SKIPPED = "skipped"  # the user attribute of a trial asked for after the study had its trials
PR_SET_PDEATHSIG = 1  # prctl option: the signal a process gets when its parent dies
STOP_TIMEOUT_S = 120  # how long a trial's run may take to save its checkpoint when the worker is stopped


class TrialFailedError(RuntimeError):
    """A trial's run exited with an error (a diverged run, say); the study goes on."""


class OverBudgetError(RuntimeError):
    """The study had its trials when this worker asked for one."""


class MetricMissingError(RuntimeError):
    """A trial's run never logged the objective's metric: the search space names a wrong metric."""


def last_logged(metrics_csv: Path, metric: str) -> float | None:
    """The last value of ``metric`` in a run's ``metrics.csv`` (``None`` when it was never logged).

    Raises:
        MetricMissingError: The file has no such column (naming the columns it has).
    """
    if not metrics_csv.is_file():
        return None
    with metrics_csv.open(newline="") as file:
        reader = csv.DictReader(file)
        if metric not in (reader.fieldnames or []):
            logged = sorted(k for k in reader.fieldnames or [] if "/" in k)
            raise MetricMissingError(
                f"objective.metric {metric!r} is not logged by the trial's run ({metrics_csv}); it logs: "
                f"{', '.join(logged)}. Set objective.metric in the search space to one of these."
            )
        values = [row[metric] for row in reader if row.get(metric) not in (None, "")]
    return float(values[-1]) if values else None


def _stop_with_parent() -> None:
    """Linux: the trial's run gets SIGTERM (saves last.ckpt, exits) when its worker dies, even by SIGKILL."""
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


@dataclass
class TrialRunner:
    """Runs trials of one study as ``python -m src.train`` subprocesses.

    Attributes:
        space: The search space.
        base_args: The base run's arguments (``--config`` files and any flags), passed to every trial.
        study_dir: Where trial ``n`` writes its run directory, ``trial_<n>``.
        storage: The storage spec, passed to the trial's pruning callback.
        n_trials: How many trials the study runs in all (complete or pruned), over all workers.
        threads: ``OMP_NUM_THREADS`` of each trial's run (``None``: inherited).
    """

    space: SearchSpace
    base_args: list[str]
    study_dir: Path
    storage: str
    n_trials: int
    threads: int | None = None
    running: optuna.Trial | None = None

    def run_dir(self, study: optuna.Study, trial: optuna.Trial) -> Path:
        """``trial_<n>``; a trial that retries a killed one keeps the killed trial's directory (and resumes it)."""
        frozen = next(t for t in study.get_trials(deepcopy=False) if t.number == trial.number)
        history = RetryFailedTrialCallback.retry_history(frozen)
        return self.study_dir / f"trial_{history[0] if history else trial.number}"

    def command(self, study: optuna.Study, trial: optuna.Trial, values: dict, run_dir: Path) -> list[str]:
        """The trial's train command: the base run, the trial's values, its own run directory, the pruner."""
        logger = {
            "class_path": "src.utils.csv_logger.ResumableCSVLogger",
            "init_args": {"save_dir": str(run_dir.parent.resolve()), "name": "", "version": run_dir.name},
        }
        pruning = {
            "class_path": "src.tuning.pruning.OptunaPruning",
            "init_args": {
                "storage": self.storage,
                "study_name": study.study_name,
                "monitor": self.space.prune_on,
                "pruner": self.space.pruner,
            },
        }
        args = [*self.base_args, *flags(values), f"--trainer.logger={json.dumps(logger)}"]
        args.append(f"--trainer.callbacks+={json.dumps(pruning)}")
        last = run_dir / "checkpoints" / "last.ckpt"
        if last.is_file():  # a retried trial resumes the killed run
            args.append(f"--ckpt_path={last}")
        return [sys.executable, "-m", "src.train", *args]

    def over_budget(self, study: optuna.Study, trial: optuna.Trial) -> bool:
        """Whether ``n_trials`` trials before this one are done, running or queued (another worker was faster)."""
        before = study.get_trials(deepcopy=False, states=COUNTED)
        return sum(t.number < trial.number for t in before) >= self.n_trials

    def __call__(self, trial: optuna.Trial) -> float:
        """Optuna's objective: run the trial and return the last logged value of the objective's metric.

        Raises:
            optuna.TrialPruned: The pruner stopped the run.
            TrialFailedError: The run failed (the study goes on).
            OverBudgetError: The study already had its trials (this worker stops).
            MetricMissingError: The run does not log the metric (the worker stops).
        """
        study = trial.study
        if self.over_budget(study, trial):
            trial.set_user_attr(SKIPPED, f"the study had its {self.n_trials} trials when this worker asked")
            study.stop()
            raise OverBudgetError(f"trial {trial.number}: the study already has {self.n_trials} trials")
        values = self.space.suggest(trial)
        run_dir = self.run_dir(study, trial)
        run_dir.parent.mkdir(parents=True, exist_ok=True)  # the run claims run_dir itself (src.train)
        log_path = run_dir.with_name(f"{run_dir.name}.log")
        trial.set_user_attr(RUN_DIR, str(run_dir.resolve()))  # OptunaPruning finds its trial by it
        command = self.command(study, trial, values, run_dir)
        env = dict(os.environ)
        if self.threads:
            env.update(OMP_NUM_THREADS=str(self.threads), MKL_NUM_THREADS=str(self.threads))
        print(f"[tune] trial {trial.number}: {' '.join(flags(values))} -> {run_dir}", flush=True)
        self.running = trial
        with log_path.open("a") as log:
            log.write(f"$ {' '.join(command)}\n")
            log.flush()
            code = self._run(command, env, log)
        self.running = None
        if code != 0:
            raise TrialFailedError(
                f"trial {trial.number}: python -m src.train exited with {code}; see {log_path}"
            )
        frozen = next(t for t in study.get_trials(deepcopy=False) if t.number == trial.number)
        if PRUNED_AT in frozen.user_attrs:
            raise optuna.TrialPruned(f"at generator step {frozen.user_attrs[PRUNED_AT]}")
        value = combine(self.space.metric, lambda name: last_logged(run_dir / "metrics.csv", name))
        if value is None or not math.isfinite(value):
            raise TrialFailedError(
                f"trial {trial.number}: {self.space.metric} = {value} at the end of the run"
            )
        return value

    @staticmethod
    def _run(command: list[str], env: dict[str, str], log: IO[str]) -> int:
        proc = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, env=env, preexec_fn=_stop_with_parent
        )
        try:
            return proc.wait()
        except BaseException:  # the worker is stopped: the run saves last.ckpt on SIGTERM, then ends
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            raise

    def retry_interrupted(self, study: optuna.Study) -> int | None:
        """Queue the trial this worker was running when it was stopped again, to resume its run; its number."""
        if self.running is None:
            return None
        frozen = next(t for t in study.get_trials(deepcopy=False) if t.number == self.running.number)
        if frozen.state != TrialState.FAIL:
            return None
        RetryFailedTrialCallback(inherit_intermediate_values=True)(study, frozen)
        return frozen.number
