"""Mixed precision with the gradient penalty: bf16 on the CPU, fp16 (scaled) where a GPU is available."""

from __future__ import annotations

import csv
import math
from pathlib import Path
from types import SimpleNamespace

import lightning.pytorch as pl
import pytest
import torch
from lightning.pytorch.plugins.precision import MixedPrecision

from src.nets import MLPCritic
from src.regularizers import GradientPenalty
from tests.helpers import run_cli, toy_data, toy_model, trainer


def _inputs(device: str = "cpu") -> tuple[MLPCritic, torch.Tensor, torch.Tensor]:
    torch.manual_seed(0)
    critic = MLPCritic(hidden_dim=64).to(device)
    real = torch.randn(128, 2, device=device)
    fake = torch.randn(128, 2, device=device) * 0.5 + 1
    return critic, real, fake


def _penalty(reg: GradientPenalty, critic: MLPCritic, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    torch.manual_seed(1)  # the same ε on every call
    return reg.penalty(critic, real, fake)


def _with_scaler(scaler: object | None) -> GradientPenalty:
    reg = GradientPenalty()
    reg.setup(
        SimpleNamespace(precision_plugin=SimpleNamespace(scaler=scaler)), None, "fit"
    )  # as Lightning does
    return reg


def test_setup_takes_an_enabled_scaler_from_the_precision_plugin() -> None:
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0**16)
    assert _with_scaler(scaler)._scaler is scaler
    assert _with_scaler(torch.amp.GradScaler("cpu", enabled=False))._scaler is None
    assert _with_scaler(None)._scaler is None
    bf16 = pl.Trainer(accelerator="cpu", precision="bf16-mixed", logger=False)  # bf16 needs no scaling
    reg = GradientPenalty()
    reg.setup(bf16, None, "fit")
    assert reg._scaler is None


def test_scaled_input_gradient_is_unscaled_before_the_norm() -> None:
    critic, real, fake = _inputs()
    plain = _penalty(_with_scaler(None), critic, real, fake)
    for scale in (2.0**8, 2.0**16, 2.0**24):
        scaled = _penalty(_with_scaler(torch.amp.GradScaler("cpu", init_scale=scale)), critic, real, fake)
        torch.testing.assert_close(scaled, plain, rtol=1e-6, atol=0)
    # and its gradient with respect to the critic's parameters is the same too
    grads = []
    for reg in (_with_scaler(None), _with_scaler(torch.amp.GradScaler("cpu", init_scale=2.0**16))):
        critic.zero_grad()
        _penalty(reg, critic, real, fake).backward()
        grads.append([p.grad.clone() for p in critic.parameters() if p.grad is not None])  # no last bias
    assert len(grads[0]) == len(grads[1]) > 0
    for a, b in zip(*grads):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-7)


def test_bf16_autocast_penalty_matches_fp32() -> None:
    critic, real, fake = _inputs()
    reference = _penalty(_with_scaler(None), critic, real, fake)
    with MixedPrecision("bf16-mixed", "cpu").forward_context():  # the context Lightning trains in
        bf16 = _penalty(_with_scaler(None), critic, real, fake)
    assert bf16.dtype == torch.float32  # the norm is taken in float32
    torch.testing.assert_close(bf16, reference, rtol=3e-2, atol=1e-3)


def test_bf16_mixed_trains_from_the_cli(tmp_path: Path) -> None:
    run_cli(
        [
            "--config",
            "configs/toy.yaml",
            "--trainer.precision=bf16-mixed",
            "--model.max_generator_steps=3",
            "--model.n_critic=2",
            "--model.generator.init_args.hidden_dim=16",
            "--model.critic.init_args.hidden_dim=16",
            "--data.batch_size=32",
            "--data.batches_per_epoch=10",
            "--trainer.limit_val_batches=1",
            "--trainer.log_every_n_steps=1",
            "--trainer.enable_progress_bar=false",
            "--quality=null",
            "--best=null",
            f"--trainer.logger.init_args.save_dir={tmp_path}",
        ]
    )
    rows = list(csv.DictReader((tmp_path / "toy/version_0/metrics.csv").open()))
    gps = [float(r["train/gp"]) for r in rows if r.get("train/gp")]
    assert len(gps) == 6 and all(math.isfinite(g) and g > 0 for g in gps)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_fp16_scaled_penalty_matches_fp32_on_gpu() -> None:
    critic, real, fake = _inputs("cuda")
    reference = _penalty(_with_scaler(None), critic, real, fake)
    plugin = MixedPrecision("16-mixed", "cuda", scaler=torch.amp.GradScaler("cuda", init_scale=2.0**16))
    with plugin.forward_context():
        fp16 = _penalty(_with_scaler(plugin.scaler), critic, real, fake)
    torch.testing.assert_close(fp16, reference, rtol=2e-2, atol=1e-3)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_fp16_mixed_trains_on_gpu_with_the_scaler_wired(tmp_path: Path) -> None:
    model = toy_model(n_critic=2, max_generator_steps=3)
    reg = GradientPenalty()
    t = trainer(tmp_path, callbacks=[reg], accelerator="gpu", precision="16-mixed", max_epochs=5)
    t.fit(model, toy_data(4))
    assert reg._scaler is t.precision_plugin.scaler and reg._scaler is not None
    assert model.generator_steps == 3
    assert all(torch.isfinite(p).all() for p in model.parameters())


def test_fp16_logs_unscaled_gradient_norms(tmp_path: Path) -> None:
    """``train/*_grad_norm`` read the same under a 2^8 loss scale as in fp32 (CPU fp16 autocast)."""
    logged = {}
    for name, plugins in (
        ("fp32", []),
        ("fp16", [MixedPrecision("16-mixed", "cpu", scaler=torch.amp.GradScaler("cpu", init_scale=2.0**8))]),
    ):
        pl.seed_everything(0)
        model = toy_model(n_critic=1, max_generator_steps=1)
        t = trainer(tmp_path, plugins=plugins, log_every_n_steps=1)
        t.fit(model, toy_data(1))
        logged[name] = {
            k: float(t.callback_metrics[f"train/{k}"]) for k in ("critic_grad_norm", "gen_grad_norm")
        }
    for key, value in logged["fp32"].items():
        assert 0 < value < 1e3
        assert logged["fp16"][key] == pytest.approx(value, rel=0.05)  # not 256 times it
