"""``python -m src.tune``: an Optuna study over CLI keys, its workers, pruning, resuming and best.yaml."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
import yaml
from optuna.trial import TrialState

from src.tune import main as tune_main
from src.tuning.objective import combine
from src.tuning.space import SearchSpaceError, load_space
from src.tuning.trial import SKIPPED, last_logged
from tests.helpers import REPO_ROOT, TOY_TUNE, run_cli

SPACE = {
    "objective": {"metric": "val/w1", "direction": "minimize"},
    "pruner": None,
    "params": {
        "model.critic_optimizer.init_args.lr": {
            "distribution": "log_uniform",
            "low": 1e-4,
            "high": 1e-2,
            "same_as": ["model.generator_optimizer.init_args.lr"],
        },
        "model.n_critic": {"distribution": "int", "low": 1, "high": 3},
        "regularizer.init_args.weight": {"distribution": "categorical", "choices": [0.1, 1.0]},
    },
}


def _space(tmp_path: Path, **changes) -> Path:
    path = tmp_path / "space.yaml"
    path.write_text(yaml.safe_dump({**SPACE, **changes}))
    return path


def _tune_args(tmp_path: Path, space: Path, n_trials: int, *extra: str) -> list[str]:
    return [
        "--space", str(space), "--study", "s", "--study_dir", str(tmp_path / "s"), "--n_trials", str(n_trials),
        *TOY_TUNE, f"--trainer.default_root_dir={tmp_path}", *extra,
    ]  # fmt: skip


def _study(tmp_path: Path) -> optuna.Study:
    return optuna.load_study(study_name="s", storage=f"sqlite:///{tmp_path / 's'}.db")


def _check_complete_trials(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    """Each complete trial's value is its own run's last val/w1, in its own run directory."""
    complete = study.get_trials(states=(TrialState.COMPLETE,))
    dirs = [t.user_attrs["run_dir"] for t in complete]
    assert len(set(dirs)) == len(dirs), dirs
    for t in complete:
        assert t.value == pytest.approx(last_logged(Path(t.user_attrs["run_dir"]) / "metrics.csv", "val/w1"))
        config = yaml.safe_load((Path(t.user_attrs["run_dir"]) / "config.yaml").read_text())
        assert config["model"]["init_args"]["n_critic"] == t.params["model.n_critic"]
    return complete


def test_search_space_file_errors_name_the_entry(tmp_path: Path) -> None:
    bad = {"x.lr": {"distribution": "loguniform", "low": 1e-4, "high": 1e-2}}
    with pytest.raises(SearchSpaceError, match=r"params\.x\.lr\.distribution must be one of log_uniform"):
        load_space(_space(tmp_path, params=bad))
    bad = {"x.lr": {"distribution": "uniform", "low": 1.0, "high": 0.5}}
    with pytest.raises(SearchSpaceError, match=r"params\.x\.lr: uniform needs numbers low < high"):
        load_space(_space(tmp_path, params=bad))
    with pytest.raises(SearchSpaceError, match="objective needs a logged metric and a direction"):
        load_space(_space(tmp_path, objective={"metric": "val/w1", "direction": "down"}))
    for name in ("toy", "digits"):  # the shipped spaces parse
        assert load_space(REPO_ROOT / "configs" / "tune" / f"{name}.yaml").params


def test_an_objective_may_be_the_min_of_two_metrics(tmp_path: Path) -> None:
    space = load_space(
        _space(tmp_path, objective={"metric": "min(test/precision, test/recall)", "direction": "maximize"})
    )
    assert space.prune_on == "min(val/precision, val/recall)"  # the pruner watches the same on val
    metrics = tmp_path / "metrics.csv"
    metrics.write_text("step,test/precision,test/recall\n10,0.9,0.2\n20,0.55,0.8\n")
    value = combine(space.metric, lambda name: last_logged(metrics, name))
    assert value == pytest.approx(0.55)  # the last row's weaker side
    assert combine("mean(a, b)", {"a": 1.0, "b": 2.0}.get) == 1.5
    assert combine(space.metric, {"test/precision": 0.9}.get) is None  # one side never logged
    with pytest.raises(
        SearchSpaceError, match=r"objective\.metric 'median\(a, b\)': use one logged metric or min"
    ):
        load_space(_space(tmp_path, objective={"metric": "median(a, b)", "direction": "maximize"}))


def test_unknown_key_fails_before_any_trial(tmp_path: Path) -> None:
    params = {**SPACE["params"], "model.learning_rate": {"distribution": "uniform", "low": 0.1, "high": 0.2}}
    with pytest.raises(
        SearchSpaceError, match=r"does not accept model\.learning_rate .*print_config"
    ) as error:
        tune_main(_tune_args(tmp_path, _space(tmp_path, params=params), 1))
    assert "model.n_critic" not in str(error.value)  # only the wrong key is named
    assert not (tmp_path / "s.db").exists() and not (tmp_path / "s").exists()  # no study, no trial


@pytest.mark.slow
def test_tiny_study_end_to_end_and_best_yaml_reproduces(tmp_path: Path) -> None:
    proc = run_cli(_tune_args(tmp_path, _space(tmp_path), 3), module="src.tune")
    study = _study(tmp_path)
    complete = _check_complete_trials(study)
    assert len(complete) == 3 and {t.number for t in complete} == {0, 1, 2}
    assert "* best: trial" in proc.stdout and "[tune] best.yaml:" in proc.stdout  # the summary table
    for plot in ("history", "importances", "slice"):
        assert (tmp_path / "s" / "plots" / f"{plot}.png").stat().st_size > 5000
    best_yaml = tmp_path / "s" / "best.yaml"
    config = yaml.safe_load(best_yaml.read_text())
    assert config["model"]["init_args"]["n_critic"] == study.best_params["model.n_critic"]
    lr = study.best_params["model.critic_optimizer.init_args.lr"]
    assert config["model"]["init_args"]["generator_optimizer"]["init_args"]["lr"] == lr  # same_as
    assert config["trainer"]["callbacks"] is None  # no pruning callback, no study
    trained = run_cli(["--config", str(best_yaml)])
    out = trained.stdout + trained.stderr
    run_dir = Path(out.rsplit("Run directory: ", 1)[1].split()[0])
    assert last_logged(run_dir / "metrics.csv", "val/w1") == pytest.approx(study.best_value, rel=1e-6)


@pytest.mark.slow
def test_two_workers_finish_n_trials_none_lost_or_twice(tmp_path: Path) -> None:
    args = [sys.executable, "-m", "src.tune", *_tune_args(tmp_path, _space(tmp_path), 4)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    workers = [
        subprocess.Popen(
            args, cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        for _ in range(2)
    ]
    outputs = [w.communicate(timeout=600)[0] for w in workers]
    assert all(w.returncode == 0 for w in workers), outputs[0][-3000:] + outputs[1][-3000:]
    study = _study(tmp_path)
    complete = _check_complete_trials(study)
    assert len(complete) == 4
    others = [t for t in study.get_trials() if t.state != TrialState.COMPLETE]
    assert all(SKIPPED in t.user_attrs for t in others), others  # at most a trial asked for after the 4th
    ran = [
        int(line.split()[2].rstrip(":"))
        for out in outputs
        for line in out.splitlines()
        if line.startswith("[tune] trial ")
    ]
    assert sorted(ran) == sorted(t.number for t in complete)  # each trial run by one worker, once
    assert all(any(line.startswith("[tune] trial ") for line in out.splitlines()) for out in outputs)


@pytest.mark.slow
def test_a_trial_is_pruned_at_an_evaluation(tmp_path: Path) -> None:
    pruner = {"class_path": "optuna.pruners.ThresholdPruner", "init_args": {"upper": 0.0}}  # W1 > 0 prunes
    run_cli(_tune_args(tmp_path, _space(tmp_path, pruner=pruner), 1), module="src.tune")
    (trial,) = _study(tmp_path).get_trials()
    assert trial.state == TrialState.PRUNED
    step = trial.user_attrs["pruned_at_generator_step"]
    assert list(trial.intermediate_values) == [step] and step < 15  # the first evaluation, not the end
    metrics = (Path(trial.user_attrs["run_dir"]) / "metrics.csv").read_text()
    assert "val/w1" in metrics and (Path(trial.user_attrs["run_dir"]) / "checkpoints" / "last.ckpt").is_file()


def _wait_for_no_process_naming(text: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        alive = []
        for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
            try:
                alive.append(text in cmdline.read_bytes().decode(errors="replace"))
            except OSError:
                continue
        if not any(alive):
            return
        time.sleep(0.5)
    raise AssertionError(f"a process naming {text} still runs after {timeout} s")


@pytest.mark.slow
@pytest.mark.parametrize(
    "how",
    [
        pytest.param(signal.SIGTERM, id="sigterm"),
        pytest.param(signal.SIGKILL, id="sigkill", marks=pytest.mark.heavy),  # waits out the heartbeats too
    ],
)
def test_killed_study_resumes_the_killed_trial(tmp_path: Path, how: signal.Signals) -> None:
    slow = (
        '--trainer.callbacks+={"class_path": "tests.slow_epochs.SlowEpochs", "init_args": {"seconds": 0.4}}'
    )
    args = [
        *_tune_args(tmp_path, _space(tmp_path), 2, "--model.max_generator_steps=40", slow),
        "--heartbeat",
        "1",
    ]
    first = subprocess.Popen(
        [sys.executable, "-m", "src.tune", *args],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    last = tmp_path / "s" / "trial_0" / "checkpoints" / "last.ckpt"
    deadline = time.monotonic() + 300
    while not last.is_file() and first.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    first.send_signal(how)
    out = first.communicate(timeout=300)[0]
    _wait_for_no_process_naming(str(tmp_path))  # the trial's run stops with its worker, even on SIGKILL
    if how == signal.SIGTERM:
        assert first.returncode == 128 + signal.SIGTERM, out[-3000:]
        assert "trial 0 is queued to resume" in out
        assert _study(tmp_path).get_trials()[0].state == TrialState.FAIL
    else:  # the trial stays RUNNING until the next worker misses 4 of its heartbeats
        assert _study(tmp_path).get_trials()[0].state == TrialState.RUNNING
        time.sleep(4)
    killed = _study(tmp_path).get_trials()[0]
    run_cli(args, module="src.tune")
    study = _study(tmp_path)
    complete = _check_complete_trials(study)
    assert len(complete) == 2
    assert study.get_trials()[0].state == TrialState.FAIL
    retried = next(t for t in complete if t.system_attrs.get("failed_trial") == 0)
    assert retried.params == killed.params and retried.user_attrs["run_dir"] == killed.user_attrs["run_dir"]
    run_dir = Path(killed.user_attrs["run_dir"])
    log = run_dir.with_name(f"{run_dir.name}.log").read_text()
    assert f"--ckpt_path={last}" in log and "Restoring states from the checkpoint" in log


def test_storage_specs_open_sqlite_and_journal_files(tmp_path: Path) -> None:
    from optuna.storages import RDBStorage
    from optuna.storages.journal import JournalStorage

    from src.tuning.storage import default_storage, open_storage

    assert default_storage(tmp_path / "runs" / "tune" / "s") == f"sqlite:///{tmp_path}/runs/tune/s.db"
    for spec, kind in (
        (f"sqlite:///{tmp_path}/a/s.db", RDBStorage),
        (f"journal:{tmp_path}/b/s.log", JournalStorage),
        (str(tmp_path / "c" / "s.log"), JournalStorage),
    ):
        storage = open_storage(spec, heartbeat_s=5)
        assert isinstance(storage, kind), spec
        study = optuna.create_study(study_name="s", storage=storage)
        study.enqueue_trial({"x": 1})
        assert len(optuna.load_study(study_name="s", storage=open_storage(spec)).get_trials()) == 1
    with pytest.raises(ValueError, match="--storage 'nosuchdb://x' cannot be opened"):
        open_storage("nosuchdb://x")
