"""Reliability, round 2 (issue 22): runs that start together, finished runs, Ctrl-C, files a fault cuts short.

Where a case is about several processes, the test starts several processes. Every run here is a tiny toy run
(``tests.helpers.TOY``).
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
import wandb
import yaml

from src.callbacks import PreemptionCheckpoint
from src.load_run import load_run
from src.train import main
from src.utils.output_dirs import RunDirectoryTakenError, run_directory
from tests.helpers import REPO_ROOT, TOY, start_train, wait_for

# Runs `python -m src.train ARGS` after a barrier: every process waits, once built, until all have arrived, so
# that they reach the run directory at the same moment (as a job array or a sweep's workers do at best).
TOGETHER = textwrap.dedent(
    """
    import os, sys, time
    from pathlib import Path
    barrier, count, args = Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3:]
    from src.cli import WGANCLI
    from src.train import end_distributed, main
    checked = WGANCLI.check_before_training
    def check_then_wait(self):
        checked(self)
        (barrier / f"ready-{os.getpid()}").touch()
        while len(list(barrier.glob("ready-*"))) < count:
            time.sleep(0.001)
    WGANCLI.check_before_training = check_then_wait
    try:
        main(args)
    finally:
        end_distributed()
    """
)


def _toy(save_dir: Path, *extra: str) -> list[str]:
    return [*TOY, f"--trainer.logger.init_args.save_dir={save_dir}", *extra]


def _env() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore", "PYTHONPATH": str(REPO_ROOT)}


def _start_together(runs: list[list[str]], barrier: Path, logs: Path) -> list[subprocess.CompletedProcess]:
    """Start one process per argument list at once, released together by a barrier; wait for all."""
    barrier.mkdir(parents=True, exist_ok=True)
    procs = []
    for i, args in enumerate(runs):
        out = (logs / f"run{i}.log").open("w")
        procs.append(
            (
                subprocess.Popen(
                    [sys.executable, "-c", TOGETHER, str(barrier), str(len(runs)), *args],
                    cwd=REPO_ROOT,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    env=_env(),
                ),
                out,
                logs / f"run{i}.log",
            )
        )
    done = []
    for proc, out, log in procs:
        rc = proc.wait(timeout=300)
        out.close()
        done.append(subprocess.CompletedProcess(proc.args, rc, log.read_text(), ""))
    return done


# ------------------------------------------------------------------ item 1: runs started together, one save_dir
@pytest.mark.slow
def test_two_runs_started_together_get_their_own_run_directories(tmp_path: Path) -> None:
    runs = [_toy(tmp_path, f"--seed_everything={seed}", "--model.max_generator_steps=10") for seed in (1, 2)]
    results = _start_together(runs, tmp_path / "barrier", tmp_path)
    for result in results:
        assert result.returncode == 0, result.stdout[-3000:]
    versions = sorted(p.name for p in (tmp_path / "toy").iterdir())
    assert versions == ["version_0", "version_1"], versions
    seeds = set()
    for version in versions:
        run = tmp_path / "toy" / version
        seed = yaml.safe_load((run / "config.yaml").read_text())["seed_everything"]
        saved = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)
        assert yaml.safe_load(saved["run_config"])["seed_everything"] == seed  # its own run's files
        header, *rows = (run / "metrics.csv").read_text().splitlines()
        assert all(row.count(",") == header.count(",") for row in rows)
        steps = [int(row.split(",")[header.split(",").index("step")]) for row in rows]
        assert steps == sorted(steps), "rows of two runs interleave"
        seeds.add(seed)
    assert seeds == {1, 2}
    printed = {
        line.split("Run directory: ")[1]
        for r in results
        for line in r.stdout.splitlines()
        if "Run directory: " in line
    }
    assert printed == {str(tmp_path / "toy" / v) for v in versions}


@pytest.mark.slow
def test_two_runs_given_the_same_version_at_once_one_is_refused(tmp_path: Path) -> None:
    runs = [
        _toy(
            tmp_path,
            f"--seed_everything={seed}",
            "--trainer.logger.init_args.version=trial_7",
            "--model.max_generator_steps=5",
        )
        for seed in (1, 2)
    ]
    results = _start_together(runs, tmp_path / "barrier", tmp_path)
    codes = sorted(r.returncode for r in results)
    assert codes[0] == 0 and codes[1] != 0, [r.stdout[-2000:] for r in results]
    refused = next(r for r in results if r.returncode != 0).stdout
    assert "RunDirectoryTakenError" in refused and "version=trial_7" in refused and "exists" in refused
    winner = next(r for r in results if r.returncode == 0)
    seed = yaml.safe_load((tmp_path / "toy" / "trial_7" / "config.yaml").read_text())["seed_everything"]
    assert f"--seed_everything={seed}" in " ".join(winner.args)


def test_an_explicit_version_that_exists_is_refused_unless_resuming(tmp_path: Path) -> None:
    main(_toy(tmp_path, "--trainer.logger.init_args.version=3", "--model.max_generator_steps=5"))
    last = tmp_path / "toy" / "version_3" / "checkpoints" / "last.ckpt"
    before = last.read_bytes()
    with pytest.raises(RunDirectoryTakenError, match=r"version=3: .*version_3 exists"):
        main(_toy(tmp_path, "--trainer.logger.init_args.version=3", "--model.max_generator_steps=5"))
    assert last.read_bytes() == before
    # a new run without a version takes the next free number; resuming the run's own version is allowed
    cli = main(_toy(tmp_path, "--model.max_generator_steps=5"))
    assert Path(cli.trainer.log_dir) == tmp_path / "toy" / "version_4"
    cli = main(
        _toy(
            tmp_path,
            "--trainer.logger.init_args.version=3",
            "--model.max_generator_steps=10",
            f"--ckpt_path={last}",
        )
    )
    assert torch.load(last, weights_only=True)["wgan_gp"]["generator_steps"] == 10


# --------------------------------------------------------------- item 2: W&B runs get their own run directory
@pytest.mark.slow  # two runs with W&B's service process
def test_wandb_runs_get_their_own_folders_and_load_run_uses_the_checkpoints_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, recwarn: pytest.WarningsRecorder
) -> None:
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))
    monkeypatch.setenv("WANDB_SILENT", "true")
    runs = []
    for seed, lr in ((1, "1e-4"), (2, "3e-4")):
        args = [*_toy(tmp_path, "--model.max_generator_steps=5", f"--seed_everything={seed}")]
        args += ["--config", "configs/logger/wandb.yaml", f"--trainer.logger.init_args.save_dir={tmp_path}"]
        cli = main([*args, f"--model.critic_optimizer.init_args.lr={lr}"])
        runs.append((seed, Path(run_directory(cli.trainer))))
        wandb.finish()  # each run is a process of its own for a user; here the next run must not attach to it
    assert not (tmp_path / "config.yaml").exists() and not (tmp_path / "samples").exists()
    assert runs[0][1] != runs[1][1]
    for seed, run in runs:
        assert run.parent == tmp_path / "wgan-gp"  # <save_dir>/<project>/<run id>
        assert yaml.safe_load((run / "config.yaml").read_text())["seed_everything"] == seed
        assert list((run / "samples").glob("*.png")) and (run / "checkpoints" / "last.ckpt").is_file()
    first_ckpt = runs[0][1] / "checkpoints" / "last.ckpt"
    assert load_run(first_ckpt, load_weights=False).config.seed_everything == 1
    # a config.yaml of another run beside the checkpoint (what every W&B run wrote before): the checkpoint wins
    (runs[0][1] / "config.yaml").write_text((runs[1][1] / "config.yaml").read_text())
    with pytest.warns(
        UserWarning, match=r"belongs to another run .*seed_everything: 1 in the checkpoint, 2 in the file"
    ):
        cli = load_run(first_ckpt, load_weights=False)
    assert cli.config.seed_everything == 1 and cli.config_path is None
    assert cli.config.model.init_args.critic_optimizer.init_args.lr == pytest.approx(1e-4)


# ------------------------------------------------------------ item 3: a finished run resumed trains nothing
def test_resuming_a_finished_run_trains_nothing_and_tests_only_when_asked(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    args = _toy(tmp_path, "--model.max_generator_steps=5", "--samples.every_n_epochs=1")
    main(args)
    run = tmp_path / "toy" / "version_0"
    files = {p: p.read_bytes() for p in run.rglob("*") if p.is_file()}
    for mode in ("last", "auto"):
        caplog.clear()
        with caplog.at_level("INFO"):
            main([*args, "--ckpt_path", mode])
        assert "has finished its run (generator step 5 of model.max_generator_steps=5)" in caplog.text
        assert {p: p.read_bytes() for p in run.rglob("*") if p.is_file()} == files  # nothing written
    main([*args, "--ckpt_path", "last", "--test_finished=true"])
    last = run / "checkpoints" / "last.ckpt"
    assert last.read_bytes() == files[last]
    assert torch.load(last, weights_only=True)["wgan_gp"]["generator_steps"] == 5
    rows = (run / "metrics.csv").read_text()
    assert rows != files[run / "metrics.csv"].decode() and "test/wasserstein" in rows.splitlines()[0]
    assert sorted(p.name for p in (tmp_path / "toy").iterdir()) == ["version_0"]
    main([*args[:-1], "--model.max_generator_steps=6", "--ckpt_path", "last"])  # a longer run trains on
    assert torch.load(last, weights_only=True)["wgan_gp"]["generator_steps"] == 6


# --------------------------------------------------------------------------- item 4: Ctrl-C saves last.ckpt
def test_a_second_ctrl_c_aborts_at_once() -> None:
    callback = PreemptionCheckpoint()
    previous = signal.signal(signal.SIGINT, callback._on_sigint)
    try:
        callback._on_sigint(signal.SIGINT, None)
        assert callback.stop_signal == signal.SIGINT
        with pytest.raises(KeyboardInterrupt):
            callback._on_sigint(signal.SIGINT, None)
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    finally:
        signal.signal(signal.SIGINT, previous)


LONG_EPOCH = [
    "--data.batches_per_epoch=100000",
    "--checkpoint.every_n_train_steps=20",
    "--checkpoint.save_last=false",
]


@pytest.mark.slow
def test_ctrl_c_finishes_the_batch_saves_last_ckpt_and_prints_the_resume_command(tmp_path: Path) -> None:
    log = tmp_path / "run.log"
    proc = start_train(_toy(tmp_path, *LONG_EPOCH), log)
    wait_for("toy/version_0/checkpoints/epoch=0-step=*.ckpt", tmp_path, proc, log, timeout=240)
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=120) == 128 + signal.SIGINT, log.read_text()[-3000:]
    text = log.read_text()
    last = tmp_path / "toy" / "version_0" / "checkpoints" / "last.ckpt"
    assert "KeyboardInterrupt" not in text and last.is_file()
    assert "Stopped by Ctrl-C (SIGINT): saved" in text and f"saved {last}" in text
    assert re.search(
        r"Resume with python -m src\.train --config configs/toy\.yaml .* --ckpt_path last\n", text
    )
    saved = torch.load(last, weights_only=True)
    assert saved["wgan_gp"]["generator_steps"] >= 10 and saved["epoch"] == 0  # mid-epoch


# ------------------------------------------- items 4 and 10: Ctrl-C under DDP, and each rank's data stream
DDP = ["--trainer.accelerator=cpu", "--trainer.devices=2", "--data.batches_per_epoch=100000"]


@pytest.fixture(scope="module")
def ddp_interrupted(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str], int, str]:
    """A two-process toy run stopped by Ctrl-C sent to its process group, as a terminal does."""
    root = tmp_path_factory.mktemp("ddp_ctrl_c")
    recorder = [
        {
            "class_path": "tests.reliability_callbacks.FirstBatches",
            "init_args": {"out": str(root / "batches")},
        }
    ]
    args = _toy(
        root, *DDP, "--checkpoint.every_n_train_steps=20", f"--trainer.callbacks={json.dumps(recorder)}"
    )
    log = root / "run.log"
    proc = start_train(args, log, new_session=True)
    wait_for("toy/version_0/checkpoints/epoch=0-step=*.ckpt", root, proc, log, timeout=240)
    os.killpg(proc.pid, signal.SIGINT)
    try:
        code = proc.wait(timeout=180)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        raise AssertionError(f"the DDP run did not stop after Ctrl-C:\n{log.read_text()[-3000:]}") from None
    return root, args, code, log.read_text()


@pytest.mark.slow
def test_ctrl_c_under_ddp_stops_every_rank_and_saves_last_ckpt(ddp_interrupted: tuple) -> None:
    root, _, code, text = ddp_interrupted
    assert code == 128 + signal.SIGINT, text[-3000:]
    last = root / "toy" / "version_0" / "checkpoints" / "last.ckpt"
    assert "Stopped by Ctrl-C (SIGINT)" in text and f"saved {last}" in text
    saved = torch.load(last, weights_only=True)
    assert saved["wgan_gp"]["rng"]["torch"].shape[0] == 2 and saved["epoch"] == 0


@pytest.mark.slow
def test_after_a_ddp_resume_each_rank_draws_its_own_toy_batches(ddp_interrupted: tuple) -> None:
    root, args, _, _ = ddp_interrupted
    last = root / "toy" / "version_0" / "checkpoints" / "last.ckpt"
    saved = torch.load(last, weights_only=True)
    rows = saved["Toy2DDataModule"]["generators"]
    assert rows.shape[0] == 2 and not torch.equal(rows[0], rows[1])  # every rank's stream is saved
    target = saved["wgan_gp"]["generator_steps"] + 2
    proc = subprocess.run(
        [sys.executable, "-m", "src.train", *args, "--ckpt_path", "last", f"--model.max_generator_steps={target}"],
        cwd=REPO_ROOT, env=_env(), capture_output=True, text=True, timeout=400,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    first = [torch.load(root / "batches" / f"rank{r}.pt", weights_only=True) for r in (0, 1)]
    assert first[0].shape == first[1].shape == (32, 2)
    assert not torch.allclose(first[0], first[1]), "both ranks drew the same batch after the resume"
