"""Competitive gradient descent (the `cgds` package behind src.optim.CGD) against its closed form."""

from __future__ import annotations

import math
import warnings
from functools import partial
from pathlib import Path

import lightning.pytorch as pl
import pytest
import torch

from src.data.toy import sample_toy
from src.metrics import exact_w1
from src.models import CompetitiveWGAN
from src.nets import MLPCritic, MLPGenerator
from tests.helpers import toy_data, trainer

pytest.importorskip("CGDs")

from src.optim import CGD  # noqa: E402


@pytest.mark.parametrize(("lr_x", "lr_y"), [(0.1, 0.1), (0.05, 0.2)])
def test_cgd_step_matches_the_closed_form_on_a_bilinear_game(lr_x: float, lr_y: float) -> None:
    """f(x, y) = xᵀAy, x minimizes, y maximizes (Schäfer & Anandkumar 2019, eq. 4 with g = -f):

    Δx = -ηx (I + ηx ηy A Aᵀ)⁻¹ (A y + ηy A Aᵀ x),   Δy = ηy (I + ηx ηy Aᵀ A)⁻¹ (Aᵀ x - ηx Aᵀ A y).
    """
    torch.manual_seed(0)
    n, m = 6, 4
    A = torch.randn(n, m, dtype=torch.float64)
    x = torch.nn.Parameter(torch.randn(n, dtype=torch.float64))
    y = torch.nn.Parameter(torch.randn(m, dtype=torch.float64))
    x0, y0 = x.detach().clone(), y.detach().clone()
    opt = CGD([x], [y], lr_min=lr_x, lr_max=lr_y, tol=1e-30, atol=1e-30)
    opt.step(lambda: x @ A @ y)
    dx = -lr_x * torch.linalg.solve(
        torch.eye(n).double() + lr_x * lr_y * A @ A.T, A @ y0 + lr_y * A @ A.T @ x0
    )
    dy = lr_y * torch.linalg.solve(
        torch.eye(m).double() + lr_x * lr_y * A.T @ A, A.T @ x0 - lr_x * A.T @ A @ y0
    )
    # cgds runs its conjugate-gradient iterate in float32 (torch's default dtype), hence the tolerance.
    torch.testing.assert_close(x.detach() - x0, dx, rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(y.detach() - y0, dy, rtol=1e-5, atol=1e-7)
    assert x.grad is None and y.grad is None


def test_cgd_converges_on_a_bilinear_game_where_simultaneous_gda_diverges() -> None:
    torch.manual_seed(0)
    A = torch.randn(5, 5, dtype=torch.float64)
    start = torch.randn(5, dtype=torch.float64), torch.randn(5, dtype=torch.float64)

    def run(use_cgd: bool) -> float:
        x, y = (torch.nn.Parameter(s.clone()) for s in start)
        opt = CGD([x], [y], lr_min=0.2) if use_cgd else None
        for _ in range(200):
            if use_cgd:
                opt.step(lambda x=x, y=y: x @ A @ y)
            else:
                gx, gy = torch.autograd.grad(x @ A @ y, (x, y))
                with torch.no_grad():
                    x -= 0.2 * gx
                    y += 0.2 * gy
        return float(torch.cat([x.detach(), y.detach()]).norm())

    initial = float(torch.cat(start).norm())
    assert run(use_cgd=True) < 0.5 * initial  # the equilibrium (0, 0) attracts CGD
    assert run(use_cgd=False) > 10 * initial  # simultaneous GDA spirals out


def test_cgd_state_dict_round_trip_and_scheduler() -> None:
    x, y = torch.nn.Parameter(torch.randn(3)), torch.nn.Parameter(torch.randn(3))
    opt = CGD([x], [y], lr_min=0.1, lr_max=0.2, adaptive=True)
    opt.step(lambda: (x * y).sum() + x.pow(2).sum())
    state = opt.state_dict()
    assert state["cgds"]["step"] == 1
    other = CGD([x], [y], lr_min=0.1, lr_max=0.2, adaptive=True)
    other.load_state_dict(state)
    assert other.solver.state["step"] == 1
    torch.testing.assert_close(other.solver.state["sq_exp_avg_max"], opt.solver.state["sq_exp_avg_max"])
    sched = torch.optim.lr_scheduler.LinearLR(other, start_factor=1.0, end_factor=0.5, total_iters=1)
    other.step(lambda: (x * y).sum())
    sched.step()
    assert [g["lr"] for g in other.param_groups] == pytest.approx([0.05, 0.1])
    with pytest.raises(ValueError, match="closure"):
        other.step()


# ------------------------------------------------------------------------------------ CGD training mode
def _cgd_model(steps: int, hidden: int = 32, **kwargs: object) -> CompetitiveWGAN:
    return CompetitiveWGAN(
        MLPGenerator(latent_dim=2, hidden_dim=hidden),
        MLPCritic(hidden_dim=hidden),
        n_critic=1,
        competitive_optimizer=partial(CGD, lr_min=0.01, adaptive=True),  # ACGD, as in Schäfer et al. 2020
        max_generator_steps=steps,
        **kwargs,
    )


class Losses(pl.Callback):
    """The logged Wasserstein estimate after every step."""

    def __init__(self) -> None:
        self.values: list[float] = []

    def on_train_batch_end(self, trainer: pl.Trainer, *args: object) -> None:
        self.values.append(float(trainer.callback_metrics["train/wasserstein"]))


def test_plain_wgan_loss_trains_stably_under_cgd(tmp_path: Path) -> None:
    """Schäfer et al. (2020): no penalty, yet the losses stay bounded and the generator moves to the data."""
    torch.manual_seed(0)
    model, losses = _cgd_model(150), Losses()
    real = sample_toy("25gaussians", 1000, torch.Generator().manual_seed(1))
    before = exact_w1(model.sample(1000), real)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        trainer(tmp_path, callbacks=[losses], max_epochs=100, log_every_n_steps=1).fit(model, toy_data(50))
    assert not [w for w in caught if "unconstrained" in str(w.message)]  # no penalty is the point here
    assert (model.generator_steps, model.critic_steps) == (150, 150)
    assert len(losses.values) == 150 and all(math.isfinite(v) and abs(v) < 10 for v in losses.values)
    after = exact_w1(model.sample(1000), real)
    assert after < 0.6 * before, (before, after)
    assert all(torch.isfinite(p).all() for p in model.parameters())


def test_cgd_mode_checkpoints_and_resumes(tmp_path: Path) -> None:
    t = trainer(tmp_path, callbacks=[], max_epochs=10, enable_checkpointing=True)
    t.fit(_cgd_model(3, hidden=8), toy_data(5))
    # weights_only=False: the partial(CGD, ...) in the hyperparameters (the CLI stores a plain dict instead)
    ckpt = torch.load(t.checkpoint_callback.best_model_path, weights_only=False)
    assert ckpt["optimizer_states"][0]["cgds"]["step"] == 3
    resumed = _cgd_model(5, hidden=8)
    trainer(tmp_path, callbacks=[], max_epochs=10).fit(
        resumed, toy_data(5), ckpt_path=t.checkpoint_callback.best_model_path, weights_only=False
    )
    assert resumed.optimizers().optimizer.solver.state["step"] == 5 and resumed.generator_steps == 5


def test_cgd_mode_rejects_alternating_options() -> None:
    with pytest.raises(ValueError, match="n_critic=1"):
        CompetitiveWGAN(
            MLPGenerator(), MLPCritic(), n_critic=5, competitive_optimizer=partial(CGD, lr_min=0.1)
        )
