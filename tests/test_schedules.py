"""Learning-rate schedules step once per generator step and resume where they stopped."""

from __future__ import annotations

from functools import partial
from pathlib import Path

import lightning.pytorch as pl
import pytest
import torch

from src.models import WGANGP
from tests.helpers import toy_data, toy_model, trainer

SGDR = partial(torch.optim.lr_scheduler.CosineAnnealingWarmRestarts, T_0=3, T_mult=2, eta_min=1e-5)
LINEAR = partial(torch.optim.lr_scheduler.LinearLR, start_factor=1.0, end_factor=0.0, total_iters=6)


class LearningRates(pl.Callback):
    """The (generator, critic) learning rates after every generator step."""

    def __init__(self) -> None:
        self.lrs: list[tuple[float, float]] = []
        self._seen = 0

    def on_train_start(self, trainer: pl.Trainer, pl_module: WGANGP) -> None:
        self._seen = pl_module.generator_steps  # > 0 after a resume

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: WGANGP, *args: object) -> None:
        if pl_module.generator_steps > self._seen:
            self._seen = pl_module.generator_steps
            g, c = pl_module.optimizers()
            self.lrs.append((g.param_groups[0]["lr"], c.param_groups[0]["lr"]))


def reference(schedule: partial, steps: int, lr: float = 1e-4) -> list[float]:
    """torch's scheduler stepped ``steps`` times on a bare optimizer: the lr after each step."""
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=lr)
    sched = schedule(opt)
    out = []
    for _ in range(steps):
        opt.step()
        sched.step()
        out.append(opt.param_groups[0]["lr"])
    return out


def _model(steps: int, schedule: partial) -> WGANGP:
    return toy_model(n_critic=2, hidden=8, max_generator_steps=steps, generator_scheduler=schedule,
                     critic_scheduler=schedule)  # fmt: skip


@pytest.mark.parametrize("schedule", [SGDR, LINEAR], ids=["sgdr", "linear_to_zero"])
def test_lr_follows_the_torch_scheduler_stepped_by_generator_steps(tmp_path: Path, schedule: partial) -> None:
    rates = LearningRates()
    trainer(tmp_path, callbacks=[rates], max_epochs=20).fit(_model(10, schedule), toy_data(5))
    expected = reference(schedule, 10)  # two warm restarts for SGDR (after 3 and 3 + 6 steps)
    assert [g for g, _ in rates.lrs] == pytest.approx(expected, rel=1e-12)
    assert [c for _, c in rates.lrs] == pytest.approx(expected, rel=1e-12)
    if schedule is SGDR:
        assert rates.lrs[2][0] == pytest.approx(1e-4) and rates.lrs[1][0] < 1e-4  # restarted after 3 steps
    else:
        assert rates.lrs[5][0] == 0.0


def test_sgdr_continues_after_resume(tmp_path: Path) -> None:
    t = trainer(tmp_path, max_epochs=20, enable_checkpointing=True, default_root_dir=tmp_path / "a")
    t.fit(_model(4, SGDR), toy_data(5, seed=1))
    rates = LearningRates()
    resumed = trainer(tmp_path, callbacks=[rates], max_epochs=20, default_root_dir=tmp_path / "b")
    model = _model(10, SGDR)
    resumed.fit(
        model, toy_data(5, seed=1), ckpt_path=t.checkpoint_callback.best_model_path, weights_only=False
    )
    assert [g for g, _ in rates.lrs] == pytest.approx(reference(SGDR, 10)[4:], rel=1e-12)
    assert model.lr_schedulers()[0].T_cur == reference_t_cur(10)


def reference_t_cur(steps: int) -> int:
    sched = SGDR(torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1e-4))
    for _ in range(steps):
        sched.optimizer.step()
        sched.step()
    return sched.T_cur
