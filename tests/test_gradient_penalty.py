"""The gradient penalty against analytic critics (Gulrajani et al. 2017, eq. 3)."""

from __future__ import annotations

import pytest
import torch

from src.regularizers import GradientPenalty, gradient_norm


@pytest.mark.parametrize("shape", [(16, 2), (8, 1, 5, 5), (8, 3, 4, 4)])
@pytest.mark.parametrize(("weight", "target"), [(10.0, 1.0), (0.1, 1.0), (2.0, 0.0)])
def test_linear_critic_penalty_is_exact(shape: tuple[int, ...], weight: float, target: float) -> None:
    a = torch.randn(*shape[1:], dtype=torch.float64) * 0.7

    def critic(x: torch.Tensor) -> torch.Tensor:  # D(x) = a·x, gradient a everywhere
        return (x * a).flatten(1).sum(1)

    real, fake = torch.randn(*shape, dtype=torch.float64), torch.randn(*shape, dtype=torch.float64)
    value = GradientPenalty(weight=weight, target=target).penalty(critic, real, fake)
    expected = weight * (a.norm() - target) ** 2
    torch.testing.assert_close(value, expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("shape", [(32, 2), (8, 1, 6, 6), (8, 3, 4, 4)])
def test_norm_critic_has_unit_gradient_and_zero_penalty(shape: tuple[int, ...]) -> None:
    def critic(x: torch.Tensor) -> torch.Tensor:  # D(x) = ||x||, gradient norm 1 away from 0
        return x.flatten(1).norm(dim=1)

    real, fake = torch.randn(*shape, dtype=torch.float64) + 3, torch.randn(*shape, dtype=torch.float64) + 3
    gp = GradientPenalty(weight=10.0)
    value = gp.penalty(critic, real, fake)
    assert value.abs().item() < 1e-20
    torch.testing.assert_close(gp.stats["grad_norm"], torch.tensor(1.0, dtype=torch.float64))


def test_norm_is_per_sample_over_all_pixels() -> None:
    grad = torch.arange(2 * 3 * 2 * 2, dtype=torch.float64).view(2, 3, 2, 2)
    expected = torch.stack([g.flatten().norm() for g in grad])
    torch.testing.assert_close(gradient_norm(grad), expected)
    assert not torch.allclose(gradient_norm(grad), grad.norm(dim=1).flatten(1).mean(1))


def test_one_epsilon_per_sample_on_the_segment() -> None:
    real, fake = torch.zeros(512, 3, 2, 2), torch.ones(512, 3, 2, 2)
    x_hat = GradientPenalty().interpolate(real, fake)  # = 1 - eps, constant within a sample
    per_sample = x_hat.flatten(1)
    assert torch.all(per_sample.max(1).values == per_sample.min(1).values)
    assert per_sample[:, 0].unique().numel() > 500  # a different eps for each sample
    assert x_hat.min() >= 0 and x_hat.max() <= 1


def test_penalty_gradient_reaches_critic_parameters() -> None:
    critic = torch.nn.Sequential(torch.nn.Linear(2, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1))
    value = GradientPenalty().penalty(lambda x: critic(x).squeeze(1), torch.randn(16, 2), torch.randn(16, 2))
    value.backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in critic[0].parameters())


def test_zero_weight_is_inactive_and_negative_weight_is_an_error() -> None:
    gp = GradientPenalty(weight=0.0)
    assert not gp.active
    assert gp.penalty(lambda x: x.sum(1), torch.randn(4, 2), torch.randn(4, 2)) is None
    with pytest.raises(ValueError, match="weight"):
        GradientPenalty(weight=-1.0)
