"""Search hyperparameters with Optuna: ``python -m src.tune --space configs/tune/FILE.yaml [train arguments]``.

Every argument that is not one of the options below goes to every trial's ``python -m src.train`` (``--config``
files, ``--trainer.*``, ...). The search space names CLI keys with their distributions, the objective metric and
its direction, and the pruner (:mod:`src.tuning.space`). Each trial is a normal run directory,
``<study dir>/trial_<n>``, whose pruner is fed at every scheduled evaluation. Workers share a study through its
storage: start the same command again (on this machine or another) to add a worker; start it again after a kill
to resume. At the end the worker prints a summary table, draws Optuna's plots and writes ``best.yaml``, which
``python -m src.train --config <study dir>/best.yaml`` runs as it is.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from types import FrameType

import optuna
from optuna.study import MaxTrialsCallback
from optuna.trial import FrozenTrial, TrialState

from src.tuning.config import check_keys, dump, flags, resolved_config
from src.tuning.report import save_plots, summary_table
from src.tuning.space import SearchSpace, SearchSpaceError, load_space
from src.tuning.storage import default_storage, is_journal, open_storage
from src.tuning.trial import SKIPPED, MetricMissingError, OverBudgetError, TrialFailedError, TrialRunner

BASE_ARGS = "base_args"  # the study's user attribute: the train arguments every worker must pass


def parse_args(argv: list[str] | None) -> tuple[argparse.Namespace, list[str]]:
    """The tuner's options, and the rest: the base run's arguments."""
    parser = argparse.ArgumentParser(
        prog="python -m src.tune", description=__doc__.split("\n\n")[0], allow_abbrev=False
    )
    parser.add_argument("--space", required=True, help="the search space file (configs/tune/*.yaml)")
    parser.add_argument("--study", help="the study's name (default: the search space file's name)")
    parser.add_argument(
        "--storage",
        help="an Optuna storage: a SQLAlchemy URL (default sqlite:///<study dir>.db; postgresql://..., "
        "mysql+pymysql://...) or a journal file for a shared filesystem (journal:PATH)",
    )
    parser.add_argument(
        "--study_dir", help="where the trials' run directories go (default runs/tune/<study>)"
    )
    parser.add_argument(
        "--n_trials", type=int, default=20, help="trials of the whole study, over all workers"
    )
    parser.add_argument("--seed", type=int, help="the sampler's seed (default: random, so workers differ)")
    parser.add_argument("--threads", type=int, help="OMP_NUM_THREADS of each trial (default: inherited)")
    parser.add_argument(
        "--heartbeat",
        type=int,
        default=60,
        help="database storages: seconds between a worker's heartbeats; "
        "a trial silent for 4 of them (its worker was killed) is run again, resuming its last.ckpt",
    )
    parser.add_argument(
        "--max_failures", type=int, default=3, help="a worker stops after this many failed trials in a row"
    )
    options, base_args = parser.parse_known_args(argv)
    if options.n_trials < 1:
        parser.error(f"--n_trials must be >= 1, got --n_trials={options.n_trials}")
    return options, base_args


def open_study(options: argparse.Namespace, space: SearchSpace, base_args: list[str]) -> optuna.Study:
    """Create the study, or join it: its direction and base arguments must be this worker's."""
    storage = open_storage(options.storage, None if is_journal(options.storage) else options.heartbeat)
    study = optuna.create_study(
        study_name=options.study,
        storage=storage,
        direction=space.direction,
        sampler=optuna.samplers.TPESampler(seed=options.seed),
        pruner=space.make_pruner(),
        load_if_exists=True,
    )
    if study.direction.name.lower() != space.direction:
        raise SystemExit(
            f"study {options.study!r} in {options.storage} is a {study.direction.name.lower()} study; the search "
            f"space says {space.direction}. Use another --study name."
        )
    saved = study.user_attrs.get(BASE_ARGS)
    if saved is None:
        study.set_user_attr(BASE_ARGS, base_args)
    elif saved != base_args:
        raise SystemExit(
            f"study {options.study!r} runs its trials with the train arguments {saved}; this worker passes "
            f"{base_args}. Workers of a study pass the same arguments (or use another --study name)."
        )
    return study


