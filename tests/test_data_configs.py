"""``python -m src.train --config configs/<dataset>.yaml`` trains a few steps on fake data and checkpoints.

The MNIST run goes through a subprocess, as a user types it. CIFAR-10 and CelebA run in-process through
``src.train.main`` because the test must patch torchvision's md5 check of the fake files. The configs'
image-quality callbacks (FID on Inception-v3, whose weights cannot be downloaded here) are switched off with
``--quality=null --best=null``; tests/test_image_quality.py covers them.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

from src.data import DatasetNotFoundError
from src.train import main
from tests.fakedata import skip_md5, write_celeba, write_cifar10, write_image_folder, write_mnist
from tests.helpers import run_cli


def _args(config: str, data_dir: Path, tmp_path: Path, *extra: str) -> list[str]:
    return [
        f"--config=configs/{config}.yaml",
        f"--data.data_dir={data_dir}",
        "--data.batch_size=8",
        "--model.max_generator_steps=2",
        "--model.generator.init_args.dim=8",
        "--model.critic.init_args.dim=8",
        "--trainer.accelerator=cpu",
        "--trainer.devices=1",
        "--trainer.limit_val_batches=1",
        "--trainer.enable_progress_bar=false",
        "--trainer.enable_model_summary=false",
        f"--trainer.logger.init_args.save_dir={tmp_path / 'runs'}",
        f"--checkpoint.dirpath={tmp_path / 'ckpt'}",
        "--quality=null",
        "--best=null",
        *extra,
    ]


@pytest.fixture
def in_repo(monkeypatch, repo_root):
    """Run ``src.train.main`` in-process as ``python -m src.train`` would: from the repository, no argv."""
    monkeypatch.chdir(repo_root)
    monkeypatch.setattr(sys, "argv", ["src.train"])


def _checkpoint(tmp_path: Path, name: str) -> dict:
    assert (tmp_path / "runs" / name / "version_0").is_dir()  # the config names the run
    ckpt = torch.load(tmp_path / "ckpt" / "last.ckpt", map_location="cpu", weights_only=False)
    assert ckpt["wgan_gp"]["generator_steps"] == 2
    return ckpt


def test_mnist_config_trains_and_checkpoints(tmp_path, repo_root):
    write_mnist(tmp_path / "data", n_train=100, n_test=20)
    run_cli(_args("mnist", tmp_path / "data", tmp_path), cwd=repo_root)
    ckpt = _checkpoint(tmp_path, "mnist")
    assert ckpt["datamodule_hyper_parameters"]["image_size"] == 28
    assert ckpt["hyper_parameters"]["n_critic"] == 5


def test_cifar10_config_runs_the_paper_schedule(tmp_path, monkeypatch, in_repo):
    skip_md5(monkeypatch)
    write_cifar10(tmp_path / "data", n_per_batch=8, n_test=16)
    main(_args("cifar10", tmp_path / "data", tmp_path, "--data.global_batch_size=8"))  # the config's is 64
    ckpt = _checkpoint(tmp_path, "cifar10")
    assert ckpt["hyper_parameters"]["generator"]["class_path"] == "src.nets.ResNetGenerator"
    # The paper's options (README "The paper's recipes"): tflib's init, a generator batch of 2x the critic's,
    # samples with batch statistics, dequantised training images, a global batch split across the devices.
    assert ckpt["hyper_parameters"]["generator"]["init_args"]["init"] == "paper"
    assert ckpt["hyper_parameters"]["generator_batch_multiple"] == 2
    assert ckpt["hyper_parameters"]["sample_bn"] == "batch"
    assert ckpt["datamodule_hyper_parameters"]["dequantize"] is True
    # LinearLR stepped once per generator step: lr = 2e-4 * (1 - 2 / 100000) for both networks.
    for scheduler in ckpt["lr_schedulers"]:
        assert scheduler["last_epoch"] == 2
        assert scheduler["_last_lr"][0] == pytest.approx(2e-4 * (1 - 2 / 100_000))


def test_celeba_config_trains_and_checkpoints(tmp_path, monkeypatch, in_repo):
    skip_md5(monkeypatch)
    write_celeba(tmp_path / "data", partition=(16, 8, 8))
    main(_args("celeba", tmp_path / "data", tmp_path, "--data.num_workers=0"))
    assert _checkpoint(tmp_path, "celeba")["datamodule_hyper_parameters"]["image_size"] == 64


def test_folder_config_trains_and_checkpoints(tmp_path, in_repo):
    write_image_folder(tmp_path / "images", n=24, corrupt=1)
    main(_args("folder", tmp_path / "images", tmp_path, "--data.image_size=32", "--data.num_workers=0"))
    _checkpoint(tmp_path, "folder")


def test_missing_dataset_stops_before_training(tmp_path, in_repo):
    args = _args("mnist", tmp_path / "empty", tmp_path, "--data.download=false")
    with pytest.raises(DatasetNotFoundError, match="MNIST was not found"):
        main(args)
    assert not (tmp_path / "ckpt").exists()


@pytest.mark.slow  # two CPU processes start torch and Lightning
def test_mnist_in_memory_under_ddp_with_uneven_batches(tmp_path, repo_root):
    # 90 training images in batches of 8: 11 batches, which two ranks cannot share evenly. The in-memory loader
    # gives each rank 5, so no rank steps alone and waits forever for the other's gradients.
    write_mnist(tmp_path / "data", n_train=100, n_test=20)
    run_cli(_args("mnist", tmp_path / "data", tmp_path, "--trainer.devices=2"), cwd=repo_root, timeout=300)
    _checkpoint(tmp_path, "mnist")
