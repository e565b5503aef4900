"""BatchNorm under DDP: each rank normalizes over its share of the global batch unless ``sync_batchnorm`` is on.

Two CPU processes (gloo) run tests/ddp_batchnorm_worker.py. torch's SyncBatchNorm has no CPU kernels, so the
synchronized run is checked for its clear refusal here; on GPUs ``--trainer.sync_batchnorm=true`` gives the
generator's BatchNorm the global batch (README, "The paper's recipes").
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tests.ddp_batchnorm_worker import GLOBAL_BATCH, WORLD
from tests.helpers import REPO_ROOT

pytestmark = pytest.mark.slow  # two launches of two processes: 30-60 s on two cores


def launch(out: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    return subprocess.run(
        [sys.executable, "tests/ddp_batchnorm_worker.py", str(out), *args],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_each_rank_normalizes_over_its_share_without_sync(tmp_path: Path) -> None:
    proc = launch(tmp_path)
    assert proc.returncode == 0, proc.stderr[-5000:]
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in range(WORLD)]
    for rank in ranks:
        assert rank["type"] == "BatchNorm1d"
        assert rank["sizes"] == [GLOBAL_BATCH // WORLD] * 4  # 2 critic + 2 generator steps, 8 of the 16 each
    assert not torch.allclose(ranks[0]["running_mean"], ranks[1]["running_mean"])  # per-rank statistics


def test_sync_batchnorm_on_cpu_ranks_is_refused_clearly(tmp_path: Path) -> None:
    proc = launch(tmp_path, "sync")
    assert proc.returncode != 0
    assert "SyncBatchNorm layers only work with GPU modules" in proc.stderr
