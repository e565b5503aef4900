"""Small builders shared by the tests."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import lightning.pytorch as pl

from src.data import SamplePhotosDataModule, Toy2DDataModule
from src.models import WGANGP, SuperResolutionWGAN
from src.nets import MLPCritic, MLPGenerator, PatchCritic, SRResNetGenerator
from src.regularizers import GradientPenalty

REPO_ROOT = Path(__file__).resolve().parents[1]

# A toy CLI run of about 3 ms per step: short epochs (a checkpoint each), no plots, no W1 metric.
TOY = [
    "--config",
    "configs/toy.yaml",
    "--model.generator.init_args.hidden_dim=16",
    "--model.critic.init_args.hidden_dim=16",
    "--data.batch_size=32",
    "--data.batches_per_epoch=10",
    "--model.n_critic=2",
    "--trainer.limit_val_batches=1",
    "--trainer.enable_progress_bar=false",
    "--quality=null",
    "--best=null",
    "--samples.every_n_epochs=1000",
]

# A toy trial for src.tune: the TOY run with its W1 metric (200 points, every epoch of 5 generator steps), 15 steps.
TOY_TUNE = [
    *(a for a in TOY if a not in ("--quality=null",)),
    "--quality.init_args.num_points=200",
    "--model.max_generator_steps=15",
    "--trainer.enable_model_summary=false",
]


def toy_model(n_critic: int = 5, hidden: int = 32, **kwargs: Any) -> WGANGP:
    """A small MLP WGAN for 2-D data."""
    return WGANGP(
        MLPGenerator(latent_dim=2, hidden_dim=hidden),
        MLPCritic(hidden_dim=hidden),
        n_critic=n_critic,
        **kwargs,
    )


def toy_data(batches_per_epoch: int = 10, batch_size: int = 64, **kwargs: Any) -> Toy2DDataModule:
    """25 Gaussians in short epochs."""
    return Toy2DDataModule(batch_size=batch_size, batches_per_epoch=batches_per_epoch, **kwargs)


def sr_model(scale: int = 2, condition: bool = False, **kwargs: Any) -> SuperResolutionWGAN:
    """A tiny super-resolution model for 32 px RGB crops."""
    gen = SRResNetGenerator((3, 32, 32), scale=scale, dim=8, num_blocks=1)
    critic = PatchCritic((3, 32, 32), dim=8, num_downsamples=2, condition=condition)
    return SuperResolutionWGAN(gen, critic, n_critic=1, **kwargs)


def photos(**kwargs: Any) -> SamplePhotosDataModule:
    """The sample photos as 32 px crops, 4 to a batch (``kwargs`` override)."""
    return SamplePhotosDataModule(**{"image_size": 32, "stride": 32, "batch_size": 4, **kwargs})


def trainer(tmp_path: Path, callbacks: list | None = None, **kwargs: Any) -> pl.Trainer:
    """A quiet CPU trainer writing under ``tmp_path``, with the paper's gradient penalty by default."""
    defaults: dict[str, Any] = {
        "accelerator": "cpu",
        "devices": 1,
        "logger": False,
        "enable_checkpointing": False,
        "enable_progress_bar": False,
        "enable_model_summary": False,
        "limit_val_batches": 0,
        "num_sanity_val_steps": 0,
        "default_root_dir": tmp_path,
    }
    defaults.update(kwargs)
    return pl.Trainer(callbacks=[GradientPenalty()] if callbacks is None else callbacks, **defaults)


def run_cli(
    args: list[str], cwd: Path = REPO_ROOT, timeout: int = 600, module: str = "src.train"
) -> subprocess.CompletedProcess:
    """Run ``python -m MODULE ARGS`` as a user would; fail with its output if it fails."""
    proc = subprocess.run(
        [sys.executable, "-m", module, *args], cwd=cwd, capture_output=True, text=True, timeout=timeout
    )
    assert proc.returncode == 0, f"exit {proc.returncode}\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}"
    return proc


def wait_for(pattern: str, root: Path, proc: subprocess.Popen, log: Path, timeout: float = 120) -> Path:
    """The first file under ``root`` matching ``pattern`` that the running ``proc`` writes (its output in ``log``)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = sorted(root.glob(pattern))
        if found:
            return found[0]
        assert proc.poll() is None, f"the run ended before writing {pattern}:\n{log.read_text()[-3000:]}"
        time.sleep(0.1)
    proc.kill()
    raise AssertionError(f"no {pattern} under {root} after {timeout} s:\n{log.read_text()[-3000:]}")


def start_train(args: list[str], log: Path, new_session: bool = False) -> subprocess.Popen:
    """``python -m src.train ARGS`` started in the background (one torch thread), its output written to ``log``."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore", "PYTHONPATH": str(REPO_ROOT)}
    with log.open("w") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "src.train", *args],
            cwd=REPO_ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=new_session,
        )
