"""Runs that survive faults: SIGKILL and resume, SIGTERM/SIGUSR1 preemption, divergence, wrong checkpoints."""

from __future__ import annotations

import math
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import torch
from lightning.pytorch.plugins.io import TorchCheckpointIO

from src.cli import build_cli
from src.utils.atomic_io import AtomicCheckpointIO
from src.utils.checkpoint import CheckpointMismatchError, newest_last_checkpoint
from src.utils.csv_logger import ResumableCSVLogger
from src.utils.divergence import TrainingDivergedError
from tests.faulty_nets import NaNAfterCritic
from tests.helpers import REPO_ROOT, TOY, run_cli, start_train, toy_data, toy_model, trainer, wait_for


def _toy(save_dir: Path, *extra: str) -> list[str]:
    return [*TOY, f"--trainer.logger.init_args.save_dir={save_dir}", *extra]


def _load(path: Path) -> dict:
    return torch.load(path, weights_only=True)


@pytest.mark.slow
def test_sigkill_then_resume_last_continues_exactly_as_a_straight_run(tmp_path: Path) -> None:
    args = ["--model.max_generator_steps=150"]
    run_cli(_toy(tmp_path / "straight", *args))
    straight = _load(tmp_path / "straight/toy/version_0/checkpoints/last.ckpt")

    root = tmp_path / "killed"
    log = tmp_path / "killed.log"
    proc = start_train(_toy(root, *args), log)
    last = wait_for("toy/version_0/checkpoints/last.ckpt", root, proc, log)
    assert proc.poll() is None, "the run finished before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    killed_at = _load(last)["wgan_gp"]["generator_steps"]
    assert 0 < killed_at < 150

    proc = run_cli(_toy(root, *args, "--ckpt_path", "last"))
    assert f"Restored all states from the checkpoint at {last}" in proc.stdout + proc.stderr
    assert sorted(p.name for p in (root / "toy").iterdir()) == ["version_0"]  # the same run directory
    resumed = _load(last)
    assert resumed["wgan_gp"]["generator_steps"] == straight["wgan_gp"]["generator_steps"] == 150
    assert resumed["global_step"] == straight["global_step"]
    for name, value in straight["state_dict"].items():  # weights, fixed sample noise (and EMA when present)
        assert torch.equal(resumed["state_dict"][name], value), name
    for opt_resumed, opt_straight in zip(resumed["optimizer_states"], straight["optimizer_states"]):
        for key, state in opt_straight["state"].items():
            for field, value in state.items():
                assert torch.equal(opt_resumed["state"][key][field], value), (key, field)
    assert torch.equal(resumed["wgan_gp"]["rng"]["torch"], straight["wgan_gp"]["rng"]["torch"])
    assert resumed["lr_schedulers"] == straight["lr_schedulers"]


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGUSR1])
def test_preemption_signal_writes_a_resumable_checkpoint_before_exit(tmp_path: Path, signum: int) -> None:
    # One long epoch: ModelCheckpoint saves every 20 steps (without last.ckpt), so only the signal writes last.ckpt.
    args = _toy(
        tmp_path,
        "--data.batches_per_epoch=100000",
        "--checkpoint.every_n_train_steps=20",
        "--checkpoint.save_last=false",
    )
    log = tmp_path / "run.log"
    proc = start_train(args, log)
    wait_for("toy/version_0/checkpoints/epoch=0-step=*.ckpt", tmp_path, proc, log)
    proc.send_signal(signum)
    assert proc.wait(timeout=60) == 128 + signal.SIGTERM, log.read_text()[-3000:]
    last = tmp_path / "toy/version_0/checkpoints/last.ckpt"
    assert "Stopped by a signal: saved" in log.read_text() and last.is_file()
    saved = _load(last)
    assert saved["wgan_gp"]["generator_steps"] >= 10 and saved["epoch"] == 0  # mid-epoch
    if signum == signal.SIGTERM:  # and it resumes, mid-epoch, to two more generator steps
        target = saved["wgan_gp"]["generator_steps"] + 2
        proc = run_cli(
            _toy(
                tmp_path,
                "--data.batches_per_epoch=100000",
                "--ckpt_path",
                "last",
                f"--model.max_generator_steps={target}",
            )
        )
        assert f"Restored all states from the checkpoint at {last}" in proc.stdout + proc.stderr
        newest = newest_last_checkpoint([last.parent])  # last-v1.ckpt: this run's ModelCheckpoint differs
        assert newest is not None and _load(newest)["wgan_gp"]["generator_steps"] == target


