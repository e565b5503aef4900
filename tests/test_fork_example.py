"""The README's fork example: a datamodule outside src/, wired in by class_path, trains from the CLI."""

from __future__ import annotations

from pathlib import Path

import torch
import yaml

from src.models import WGANGP
from tests.helpers import run_cli


def test_ring_example_trains_from_its_yaml(tmp_path: Path) -> None:
    run_cli(
        [
            "--config",
            "examples/ring.yaml",
            f"--trainer.logger.init_args.save_dir={tmp_path}",
            "--model.max_generator_steps=3",
            "--trainer.enable_progress_bar=false",
        ]
    )
    run_dir = tmp_path / "ring" / "version_0"
    config = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert config["data"]["class_path"] == "examples.ring.RingDataModule"
    model = WGANGP.load_from_checkpoint(run_dir / "checkpoints" / "last.ckpt", weights_only=True)
    assert model.generator_steps == 3
    assert model.sample(5).shape == (5, 2) and torch.isfinite(model.sample(5)).all()
    assert list((run_dir / "samples").glob("*.png"))
