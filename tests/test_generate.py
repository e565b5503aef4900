"""``python -m src.generate`` end to end on a checkpoint of a 2-step digits run, and its pieces."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from src.generate import load_model, main, slerp
from src.train import main as train_main

TINY_COND = [
    "--config", "configs/ema.yaml",
    "--model.max_generator_steps=2", "--model.n_critic=1", "--trainer.limit_val_batches=1",
    "--trainer.enable_progress_bar=false", "--quality=null", "--best=null", "--data.image_size=16",
    "--model.generator.init_args.dim=8", "--model.critic.init_args.dim=8",
]  # fmt: skip


@pytest.fixture(scope="module")
def cond_ckpt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """last.ckpt of a 2-step conditional digits run with an EMA generator, written by the training CLI."""
    root = tmp_path_factory.mktemp("runs")
    train_main([*TINY_COND, f"--trainer.logger.init_args.save_dir={root}"])
    return root / "digits" / "version_0" / "checkpoints" / "last.ckpt"


def test_generate_writes_grid_interpolation_and_raw_samples(cond_ckpt: Path, tmp_path: Path) -> None:
    out = tmp_path / "gen"
    written = main(["--ckpt", str(cond_ckpt), "--n", "30", "--out", str(out), "--interpolate", "5",
                    "--save-raw", "npz", "--batch-size", "7"])  # fmt: skip
    assert set(written) == {"samples", "interpolation", "raw"}
    # 30 samples, one row per class: rows of ceil(30 / 10) = 3 images of 16 px with 2 px padding.
    assert Image.open(written["samples"]).size == (3 * 18 + 2, 10 * 18 + 2)
    assert Image.open(written["interpolation"]).size == (5 * 18 + 2, 10 * 18 + 2)  # a row per class
    raw = np.load(written["raw"])
    assert raw["samples"].shape == (30, 1, 16, 16) and np.abs(raw["samples"]).max() <= 1
    assert raw["labels"].tolist() == [i // 3 for i in range(30)]


def test_generate_labels_and_pt_and_default_folder(cond_ckpt: Path) -> None:
    written = main(["--ckpt", str(cond_ckpt), "--n", "6", "--labels", "3", "7", "--save-raw", "pt"])
    assert written["samples"].parent == cond_ckpt.parent.parent / "generated"
    raw = torch.load(written["raw"], weights_only=True)
    assert raw["labels"].tolist() == [3, 3, 3, 7, 7, 7] and raw["samples"].shape == (6, 1, 16, 16)
    with pytest.raises(ValueError, match="--labels must be in"):
        main(["--ckpt", str(cond_ckpt), "--labels", "12"])


def test_checkpoint_rebuilds_the_model_with_its_ema(cond_ckpt: Path) -> None:
    model = load_model(cond_ckpt)
    assert type(model.generator).__name__ == "ConditionalDCGANGenerator" and model.num_classes == 10
    assert model.generator.data_shape == (1, 16, 16) and model.generator_steps == 2
    assert model.generator_ema is not None and int(model.generator_ema.n_averaged) == 2
    saved = torch.load(cond_ckpt, weights_only=True)["state_dict"]
    torch.testing.assert_close(
        model.generator_ema.module.embed.weight, saved["generator_ema.module.embed.weight"]
    )


def test_a_checkpoint_without_network_configs_says_how_to_load_it(tmp_path: Path) -> None:
    path = tmp_path / "bare.ckpt"
    torch.save({"state_dict": {}, "hyper_parameters": {"n_critic": 5}}, path)
    with pytest.raises(ValueError, match="load_from_checkpoint"):
        load_model(path)


def test_slerp_stays_on_the_sphere_and_hits_the_ends() -> None:
    a, b = torch.randn(4, 16), torch.randn(4, 16)
    b = b / b.norm(dim=1, keepdim=True) * a.norm(dim=1, keepdim=True)  # same radius
    path = slerp(a, b, torch.linspace(0, 1, 7))  # (4, 7, 16)
    torch.testing.assert_close(path[:, 0], a)
    torch.testing.assert_close(path[:, -1], b)
    torch.testing.assert_close(path.norm(dim=2), a.norm(dim=1, keepdim=True).expand(4, 7))
    angle = torch.acos(torch.nn.functional.cosine_similarity(path[:, 0], path[:, 1], dim=1))
    total = torch.acos(torch.nn.functional.cosine_similarity(a, b, dim=1))
    torch.testing.assert_close(angle, total / 6)  # equal angular steps
    same = slerp(a, a, torch.tensor([0.5]))
    assert torch.isfinite(same).all() and math.isclose(float((same[:, 0] - a).abs().max()), 0.0, abs_tol=1e-5)
