"""ToyMetrics: modes covered, high-quality share, exact W1 and sliced Wasserstein logged during toy runs."""

from __future__ import annotations

import csv
from pathlib import Path

import lightning.pytorch as pl
import pytest
import torch

import src.evaluation.toy_metrics as toy_metrics
from src.data import Toy2DDataModule
from src.data.toy import sample_toy, toy_mode_centers, toy_mode_std
from src.evaluation import ToyMetrics
from src.metrics import exact_w1, sliced_wasserstein
from src.train import main


class Points(pl.LightningModule):
    """A stand-in generator that returns given points."""

    latent_dim = 2

    def __init__(self, points: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("points", points)

    def sample(self, noise: torch.Tensor) -> torch.Tensor:
        return self.points[: len(noise)]

    def validation_step(self, batch, batch_idx: int) -> None:
        return None


def measure(tmp_path: Path, points: torch.Tensor, dataset: str = "25gaussians", **kwargs) -> dict[str, float]:
    trainer = pl.Trainer(
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        limit_val_batches=1,
        default_root_dir=tmp_path,
        callbacks=[ToyMetrics(num_points=len(points), **kwargs)],
    )
    trainer.validate(
        Points(points), datamodule=Toy2DDataModule(dataset=dataset, val_batches=1), verbose=False
    )
    return {k: float(v) for k, v in trainer.callback_metrics.items()}


def test_a_perfect_generator_covers_every_mode_at_the_w1_floor(tmp_path: Path) -> None:
    fake = sample_toy("25gaussians", 1000, torch.Generator().manual_seed(123))
    got = measure(tmp_path, fake)
    assert got["val/modes_covered"] == 25
    assert got["val/high_quality"] > 0.97  # 3 std in 2-D hold 98.9% of a Gaussian
    assert got["val/w1"] < 1.5 * got["val/w1_floor"]
    assert got["val/swd"] <= got["val/w1"] + 1e-9  # projections are 1-Lipschitz


def test_a_collapsed_generator_covers_one_mode_and_is_far(tmp_path: Path) -> None:
    centre = toy_mode_centers("25gaussians")[12]  # the middle mode
    fake = centre + toy_mode_std("25gaussians") * torch.randn(
        1000, 2, generator=torch.Generator().manual_seed(0)
    )
    got = measure(tmp_path, fake)
    assert got["val/modes_covered"] == 1
    assert got["val/high_quality"] > 0.97
    assert got["val/w1"] > 10 * got["val/w1_floor"]


def test_logged_distances_equal_the_metric_functions(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    drawn: list[torch.Tensor] = []

    def recording_sample_toy(*args, **kwargs):
        points = sample_toy(*args, **kwargs)
        drawn.append(points)
        return points

    monkeypatch.setattr(toy_metrics, "sample_toy", recording_sample_toy)
    fake = sample_toy("8gaussians", 500, torch.Generator().manual_seed(7)) * 1.1  # a little too wide
    got = measure(tmp_path, fake, dataset="8gaussians", seed=3)
    real, other = drawn  # the comparison sample, then the floor's second real sample
    assert got["val/w1"] == pytest.approx(exact_w1(fake, real), rel=1e-6)
    assert got["val/w1_floor"] == pytest.approx(exact_w1(real, other), rel=1e-6)
    swd = sliced_wasserstein(fake, real, 128, generator=torch.Generator().manual_seed(3))
    assert got["val/swd"] == pytest.approx(swd, rel=1e-6)


def test_swiss_roll_has_no_modes_but_distances(tmp_path: Path) -> None:
    fake = sample_toy("swissroll", 300, torch.Generator().manual_seed(1))
    got = measure(tmp_path, fake, dataset="swissroll")
    assert {"val/w1", "val/swd", "val/w1_floor"} <= set(got)
    assert "val/modes_covered" not in got


def test_rejects_image_data() -> None:
    from src.data import DigitsDataModule

    trainer = pl.Trainer(accelerator="cpu", logger=False, enable_progress_bar=False, callbacks=[ToyMetrics()])
    with pytest.raises(ValueError, match="ImageQuality"):
        trainer.validate(Points(torch.zeros(4, 2)), datamodule=DigitsDataModule(), verbose=False)


@pytest.mark.slow  # the toy recipe's 3x512 MLPs through the CLI: 20-40 s on a shared CPU
def test_toy_config_logs_the_metrics_and_keeps_the_best_w1_checkpoint(tmp_path: Path) -> None:
    main(
        [
            "--config",
            "configs/toy.yaml",
            "--model.max_generator_steps=3",
            "--data.batches_per_epoch=5",
            "--data.val_batches=1",
            "--trainer.enable_progress_bar=false",
            f"--trainer.logger.init_args.save_dir={tmp_path}",
        ]
    )
    run = tmp_path / "toy" / "version_0"
    rows = list(csv.DictReader(open(run / "metrics.csv")))
    for key in (
        "val/modes_covered",
        "val/high_quality",
        "val/w1",
        "val/swd",
        "test/w1",
        "test/modes_covered",
    ):
        assert any(row.get(key) not in (None, "") for row in rows), key
    assert list((run / "checkpoints").glob("best-w1-*.ckpt"))
    assert (run / "checkpoints" / "last.ckpt").is_file()


class RecordingPoints(Points):
    """Points that record the noise they were asked for, at validation and at test time."""

    def __init__(self, points: torch.Tensor) -> None:
        super().__init__(points)
        self.noise: list[torch.Tensor] = []

    def sample(self, noise: torch.Tensor) -> torch.Tensor:
        self.noise.append(noise.cpu())
        return super().sample(noise)

    def test_step(self, batch, batch_idx: int) -> None:
        return None


def test_the_test_stage_uses_other_noise_and_other_real_points(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    drawn: list[torch.Tensor] = []

    def recording_sample_toy(*args, **kwargs):
        drawn.append(sample_toy(*args, **kwargs))
        return drawn[-1]

    monkeypatch.setattr(toy_metrics, "sample_toy", recording_sample_toy)
    model = RecordingPoints(sample_toy("25gaussians", 300, torch.Generator().manual_seed(5)))
    trainer = pl.Trainer(
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        limit_val_batches=1,
        limit_test_batches=1,
        default_root_dir=tmp_path,
        callbacks=[ToyMetrics(num_points=300)],
    )
    data = Toy2DDataModule(val_batches=1)
    trainer.validate(model, datamodule=data, verbose=False)
    trainer.test(model, datamodule=data, verbose=False)
    val_noise, test_noise = model.noise
    val_real, _floor, test_real = drawn
    assert not torch.allclose(val_noise, test_noise)  # before: the same seed at every stage
    assert not torch.allclose(val_real, test_real)
    assert "test/w1" in trainer.callback_metrics
