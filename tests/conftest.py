"""Shared fixtures: every output goes under ``tmp_path``; torch runs single-threaded for stable timing."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _quiet_and_seeded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WANDB_MODE", "offline")
    # wandb.init in this process exports WANDB_SERVICE (its service's socket) and leaves it set: removed while
    # each test runs, so a test's subprocesses start their own service, not an earlier test's (silent) one
    monkeypatch.delenv("WANDB_SERVICE", raising=False)
    monkeypatch.setenv("PYTHONWARNINGS", os.environ.get("PYTHONWARNINGS", "ignore"))
    torch.manual_seed(0)


@pytest.fixture
def repo_root() -> Path:
    return REPO_ROOT
