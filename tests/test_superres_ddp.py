"""Super-resolution under DDP with two CPU processes: the CLI picks DDP, both ranks train, evaluate and save once."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from tests.helpers import run_cli
from tests.test_superres_upscale import SR_TINY

pytestmark = pytest.mark.slow  # two processes start torch and Lightning: 30-60 s on two cores


def test_two_process_superres_run_trains_evaluates_and_saves_once(tmp_path: Path) -> None:
    proc = run_cli(
        [
            *SR_TINY,
            "--trainer.accelerator=cpu",
            "--trainer.devices=2",
            f"--trainer.logger.init_args.save_dir={tmp_path}",
        ],
        timeout=400,
    )
    assert "Starting with 2 processes" in proc.stdout + proc.stderr
    run = tmp_path / "superres" / "version_0"
    assert [p.name for p in (tmp_path / "superres").iterdir()] == ["version_0"]
    saved = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)
    assert saved["wgan_gp"]["generator_steps"] == saved["wgan_gp"]["critic_steps"] == 3
    rng = saved["wgan_gp"]["rng"]["torch"]
    assert rng.shape[0] == 2 and not torch.equal(rng[0], rng[1])  # each rank its own noise and ε
    header, *rows = (run / "metrics.csv").read_text().splitlines()
    assert {"val/psnr", "val/psnr_bicubic", "test/psnr", "test_best/psnr"} <= set(header.split(","))
    assert list((run / "superres").glob("val-gen_step=*.png"))  # rank zero drew, nobody deadlocked
    # EMA and critic are part of the state; the generator moved away from its bicubic start
    assert any(k.startswith("generator_ema.") for k in saved["state_dict"])
    assert saved["state_dict"]["generator.tail.weight"].abs().sum() > 0
