"""The CLI end to end, as a user runs it."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import pytest
from lightning.pytorch.strategies import DDPStrategy

from src.cli import DDP_STRATEGY, build_cli, count_devices
from tests.helpers import REPO_ROOT, run_cli

TINY = [
    "--model.max_generator_steps=2",
    "--trainer.limit_val_batches=1",
    "--trainer.enable_progress_bar=false",
]


def _outputs(run_dir: Path) -> tuple[list[Path], list[Path]]:
    return sorted(run_dir.glob("checkpoints/*.ckpt")), sorted(run_dir.glob("samples/*.png"))


def test_default_digits_run_writes_checkpoint_samples_and_metrics(tmp_path: Path) -> None:
    proc = run_cli([*TINY, f"--trainer.logger.init_args.save_dir={tmp_path}", "--model.n_critic=2"])
    run_dir = tmp_path / "digits" / "version_0"
    assert f"Run directory: {run_dir}" in proc.stdout + proc.stderr
    assert "litlogger" not in proc.stdout + proc.stderr  # Lightning's cloud-logger advert is filtered out
    ckpts, pngs = _outputs(run_dir)
    assert any(c.name == "last.ckpt" for c in ckpts) and pngs
    assert any(c.name.startswith("best-fid-") for c in ckpts)  # --best
    rows = list(csv.DictReader((run_dir / "metrics.csv").open()))
    logged = {key for row in rows for key, value in row.items() if value}
    # --quality: FID, KID, IS and class coverage on the digits classifier, at validation and at test time.
    assert {"val/fid", "val/kid", "val/is", "val/classes_covered", "test/fid", "test/wasserstein"} <= logged


def test_toy_config_runs_and_draws_a_scatter_plot(tmp_path: Path) -> None:
    run_cli(
        [
            "--config",
            "configs/toy.yaml",
            *TINY,
            f"--trainer.logger.init_args.save_dir={tmp_path}",
            "--data.batches_per_epoch=5",
            "--model.generator.init_args.hidden_dim=16",
            "--model.critic.init_args.hidden_dim=16",
        ]
    )
    ckpts, pngs = _outputs(tmp_path / "toy" / "version_0")
    assert ckpts and pngs


def test_printed_config_runs_as_it_is(tmp_path: Path) -> None:
    args = [
        "--config",
        "configs/toy.yaml",
        *TINY,
        f"--trainer.logger.init_args.save_dir={tmp_path}",
        "--data.batches_per_epoch=3",
        "--model.generator.init_args.hidden_dim=8",
        "--model.critic.init_args.hidden_dim=8",
        "--regularizer.init_args.weight=0.5",
    ]
    printed = subprocess.run(
        [sys.executable, "-m", "src.train", *args, "--print_config"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "weight: 0.5" in printed and "MLPGenerator" in printed
    config = tmp_path / "printed.yaml"
    config.write_text(printed)
    run_cli(["--config", str(config)])
    assert _outputs(tmp_path / "toy" / "version_0")[0]


def test_quality_and_best_are_keys_that_null_drops(tmp_path: Path) -> None:
    from lightning.pytorch.callbacks import ModelCheckpoint

    from src.evaluation import ImageQuality

    def built(*args: str) -> list:
        cli = build_cli([*args, "--trainer.logger=false", f"--trainer.default_root_dir={tmp_path}"])
        return cli.trainer.callbacks

    callbacks = built("--quality.init_args.num_samples=100", "--best.filename=best")
    (quality,) = [cb for cb in callbacks if isinstance(cb, ImageQuality)]
    assert quality.num_samples == 100 and quality.feature_extractor == "digits"  # the other defaults stay
    monitors = sorted(str(cb.monitor) for cb in callbacks if isinstance(cb, ModelCheckpoint))
    assert monitors == ["None", "val/fid"]  # --checkpoint keeps last.ckpt, --best the best FID
    callbacks = built("--quality=null", "--best=null")
    assert None not in callbacks and not any(isinstance(cb, ImageQuality) for cb in callbacks)
    assert [cb.monitor for cb in callbacks if isinstance(cb, ModelCheckpoint)] == [None]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--model.n_critic=0"], "n_critic"),
        (["--regularizer.init_args.weight=-1"], "weight"),
        (["--data.image_size=30"], "image size 30 px is not supported"),
        (["--config", "configs/toy.yaml", "--data.dataset=9gaussians"], "data.dataset"),
    ],
)
def test_bad_input_fails_with_a_message_naming_the_option(
    tmp_path: Path, args: list[str], message: str
) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "src.train", *args, f"--trainer.logger.init_args.save_dir={tmp_path}"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode != 0
    assert message in proc.stderr
    assert not list(tmp_path.rglob("*.ckpt"))


@pytest.mark.parametrize(
    ("devices", "expected"), [(1, 1), ("1", 1), (4, 4), ("4", 4), ("0,1", 2), ([0, 1, 2], 3), ("auto", 1)]
)
def test_count_devices(devices: object, expected: int) -> None:
    assert count_devices(devices, "cpu") == expected


def test_several_devices_choose_ddp_with_unused_parameters(tmp_path: Path) -> None:
    cli = build_cli(
        ["--trainer.devices=4", "--trainer.accelerator=cpu", f"--trainer.default_root_dir={tmp_path}"]
    )
    assert cli.config.trainer.strategy == DDP_STRATEGY
    assert isinstance(cli.trainer.strategy, DDPStrategy)
    assert cli.trainer.num_devices == 4  # find_unused_parameters: tests/test_strategy.py
    single = build_cli(["--trainer.devices=1", "--trainer.accelerator=cpu"])
    assert not isinstance(single.trainer.strategy, DDPStrategy)
