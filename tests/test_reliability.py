"""Reliability, round 2 (issue 22): runs that start together, finished runs, Ctrl-C, files a fault cuts short.

Where a case is about several processes, the test starts several processes. Every run here is a tiny toy run
(``tests.helpers.TOY``).
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
import yaml

from src.train import main
from src.utils.output_dirs import RunDirectoryTakenError
from tests.helpers import REPO_ROOT, TOY

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
