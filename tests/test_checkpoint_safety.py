"""Untrusted checkpoints run no code, and unreadable ones fail naming the file, through every entry point.

The malicious checkpoint's pickle would create a file when unpickled (a ``__reduce__`` payload). Every load
passes ``weights_only=True`` explicitly, which ``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1`` cannot override (it only
replaces an omitted argument), so each entry point is run with that variable set.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch

from src.load_run import load_run
from src.models import WGANGP
from src.utils.atomic_io import AtomicCheckpointIO
from src.utils.checkpoint import CheckpointLoadError
from tests.helpers import REPO_ROOT, toy_data, toy_model, trainer


class _Payload:
    """Unpickling this creates ``path``: a stand-in for any code an attacker's pickle would run."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self) -> tuple:
        return (open, (str(self.path), "w"))


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    """A run folder as src.train writes it: ``config.yaml`` and ``checkpoints/``."""
    folder = tmp_path / "runs" / "toy" / "version_0"
    (folder / "checkpoints").mkdir(parents=True)
    (folder / "config.yaml").write_text((REPO_ROOT / "configs" / "toy.yaml").read_text())
    return folder


@pytest.fixture
def evil(run_dir: Path, tmp_path: Path) -> tuple[Path, Path]:
    """A checkpoint shaped like a real one whose pickle creates ``marker``; ``(checkpoint, marker)``."""
    marker = tmp_path / "payload_ran"
    model = toy_model(hidden=8)
    checkpoint = {
        "state_dict": model.state_dict(),
        "hyper_parameters": {"n_critic": 5},
        "epoch": 0,
        "global_step": 0,
        "payload": _Payload(marker),
    }
    path = run_dir / "checkpoints" / "last.ckpt"
    torch.save(checkpoint, path)
    return path, marker


@pytest.fixture
def truncated(run_dir: Path) -> Path:
    path = run_dir / "checkpoints" / "truncated.ckpt"
    torch.save({"state_dict": toy_model(hidden=8).state_dict()}, path)
    path.write_bytes(path.read_bytes()[:200])
    return path


def test_the_payload_is_live_when_weights_only_is_omitted(
    evil: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The control: with the variable set, an omitted ``weights_only`` unpickles anything and runs it."""
    path, marker = evil
    monkeypatch.setenv("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")
    torch.load(path)
    assert marker.exists()


def _train(path: Path, run_dir: Path) -> Any:
    from src.train import main

    save_dir = run_dir.parent.parent / "new_runs"
    return main(
        [
            "--config",
            "configs/toy.yaml",
            f"--trainer.logger.init_args.save_dir={save_dir}",
            "--ckpt_path",
            str(path),
        ]
    )


def _evaluate(path: Path, run_dir: Path) -> Any:
    from src.evaluate import main

    return main(["--ckpt", str(path), "--out", str(run_dir / "metrics.json")])


def _generate(path: Path, run_dir: Path) -> Any:
    from src.generate import main

    return main(["--ckpt", str(path), "--out", str(run_dir / "generated"), "--device", "cpu"])


def _trainer_test(path: Path, run_dir: Path) -> Any:
    """Lightning's own load (``trainer.test(ckpt_path=...)``) with ``weights_only`` omitted, through our IO plugin."""
    fit = trainer(run_dir, plugins=[AtomicCheckpointIO()])
    return fit.test(toy_model(hidden=8), datamodule=toy_data(), ckpt_path=str(path))


ENTRY_POINTS: dict[str, Callable[[Path, Path], Any]] = {
    "src.train --ckpt_path": _train,
    "src.evaluate": _evaluate,
    "src.generate": _generate,
    "load_run": lambda path, run_dir: load_run(path),
    "WGANGP.load_from_checkpoint": lambda path, run_dir: WGANGP.load_from_checkpoint(path),
    "trainer.test": _trainer_test,
}


@pytest.mark.parametrize("entry", ENTRY_POINTS)
def test_a_malicious_checkpoint_runs_no_code(
    entry: str, evil: tuple[Path, Path], run_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path, marker = evil
    monkeypatch.setenv("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")
    with pytest.raises(
        CheckpointLoadError, match=rf"Refused to load the checkpoint {path}: .*GLOBAL io\.open"
    ):
        ENTRY_POINTS[entry](path, run_dir)
    assert not marker.exists(), f"{entry} ran the checkpoint's code"


@pytest.mark.parametrize("entry", ENTRY_POINTS)
def test_a_truncated_checkpoint_names_the_file(
    entry: str, truncated: Path, run_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")
    with pytest.raises(
        CheckpointLoadError, match=rf"Cannot read the checkpoint {truncated}: it is truncated"
    ):
        ENTRY_POINTS[entry](truncated, run_dir)


def test_the_command_line_refuses_it_before_creating_a_run(evil: tuple[Path, Path], tmp_path: Path) -> None:
    path, marker = evil
    env = {**os.environ, "TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD": "1", "PYTHONWARNINGS": "ignore"}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "src.train",
            "--config",
            "configs/toy.yaml",
            f"--trainer.logger.init_args.save_dir={tmp_path / 'new_runs'}",
            "--ckpt_path",
            str(path),
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert proc.returncode != 0
    assert f"Refused to load the checkpoint {path}" in proc.stderr, proc.stderr[-2000:]
    assert not marker.exists()
    assert not (tmp_path / "new_runs").exists() or not any((tmp_path / "new_runs").rglob("version_*"))
