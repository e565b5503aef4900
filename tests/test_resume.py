"""Resuming only the right run (issue 14, items 2, 4 and 8): ``--ckpt_path last|auto|FILE`` compare the run's saved
config with this one; output folders are checked before training; a failed run leaves no empty run directory."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from lightning.pytorch.loggers import CSVLogger

from src.cli import build_cli
from src.models import WGANGP
from src.train import main
from src.utils import resume
from src.utils.checkpoint import CheckpointMismatchError
from src.utils.csv_logger import ResumableCSVLogger
from src.utils.output_dirs import OutputNotWritableError, no_empty_run_dir, unwritable_reason
from src.utils.resume import RUN_CONFIG_KEY, config_differences
from tests.helpers import REPO_ROOT, TOY, run_cli

LR = "--model.critic_optimizer.init_args.lr=1e-3"


def _toy(save_dir: Path, *extra: str) -> list[str]:
    return [*TOY, f"--trainer.logger.init_args.save_dir={save_dir}", *extra]


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., str]:
    """The config that a toy run started with extra flags saves (``config.yaml``, every checkpoint's
    ``run_config``); where it wrote does not count, so one folder serves every test."""
    root, texts = tmp_path_factory.mktemp("saved"), {}

    def text(*extra: str) -> str:
        if extra not in texts:
            cli = build_cli(_toy(root, *extra))
            texts[extra] = cli.parser.dump(cli.config, skip_none=False)
        return texts[extra]

    return text


def _fake_run(runs: Path, version: str, config: str, age: float, in_checkpoint: bool = True) -> Path:
    """``runs/<version>/checkpoints/last.ckpt`` written ``age`` seconds ago, its config saved in it or beside."""
    ckpt = runs / version / "checkpoints" / "last.ckpt"
    ckpt.parent.mkdir(parents=True)
    if in_checkpoint:
        torch.save({RUN_CONFIG_KEY: config}, ckpt)
    else:  # a checkpoint without a saved config: the run directory's config.yaml is read
        torch.save({}, ckpt)
        (runs / version / "config.yaml").write_text(config)
    stamp = time.time() - age
    os.utime(ckpt, (stamp, stamp))
    return ckpt


# ------------------------------------------------------------------------------------ item 2: last and auto
def test_last_resumes_the_newest_run_of_this_configuration_not_the_newest_run(
    tmp_path: Path, saved: Callable[..., str]
) -> None:
    args = _toy(tmp_path)
    other = saved("--trainer.precision=bf16-mixed")
    mine = _fake_run(tmp_path / "toy", "version_0", saved(), age=100, in_checkpoint=False)
    _fake_run(tmp_path / "toy", "version_1", other, age=10)  # newer, other settings
    cli = build_cli([*args, "--ckpt_path", "last"])
    assert cli.config.ckpt_path == str(mine)
    assert isinstance(cli.trainer.logger, ResumableCSVLogger) and cli.trainer.logger.version == 0
    assert Path(cli.trainer.logger.log_dir) == tmp_path / "toy" / "version_0"


def test_last_with_only_other_runs_is_refused_naming_the_differences(
    tmp_path: Path, saved: Callable[..., str]
) -> None:
    args = _toy(tmp_path)
    _fake_run(tmp_path / "toy", "version_0", saved("--trainer.precision=bf16-mixed"), age=10)
    with pytest.raises(
        CheckpointMismatchError, match=r"trainer\.precision: 'bf16-mixed' in the run, None now"
    ):
        build_cli([*args, "--ckpt_path", "last"])
    assert sorted(p.name for p in (tmp_path / "toy").iterdir()) == ["version_0"]


def test_auto_resumes_a_matching_run_or_starts_a_new_one_saying_why(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, saved: Callable[..., str]
) -> None:
    said: list[str] = []
    monkeypatch.setattr(resume, "rank_zero_info", said.append)
    args = _toy(tmp_path)
    cli = build_cli([*args, "--ckpt_path", "auto"])  # nothing there yet
    assert cli.config.ckpt_path is None and said[-1].startswith("--ckpt_path auto: no checkpoint matches")
    _fake_run(tmp_path / "toy", "version_0", saved("--model.n_critic=3"), age=10)
    cli = build_cli([*args, "--ckpt_path", "auto"])
    assert cli.config.ckpt_path is None and Path(cli.trainer.logger.log_dir).name == "version_1"
    assert said[-1].endswith("n_critic: 3 in the run, 2 now); starting a new run.")
    mine = _fake_run(tmp_path / "toy", "version_1", saved(), age=20)
    assert build_cli([*args, "--ckpt_path", "auto"]).config.ckpt_path == str(mine)


def test_the_run_length_may_change_and_a_random_seed_matches_any_seed(
    tmp_path: Path, saved: Callable[..., str]
) -> None:
    args = _toy(tmp_path)
    ckpt = _fake_run(tmp_path / "toy", "version_0", saved("--seed_everything=7"), age=10)
    longer = ["--model.max_generator_steps=9", "--trainer.max_epochs=3", "--checkpoint.every_n_epochs=2"]
    random_seed = "--seed_everything=true"  # the default is seed 0
    assert build_cli([*args, *longer, random_seed, "--ckpt_path", "last"]).config.ckpt_path == str(ckpt)
    with pytest.raises(CheckpointMismatchError, match=r"seed_everything: 7 in the run, 8 now"):
        build_cli([*args, "--seed_everything=8", "--ckpt_path", "last"])


def test_under_slurm_auto_leaves_lightnings_requeue_checkpoint_to_lightning_if_it_matches(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, saved: Callable[..., str]
) -> None:
    monkeypatch.setattr(resume.SLURMEnvironment, "detect", staticmethod(lambda: True))
    args = _toy(tmp_path, f"--trainer.default_root_dir={tmp_path}")
    _fake_run(tmp_path / "toy", "version_0", saved(), age=100)
    requeued = tmp_path / "hpc_ckpt_2.ckpt"  # what Lightning saved on SIGUSR1 before requeueing the job
    torch.save({RUN_CONFIG_KEY: saved()}, requeued)
    torch.save({RUN_CONFIG_KEY: saved()}, tmp_path / "hpc_ckpt_1.ckpt")
    cli = build_cli([*args, "--ckpt_path", "auto"])
    assert cli.config.ckpt_path is None and cli.resumed == requeued  # Lightning loads hpc_ckpt_2 itself
    torch.save({RUN_CONFIG_KEY: saved("--model.n_critic=3")}, requeued)
    with pytest.raises(
        CheckpointMismatchError, match=r"requeue checkpoint .*hpc_ckpt_2.ckpt.*n_critic: 3 in"
    ):
        build_cli([*args, "--ckpt_path", "auto"])


def test_config_differences_ignore_bookkeeping_and_list_the_rest() -> None:
    saved = {
        "ckpt_path": "a.ckpt",
        "trainer": {
            "logger": {"class_path": "src.utils.csv_logger.ResumableCSVLogger", "init_args": {"version": 0}}
        },
        "model": {"init_args": {"max_generator_steps": 5, "n_critic": 5}},
    }
    current = {
        "ckpt_path": "last",
        "trainer": {
            "logger": {"class_path": "lightning.pytorch.loggers.CSVLogger", "init_args": {"version": None}}
        },
        "model": {"init_args": {"max_generator_steps": 9, "n_critic": 1}},
    }
    differences, length = config_differences(saved, current)
    assert differences == ["model.init_args.n_critic: 5 in the run, 1 now"]
    assert length == ["model.init_args.max_generator_steps: 5 in the run, 9 now"]


# ---------------------------------------------------------------------------- item 4: changed hyperparameters
def test_resuming_with_a_changed_learning_rate_is_refused_listing_it(
    tmp_path: Path, saved: Callable[..., str]
) -> None:
    """The restored optimizer would keep lr 1e-4 while config.yaml says 1e-3: refuse, naming the setting."""
    args = _toy(tmp_path)
    ckpt = _fake_run(tmp_path / "toy", "version_0", saved(), age=10)
    difference = r"model\.init_args\.critic_optimizer\.init_args\.lr: 0\.0001 in the run, 0\.001 now"
    with pytest.raises(CheckpointMismatchError, match=difference):
        build_cli([*args, LR, "--ckpt_path", "last"])
    with pytest.raises(CheckpointMismatchError, match=difference):  # src.train checks a file before fit
        build_cli([*args, LR, f"--ckpt_path={ckpt}"]).check_before_training()
    build_cli([*args, "--model.max_generator_steps=9", f"--ckpt_path={ckpt}"]).check_before_training()


# ----------------------------------------------------------------------------------- item 8: output folders
def test_an_unwritable_checkpoint_folder_fails_before_anything_is_built(tmp_path: Path) -> None:
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    with pytest.raises(
        OutputNotWritableError, match=r"--checkpoint\.dirpath=.*a_file/ckpts: .*is not a folder"
    ):
        main(_toy(tmp_path, f"--checkpoint.dirpath={blocker}/ckpts"))
    assert not (tmp_path / "toy").exists()


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_a_read_only_folder_is_unwritable(tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o555)
    assert "is not writable" in (unwritable_reason(locked / "ckpts") or "")
    with pytest.raises(OutputNotWritableError, match=r"--checkpoint\.dirpath"):
        build_cli(_toy(tmp_path, f"--checkpoint.dirpath={locked}/ckpts")).check_before_training()


def test_default_root_dir_is_the_root_of_the_run_directory(tmp_path: Path) -> None:
    cli = build_cli([*TOY, f"--trainer.default_root_dir={tmp_path}"])  # the logger's save_dir stays "runs"
    assert Path(cli.trainer.log_dir) == tmp_path / "runs" / "toy" / "version_0"
    elsewhere = tmp_path / "elsewhere"
    cli = build_cli(
        [*TOY, f"--trainer.default_root_dir={tmp_path}", f"--trainer.logger.init_args.save_dir={elsewhere}"]
    )
    assert Path(cli.trainer.log_dir) == elsewhere / "toy" / "version_0"  # an absolute save_dir is kept


def test_a_run_that_fails_after_parsing_leaves_no_empty_run_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def fail(self: WGANGP) -> None:
        raise RuntimeError("configure_optimizers failed")

    monkeypatch.setattr(
        WGANGP, "configure_optimizers", fail
    )  # after config.yaml and hparams.yaml are written
    with pytest.raises(RuntimeError, match="configure_optimizers failed"):
        main(_toy(tmp_path / "runs", "--model.max_generator_steps=1"))
    assert not (tmp_path / "runs").exists()


def test_a_run_directory_with_results_or_from_before_is_kept(tmp_path: Path) -> None:
    class Trainer:  # what no_empty_run_dir reads
        is_global_zero = True

        def __init__(self, logger: object) -> None:
            self.logger = logger

    fresh = CSVLogger(tmp_path, name="run")
    with pytest.raises(ValueError), no_empty_run_dir(Trainer(fresh)):  # type: ignore[arg-type]
        Path(fresh.log_dir).mkdir(parents=True)
        (Path(fresh.log_dir) / "metrics.csv").write_text("step\n0\n")
        raise ValueError
    assert (Path(fresh.log_dir) / "metrics.csv").is_file()
    existing = CSVLogger(tmp_path, name="run", version=0)  # a resumed run's directory: never removed
    (Path(existing.log_dir) / "metrics.csv").unlink()
    with pytest.raises(ValueError), no_empty_run_dir(Trainer(existing)):  # type: ignore[arg-type]
        raise ValueError
    assert Path(existing.log_dir).is_dir()


# ------------------------------------------------------------------------------- the reproduction
def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.heavy
@pytest.mark.slow
def test_last_never_takes_over_an_other_run_and_auto_starts_fresh(tmp_path: Path) -> None:
    """Issue 14, item 2: run A; run B killed before its first checkpoint; B's ``--ckpt_path last`` must not
    restore A nor write into A's folder; ``--ckpt_path auto`` starts fresh, then resumes its own run."""
    run_a = run_cli(
        _toy(
            tmp_path,
            "--model.max_generator_steps=2",
            "--trainer.max_epochs=1",
            "--trainer.precision=16-mixed",
        )
    )
    assert run_a.returncode == 0
    a = tmp_path / "toy" / "version_0"
    assert RUN_CONFIG_KEY in torch.load(a / "checkpoints" / "last.ckpt", weights_only=True)
    before = {
        p.name: _sha(p) for p in [a / "config.yaml", a / "metrics.csv", a / "checkpoints" / "last.ckpt"]
    }

    b_args = _toy(tmp_path, "--model.max_generator_steps=2000", "--data.batches_per_epoch=1000000")
    log = tmp_path / "b.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "src.train", *b_args], cwd=REPO_ROOT, stdout=out, stderr=out
        )
    deadline = time.monotonic() + 180
    while not (tmp_path / "toy" / "version_1" / "config.yaml").is_file():
        assert proc.poll() is None and time.monotonic() < deadline, log.read_text()[-3000:]
        time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert not list((tmp_path / "toy" / "version_1").rglob("*.ckpt"))  # killed before its first checkpoint

    resumed = subprocess.run(
        [sys.executable, "-m", "src.train", *b_args, "--ckpt_path", "last"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert resumed.returncode != 0 and "CheckpointMismatchError" in resumed.stderr
    assert "trainer.precision: '16-mixed' in the run, None now" in resumed.stderr
    assert {
        p.name: _sha(p) for p in [a / "config.yaml", a / "metrics.csv", a / "checkpoints" / "last.ckpt"]
    } == before

    short = [*b_args, "--model.max_generator_steps=2", "--ckpt_path", "auto"]  # the run length may change
    fresh = run_cli(short)
    assert "--ckpt_path auto: none of the 1 checkpoints" in fresh.stdout + fresh.stderr
    c = tmp_path / "toy" / "version_2"
    assert torch.load(c / "checkpoints" / "last.ckpt", weights_only=True)["wgan_gp"]["generator_steps"] == 2
    again = run_cli([*short[:-3], "--model.max_generator_steps=3", "--ckpt_path", "auto"])  # a requeued job
    assert f"--ckpt_path auto: resuming {c / 'checkpoints' / 'last.ckpt'}" in again.stdout + again.stderr
    assert torch.load(c / "checkpoints" / "last.ckpt", weights_only=True)["wgan_gp"]["generator_steps"] == 3
    assert sorted(p.name for p in (tmp_path / "toy").iterdir()) == ["version_0", "version_1", "version_2"]
    assert {
        p.name: _sha(p) for p in [a / "config.yaml", a / "metrics.csv", a / "checkpoints" / "last.ckpt"]
    } == before