def test_nan_loss_stops_the_run_naming_the_step_and_keeps_the_last_good_checkpoint(tmp_path: Path) -> None:
    # 3 critic calls per critic step and 1 per generator step: 70 finite calls last into the third epoch
    args = _toy(
        tmp_path,
        "--model.critic=tests.faulty_nets.NaNAfterCritic",
        "--model.critic.init_args.nan_after=70",
        "--model.critic.init_args.hidden_dim=16",
    )
    proc = subprocess.run(
        [sys.executable, "-m", "src.train", *args],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert proc.returncode != 0
    match = re.search(
        r"TrainingDivergedError: Training diverged at critic step (\d+) \(after generator step (\d+)\): "
        r"critic_loss = nan",
        proc.stderr,
    )
    assert match, proc.stderr[-3000:]
    ckpts = sorted((tmp_path / "toy/version_0/checkpoints").glob("*.ckpt"))
    assert any(c.name == "last.ckpt" for c in ckpts)
    assert f"The last good checkpoint is {tmp_path}/toy/version_0/checkpoints/last.ckpt" in proc.stderr
    for ckpt in ckpts:
        saved = _load(ckpt)
        assert saved["wgan_gp"]["critic_steps"] < int(match.group(1))
        assert all(torch.isfinite(v).all() for v in saved["state_dict"].values()), ckpt.name


def test_nan_loss_raises_before_the_optimizer_step(tmp_path: Path) -> None:
    model = toy_model(n_critic=2)
    model.critic = NaNAfterCritic(hidden_dim=32, nan_after=7)  # the third critic step's first call is NaN
    before = {k: v.clone() for k, v in model.critic.state_dict().items()}
    t = trainer(tmp_path, max_epochs=1)
    with pytest.raises(
        TrainingDivergedError, match=r"critic step 3 \(after generator step 1\): critic_loss = nan"
    ):
        t.fit(model, toy_data(10))
    assert model.critic_steps == 2
    assert all(torch.isfinite(p).all() for p in model.parameters())
    assert any(not torch.equal(before[k], v) for k, v in model.critic.state_dict().items())


def test_a_checkpoint_with_nan_weights_is_never_written(tmp_path: Path) -> None:
    model = toy_model(n_critic=1, max_generator_steps=1)
    t = trainer(tmp_path)
    t.fit(model, toy_data(4))
    t.save_checkpoint(tmp_path / "good.ckpt")
    with torch.no_grad():
        model.generator.net[0].weight[0, 0] = math.inf
    with pytest.raises(TrainingDivergedError, match=r"generator\.net\.0\.weight contain NaN or Inf"):
        t.save_checkpoint(tmp_path / "bad.ckpt")
    assert (tmp_path / "good.ckpt").is_file() and not (tmp_path / "bad.ckpt").exists()


def test_resuming_a_toy_checkpoint_with_the_digits_config_names_the_mismatch(tmp_path: Path) -> None:
    model = toy_model(n_critic=1, max_generator_steps=1)
    t = trainer(tmp_path)
    t.fit(model, toy_data(2))
    ckpt = tmp_path / "toy.ckpt"
    t.save_checkpoint(ckpt)
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "src.train",
            "--model.max_generator_steps=1",
            f"--ckpt_path={ckpt}",
            f"--trainer.logger.init_args.save_dir={tmp_path}",
            "--trainer.enable_progress_bar=false",
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert proc.returncode != 0
    assert "CheckpointMismatchError" in proc.stderr and "different model configuration" in proc.stderr
    assert str(ckpt) in proc.stderr and "not in this model: generator.net.0.weight" in proc.stderr
    assert "It was trained on data(dataset=25gaussians" in proc.stderr


def test_mismatch_is_detected_in_process(tmp_path: Path) -> None:
    model = toy_model(n_critic=1, max_generator_steps=1, hidden=32)
    t = trainer(tmp_path)
    t.fit(model, toy_data(2))
    t.save_checkpoint(tmp_path / "a.ckpt")
    other = toy_model(n_critic=1, max_generator_steps=2, hidden=8)
    with pytest.raises(CheckpointMismatchError, match=r"\(32, 2\) in the checkpoint, \(8, 2\) here"):
        trainer(tmp_path).fit(other, toy_data(2), ckpt_path=tmp_path / "a.ckpt", weights_only=True)


def _fake_run(root: Path, version: str, age: float, config: str) -> Path:
    """A run directory with a last.ckpt (holding no run config) and the config.yaml that ``--ckpt_path last``
    compares instead."""
    ckpt = root / version / "checkpoints" / "last.ckpt"
    ckpt.parent.mkdir(parents=True)
    torch.save({}, ckpt)
    (root / version / "config.yaml").write_text(config)
    stamp = time.time() - age
    os.utime(ckpt, (stamp, stamp))
    return ckpt


def test_ckpt_path_last_finds_the_newest_run_and_logs_into_it(tmp_path: Path) -> None:
    started = build_cli(_toy(tmp_path))  # what these runs wrote to their config.yaml
    config = started.parser.dump(started.config, skip_none=False)
    _fake_run(tmp_path / "toy", "version_0", age=100, config=config)
    newest = _fake_run(tmp_path / "toy", "version_2", age=10, config=config)
    _fake_run(tmp_path / "toy", "version_1", age=50, config=config)
    cli = build_cli([*_toy(tmp_path), "--ckpt_path", "last"])
    assert cli.config.ckpt_path == str(newest)
    assert isinstance(cli.trainer.logger, ResumableCSVLogger) and cli.trainer.logger.version == 2
    assert Path(cli.trainer.logger.log_dir) == tmp_path / "toy" / "version_2"

    explicit = _fake_run(tmp_path / "elsewhere", "x", age=0, config=config)
    cli = build_cli([*_toy(tmp_path), "--ckpt_path", "last", f"--checkpoint.dirpath={explicit.parent}"])
    assert cli.config.ckpt_path == str(explicit)


def test_ckpt_path_last_without_a_checkpoint_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(
        FileNotFoundError, match=r"--ckpt_path last: no checkpoint matches .*toy/\*/checkpoints"
    ):
        build_cli([*_toy(tmp_path), "--ckpt_path", "last"])


def test_resumable_csv_logger_appends_to_metrics(tmp_path: Path) -> None:
    first = ResumableCSVLogger(tmp_path, name="run", version=0)
    first.log_metrics({"a": 1.0}, step=0)
    first.save()
    second = ResumableCSVLogger(tmp_path, name="run", version=0)
    second.log_metrics({"a": 2.0, "b": 3.0}, step=1)
    second.save()
    lines = (tmp_path / "run" / "version_0" / "metrics.csv").read_text().splitlines()
    assert lines == ["a,b,step", "1.0,,0", "2.0,3.0,1"]


class _Unpicklable:
    def __reduce__(self) -> tuple:
        raise RuntimeError("cannot pickle this")


def test_atomic_checkpoint_io_never_leaves_a_partial_file(tmp_path: Path) -> None:
    io = AtomicCheckpointIO()
    target = tmp_path / "checkpoints" / "last.ckpt"
    io.save_checkpoint({"w": torch.ones(3)}, target)
    io.save_checkpoint({"w": torch.zeros(3)}, target)
    assert torch.equal(_load(target)["w"], torch.zeros(3))
    with pytest.raises(RuntimeError, match="cannot pickle this"):  # a save that dies half-way
        io.save_checkpoint({"w": torch.full((3,), 7.0), "x": _Unpicklable()}, target)
    assert torch.equal(_load(target)["w"], torch.zeros(3))  # the previous checkpoint is intact
    assert [p.name for p in target.parent.iterdir()] == ["last.ckpt"]  # and no temporary file is left


def test_atomic_checkpoint_io_writes_beside_the_target_not_in_the_system_temp_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Lightning's stock writer stages the file in the system temp dir and moves it: across filesystems (a
    # node-local /tmp, a shared run dir) that move is a copy a kill can cut short. Ours never leaves the folder.
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "elsewhere"))  # a temp dir the writer cannot use
    target = tmp_path / "run" / "last.ckpt"
    with pytest.raises(FileNotFoundError, match="elsewhere"):
        TorchCheckpointIO().save_checkpoint({"w": torch.ones(3)}, target)
    renames: list[tuple[Path, Path]] = []
    replace = os.replace
    monkeypatch.setattr(os, "replace", lambda a, b: (renames.append((Path(a), Path(b))), replace(a, b))[1])
    AtomicCheckpointIO().save_checkpoint({"w": torch.ones(3)}, target)
    assert torch.equal(_load(target)["w"], torch.ones(3))
    assert [(a.parent, b) for a, b in renames] == [(target.parent, target)]


def test_the_cli_saves_checkpoints_atomically(tmp_path: Path) -> None:
    cli = build_cli(_toy(tmp_path))
    assert isinstance(cli.trainer.strategy.checkpoint_io, AtomicCheckpointIO)
