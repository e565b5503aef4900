"""Normalized SGD (nSGDA) against its definition."""

from __future__ import annotations

import pytest
import torch

from src.optim import NormalizedSGD


def _params_with_grads() -> list[torch.nn.Parameter]:
    params = [torch.nn.Parameter(torch.randn(*s, dtype=torch.float64)) for s in ((4, 3), (3,), (2, 2, 2))]
    for p, scale in zip(params, (5.0, 0.01, 1.0)):
        p.grad = torch.randn_like(p) * scale
    return params


def test_layerwise_nsgd_moves_each_tensor_by_lr_along_minus_gradient() -> None:
    params = _params_with_grads()
    before = [p.detach().clone() for p in params]
    NormalizedSGD(params, lr=0.05, normalize="layer").step()
    for p, b in zip(params, before):
        update = p.detach() - b
        torch.testing.assert_close(update.norm(), torch.tensor(0.05, dtype=torch.float64))
        torch.testing.assert_close(update, -0.05 * p.grad / p.grad.norm())


def test_global_nsgd_moves_the_group_by_lr() -> None:
    params = _params_with_grads()
    before = [p.detach().clone() for p in params]
    NormalizedSGD(params, lr=0.05, normalize="global").step()
    updates = [p.detach() - b for p, b in zip(params, before)]
    total = torch.cat([u.flatten() for u in updates]).norm()
    torch.testing.assert_close(total, torch.tensor(0.05, dtype=torch.float64))
    grad_norm = torch.cat([p.grad.flatten() for p in params]).norm()
    for u, p in zip(updates, params):
        torch.testing.assert_close(u, -0.05 * p.grad / grad_norm)


def test_nsgd_zero_gradient_no_step_and_bad_options() -> None:
    p = torch.nn.Parameter(torch.ones(3))
    p.grad = torch.zeros(3)
    NormalizedSGD([p], lr=1.0).step()
    assert torch.equal(p.detach(), torch.ones(3))
    with pytest.raises(ValueError, match="normalize"):
        NormalizedSGD([p], normalize="row")  # type: ignore[arg-type]


def test_nsgd_is_scheduled_like_any_optimizer() -> None:
    p = torch.nn.Parameter(torch.zeros(2))
    opt = NormalizedSGD([p], lr=1.0)
    sched = torch.optim.lr_scheduler.LinearLR(opt, start_factor=1.0, end_factor=0.0, total_iters=4)
    lengths = []
    for _ in range(4):
        before = p.detach().clone()
        p.grad = torch.tensor([3.0, 4.0])
        opt.step()
        sched.step()
        lengths.append(round(float((p.detach() - before).norm()), 6))
    assert lengths == [1.0, 0.75, 0.5, 0.25]