def stop_after_failures(limit: int) -> Callable[[optuna.Study, FrozenTrial], None]:
    """A callback that stops the worker after ``limit`` failed trials in a row (a broken base config)."""
    failed: list[int] = []

    def callback(study: optuna.Study, trial: FrozenTrial) -> None:
        if trial.state == TrialState.FAIL and SKIPPED not in trial.user_attrs:
            failed.append(trial.number)
            if len(failed) >= limit:
                print(f"[tune] trials {failed} failed in a row: stopping this worker.", flush=True)
                study.stop()
        else:
            failed.clear()

    return callback


def best_values(study: optuna.Study, space: SearchSpace) -> dict:
    """The best trial's CLI values, ``same_as`` keys included."""
    values = {}
    for param in space.params:
        values.update(dict.fromkeys((param.key, *param.same_as), study.best_params[param.key]))
    return values


def write_outputs(study: optuna.Study, space: SearchSpace, base_args: list[str], study_dir: Path) -> None:
    """Print the summary table; draw the plots; write ``best.yaml`` (needs a complete trial)."""
    print(summary_table(study, space.metric), flush=True)
    for name, where in save_plots(study, study_dir / "plots").items():
        print(f"[tune] plot {name}: {where}")
    if not any(t.state == TrialState.COMPLETE for t in study.get_trials(deepcopy=False)):
        print("[tune] no complete trial: no best.yaml")
        return
    best = study.best_trial
    config = resolved_config([*base_args, *flags(best_values(study, space))])
    header = (
        f"# Best trial {best.number} of Optuna study {study.study_name!r}: {space.metric} = {best.value!r} "
        f"({space.direction}).\n# Its run: {best.user_attrs.get('run_dir')}. Train it again with "
        f"`python -m src.train --config {study_dir / 'best.yaml'}`.\n"
    )
    path = study_dir / "best.yaml"
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(header + dump(config))
    tmp.replace(path)  # workers finishing together each write the whole file
    print(f"[tune] best.yaml: {path}")


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str] | None = None) -> optuna.Study:
    """Run one worker of the study until it has ``--n_trials`` complete or pruned trials; report."""
    options, base_args = parse_args(argv)
    space = load_space(options.space)
    options.study = options.study or space.path.stem
    study_dir = Path(options.study_dir or Path("runs") / "tune" / options.study).resolve()
    options.storage = options.storage or default_storage(study_dir)
    check_keys(space, base_args)  # an unknown key fails here, before any trial
    study = open_study(options, space, base_args)
    runner = TrialRunner(space, base_args, study_dir, options.storage, options.n_trials, options.threads)
    done = (TrialState.COMPLETE, TrialState.PRUNED)
    signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        if len(study.get_trials(deepcopy=False, states=done)) < options.n_trials:
            study.optimize(
                runner,
                callbacks=[
                    MaxTrialsCallback(options.n_trials, states=done),
                    stop_after_failures(options.max_failures),
                ],
                catch=(TrialFailedError, OverBudgetError),
            )
    except KeyboardInterrupt:
        number = runner.retry_interrupted(study)
        again = f"; trial {number} is queued to resume its last.ckpt" if number is not None else ""
        print(f"[tune] stopped{again}. Run the same command to resume the study.", flush=True)
        sys.exit(128 + signal.SIGTERM)
    except MetricMissingError as error:
        raise SystemExit(f"{space.path}: {error}") from error
    write_outputs(study, space, base_args, study_dir)
    return study


if __name__ == "__main__":
    try:
        main()
    except (SearchSpaceError, ValueError) as error:  # a bad search space, storage or base run: no traceback
        sys.exit(f"python -m src.tune: error: {error}")
