"""Weights & Biases, offline: configs/logger/wandb.yaml logs scalars, the config, sample grids and FID."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests import wandb_reader
from tests.helpers import REPO_ROOT

SECRET = "wandbsecret" + "0123456789abcdef" * 2  # 43 characters, the shape of an API key

QUALITY = {
    "class_path": "src.evaluation.ImageQuality",
    "init_args": {
        "feature_extractor": "digits",
        "num_samples": 64,
        "num_real": 64,
        "batch_size": 64,
        "kid_subsets": 5,
        "kid_subset_size": 32,
    },
}


@pytest.fixture(scope="module")
def offline_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A two-generator-step digits run logged to W&B offline, with an API key in the environment."""
    root = tmp_path_factory.mktemp("wandb")
    env = {
        **os.environ,
        "WANDB_MODE": "offline",
        "WANDB_DIR": str(root),
        "WANDB_API_KEY": SECRET,
        "OMP_NUM_THREADS": "1",
        "PYTHONWARNINGS": "ignore",
    }
    env.pop("WANDB_SERVICE", None)  # a service an earlier in-process test started (maybe silent) is not ours
    args = [
        "--config",
        "configs/digits.yaml",
        "--config",
        "configs/logger/wandb.yaml",
        f"--trainer.logger.init_args.save_dir={root}",
        "--model.max_generator_steps=2",
        "--model.n_critic=2",
        "--model.generator.init_args.dim=8",
        "--model.critic.init_args.dim=8",
        "--data.batch_size=16",
        "--trainer.limit_val_batches=1",
        "--trainer.log_every_n_steps=1",
        "--trainer.enable_progress_bar=false",
        f"--quality={json.dumps(QUALITY)}",
        "--trainer.logger.init_args.log_model=true",
    ]
    proc = subprocess.run(  # stdin closed: a login prompt would fail the run instead of waiting
        [sys.executable, "-m", "src.train", *args],
        cwd=REPO_ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-5000:]
    assert "wandb sync" in proc.stdout + proc.stderr  # the offline hint: nothing was sent
    return root


def _run_file(root: Path) -> Path:
    (run_file,) = root.glob("wandb/offline-run-*/run-*.wandb")
    return run_file


@pytest.mark.slow
def test_scalars_and_evaluation_metrics_are_logged(offline_run: Path) -> None:
    rows = wandb_reader.history(_run_file(offline_run))
    keys = set().union(*rows)
    assert {"train/critic_loss", "train/wasserstein", "train/gp", "train/gen_loss", "val/wasserstein"} <= keys
    assert {"val/fid", "val/kid", "val/is", "test/fid", "test/wasserstein"} <= keys
    losses = [row["train/critic_loss"] for row in rows if "train/critic_loss" in row]
    assert len(losses) == 4 and all(isinstance(v, float) for v in losses)  # 2 generator steps x n_critic 2


@pytest.mark.slow
def test_the_resolved_config_is_the_run_config(offline_run: Path) -> None:
    config = wandb_reader.config(_run_file(offline_run))
    assert config["model"]["class_path"] == "src.models.WGANGP"  # the model class is a config choice too
    generator = config["model"]["init_args"]["generator"]
    assert generator["class_path"] == "src.nets.ConditionalDCGANGenerator"
    assert generator["init_args"]["dim"] == 8
    assert config["data"]["class_path"] == "src.data.DigitsDataModule"
    assert config["regularizer"]["init_args"]["weight"] == 10.0
    assert config["trainer"]["logger"]["class_path"] == "lightning.pytorch.loggers.WandbLogger"


@pytest.mark.slow
def test_sample_grids_are_logged_as_images(offline_run: Path) -> None:
    run_file = _run_file(offline_run)
    images = [row for row in wandb_reader.history(run_file) if row.get("samples/_type") == "images/separated"]
    assert images and images[-1]["samples/count"] == 1
    pngs = list(run_file.parent.glob("files/media/images/samples_*.png"))
    assert pngs and pngs[0].stat().st_size > 100


@pytest.mark.slow
def test_checkpoints_become_artifacts_with_log_model(offline_run: Path) -> None:
    kinds = [r.WhichOneof("record_type") for r in wandb_reader.records(_run_file(offline_run))]
    artifacts = [r.artifact for r in wandb_reader.records(_run_file(offline_run)) if r.HasField("artifact")]
    assert "artifact" in kinds and all(a.type == "model" for a in artifacts)
    assert list(offline_run.glob("wgan-gp/*/checkpoints/last.ckpt"))  # <save_dir>/<project>/<run id>


@pytest.mark.slow
def test_the_api_key_is_written_nowhere(offline_run: Path) -> None:
    files = [p for p in offline_run.rglob("*") if p.is_file()]
    assert any(p.name == "config.yaml" for p in files) and any(p.suffix == ".ckpt" for p in files)
    for path in files:
        assert SECRET.encode() not in path.read_bytes(), path
