"""Penalty variants, drift and weight clipping against analytic critics and hand-computed cases."""

from __future__ import annotations

import math

import pytest
import torch

from src.regularizers import (
    DRAGANPenalty,
    DriftPenalty,
    GradientPenalty,
    OneSidedPenalty,
    R1Penalty,
    R2Penalty,
    WeightClipping,
)

SHAPES = [(16, 2), (8, 1, 5, 5), (8, 3, 4, 4)]


def linear_critic(a: torch.Tensor):
    """D(x) = a·x: the input gradient is ``a`` everywhere."""
    return lambda x: (x * a).flatten(1).sum(1)


def norm_critic(scale: float = 1.0):
    """D(x) = scale * ||x||: the input gradient has norm ``scale`` away from 0."""
    return lambda x: scale * x.flatten(1).norm(dim=1)


def batches(shape: tuple[int, ...], offset: float = 0.0) -> tuple[torch.Tensor, torch.Tensor]:
    real = torch.randn(*shape, dtype=torch.float64) + offset
    return real, torch.randn(*shape, dtype=torch.float64) + offset


# ------------------------------------------------------------------------------------- linear critic
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("scale", [0.3, 2.5])
def test_one_sided_penalty_on_a_linear_critic(shape: tuple[int, ...], scale: float) -> None:
    a = torch.randn(*shape[1:], dtype=torch.float64)
    a = a / a.norm() * scale  # ||a|| = scale
    value = OneSidedPenalty(weight=7.0).penalty(linear_critic(a), *batches(shape))
    expected = 7.0 * max(0.0, scale - 1.0) ** 2
    torch.testing.assert_close(value, torch.tensor(expected, dtype=torch.float64), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("shape", SHAPES)
def test_zero_centred_penalty_is_gradient_penalty_with_target_zero(shape: tuple[int, ...]) -> None:
    a = torch.randn(*shape[1:], dtype=torch.float64)
    value = GradientPenalty(weight=3.0, target=0.0).penalty(linear_critic(a), *batches(shape))
    torch.testing.assert_close(value, 3.0 * a.pow(2).sum(), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("cls", [R1Penalty, R2Penalty])
def test_r1_r2_on_a_linear_critic(shape: tuple[int, ...], cls: type) -> None:
    a = torch.randn(*shape[1:], dtype=torch.float64)
    value = cls(weight=4.0).penalty(linear_critic(a), *batches(shape))
    torch.testing.assert_close(value, 4.0 / 2 * a.pow(2).sum(), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("shape", SHAPES)
def test_dragan_on_a_linear_critic(shape: tuple[int, ...]) -> None:
    a = torch.randn(*shape[1:], dtype=torch.float64)
    value = DRAGANPenalty(weight=10.0).penalty(linear_critic(a), *batches(shape))
    torch.testing.assert_close(value, 10.0 * (a.norm() - 1) ** 2, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("shape", SHAPES)
def test_lp_norms_of_the_gradient(shape: tuple[int, ...]) -> None:
    """norm=inf penalizes max|∂D/∂x_i| (the L∞ gradient norm, dual of an L1 margin); norm=1 the sum of |∂D/∂x_i|."""
    a = torch.randn(*shape[1:], dtype=torch.float64)
    real, fake = batches(shape)
    for p, dual in ((math.inf, a.abs().max()), (1.0, a.abs().sum()), (2.0, a.norm())):
        value = GradientPenalty(weight=2.0, norm=p).penalty(linear_critic(a), real, fake)
        torch.testing.assert_close(value, 2.0 * (dual - 1) ** 2, rtol=1e-12, atol=1e-12)
    one_sided = OneSidedPenalty(weight=2.0, norm=math.inf).penalty(linear_critic(a), real, fake)
    torch.testing.assert_close(one_sided, 2.0 * torch.relu(a.abs().max() - 1) ** 2, rtol=1e-12, atol=1e-12)


def test_inf_norm_is_written_dot_inf_in_yaml() -> None:
    from jsonargparse import ArgumentParser

    parser = ArgumentParser()
    parser.add_class_arguments(GradientPenalty, "gp")
    assert math.isinf(parser.parse_args(["--gp.norm=.inf"]).gp.norm)


# --------------------------------------------------------------------------------------- norm critic
@pytest.mark.parametrize("shape", SHAPES)
def test_norm_critic(shape: tuple[int, ...]) -> None:
    """||∇D|| = 1 away from the origin: no one-sided/GP/DRAGAN penalty, R1 = weight/2, zero-centred = weight."""
    real, fake = batches(shape, offset=3.0)
    critic = norm_critic()
    for reg in (OneSidedPenalty(), GradientPenalty(), DRAGANPenalty()):
        assert reg.penalty(critic, real, fake).abs().item() < 1e-20, type(reg).__name__
    torch.testing.assert_close(R1Penalty(weight=6.0).penalty(critic, real, fake), torch.tensor(3.0).double())
    torch.testing.assert_close(R2Penalty(weight=6.0).penalty(critic, real, fake), torch.tensor(3.0).double())
    zero_centred = GradientPenalty(weight=5.0, target=0.0).penalty(critic, real, fake)
    torch.testing.assert_close(zero_centred, torch.tensor(5.0).double())
    steep = OneSidedPenalty(weight=1.0).penalty(norm_critic(3.0), real, fake)
    torch.testing.assert_close(steep, torch.tensor(4.0).double())  # (3 - 1)²


# ------------------------------------------------------------------------------------- hand-computed
def quadratic_critic(x: torch.Tensor) -> torch.Tensor:
    """D(x) = x₁² + 3·x₂ for 2-D points: ∇D = (2x₁, 3)."""
    return x[:, 0] ** 2 + 3 * x[:, 1]


def test_r1_and_r2_hand_computed() -> None:
    real = torch.tensor([[1.0, 0.0], [0.0, 1.0]], dtype=torch.float64)  # ∇ = (2, 3), (0, 3): ||∇||² = 13, 9
    fake = torch.tensor([[2.0, 5.0], [-1.0, 0.0]], dtype=torch.float64)  # ∇ = (4, 3), (-2, 3): 25, 13
    torch.testing.assert_close(
        R1Penalty(weight=10.0).penalty(quadratic_critic, real, fake), torch.tensor(55.0).double()
    )
    torch.testing.assert_close(
        R2Penalty(weight=10.0).penalty(quadratic_critic, real, fake), torch.tensor(95.0).double()
    )


def test_one_sided_hand_computed() -> None:
    # Interpolates between identical real and fake points are those points: ||∇|| = sqrt(13), 3, 0.5.
    x = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.25, 0.0]], dtype=torch.float64)

    def critic(x: torch.Tensor) -> torch.Tensor:  # ∇D = (2x₁, 3x₂)
        return x[:, 0] ** 2 + 1.5 * x[:, 1] ** 2

    value = OneSidedPenalty(weight=1.0).penalty(critic, x, x)
    expected = ((math.sqrt(4.0) - 1) ** 2 + (3 - 1) ** 2 + 0.0) / 3  # (2x₁,3x₂) = (2,0), (0,3), (0.5,0)
    torch.testing.assert_close(value, torch.tensor(expected).double())


def test_dragan_points_replayed_by_hand() -> None:
    real = torch.randn(64, 3, dtype=torch.float64)
    torch.manual_seed(123)
    value = DRAGANPenalty(weight=1.0).penalty(lambda x: 0.5 * x.pow(2).sum(1), real, torch.zeros_like(real))
    torch.manual_seed(123)  # replay: per-element U[0,1] noise, then one α per sample
    delta = 0.5 * real.std() * torch.rand_like(real)
    alpha = torch.rand(64, 1, dtype=torch.float64)
    points = alpha * real + (1 - alpha) * (real + delta)  # ∇(½||x||²) = x
    expected = (points.norm(dim=1) - 1).pow(2).mean()
    torch.testing.assert_close(value, expected, rtol=1e-12, atol=1e-12)


def test_dragan_points_are_near_the_real_data() -> None:
    real = torch.randn(256, 1, 4, 4)
    reg = DRAGANPenalty(perturb_scale=0.5)
    offsets = (reg.points(real, torch.full_like(real, 100.0)) - real) / (0.5 * real.std())
    assert offsets.min() >= 0 and offsets.max() <= 1 + 1e-6  # fake data are not used


def test_drift_hand_computed() -> None:
    a = torch.tensor([1.0, -2.0], dtype=torch.float64)
    real = torch.tensor([[1.0, 1.0], [3.0, 0.0]], dtype=torch.float64)  # D = -1, 3
    value = DriftPenalty(epsilon=0.001).penalty(linear_critic(a), real, real)
    torch.testing.assert_close(value, torch.tensor(0.001 * (1 + 9) / 2).double())
    reg = DriftPenalty()
    assert not reg.per_sample and not reg.active  # not a Lipschitz constraint; BatchNorm is harmless


def test_penalties_reach_the_critic_parameters() -> None:
    critic = torch.nn.Sequential(torch.nn.Linear(2, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1))
    for reg in (OneSidedPenalty(target=0.0), DRAGANPenalty(), R1Penalty(), R2Penalty(), DriftPenalty()):
        critic.zero_grad()
        reg.penalty(lambda x: critic(x).squeeze(1), torch.randn(16, 2), torch.randn(16, 2)).backward()
        assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in critic[0].parameters()), reg.name


@pytest.mark.parametrize("cls", [OneSidedPenalty, DRAGANPenalty, R1Penalty, R2Penalty])
def test_zero_weight_switches_off(cls: type) -> None:
    reg = cls(weight=0.0)
    assert not reg.active
    assert reg.penalty(linear_critic(torch.ones(2)), torch.randn(4, 2), torch.randn(4, 2)) is None


@pytest.mark.parametrize(
    ("build", "option"),
    [
        (lambda: R1Penalty(weight=-1), "weight"),
        (lambda: DriftPenalty(epsilon=-1), "epsilon"),
        (lambda: DRAGANPenalty(perturb_scale=0), "perturb_scale"),
        (lambda: WeightClipping(clip_value=0), "clip_value"),
    ],
)
def test_bad_values_name_the_option(build, option: str) -> None:
    with pytest.raises(ValueError, match=option):
        build()


# ----------------------------------------------------------------------------------- weight clipping
def test_weight_clipping_bounds_every_critic_weight_after_a_step() -> None:
    critic = torch.nn.Sequential(
        torch.nn.Linear(2, 16), torch.nn.BatchNorm1d(16), torch.nn.ReLU(), torch.nn.Linear(16, 1)
    )
    opt = torch.optim.RMSprop(critic.parameters(), lr=0.5)  # a huge step, far past the bound
    clip = WeightClipping(clip_value=0.01)
    assert clip.penalty(lambda x: critic(x).squeeze(1), torch.randn(8, 2), torch.randn(8, 2)) is None
    loss = -critic(torch.randn(32, 2)).mean()
    loss.backward()
    opt.step()
    assert any(p.abs().max() > 0.01 for p in critic.parameters())
    clip.after_critic_step(critic)
    assert all(p.abs().max() <= 0.01 for p in critic.parameters())
    assert 0 < clip.stats["frac_clipped"] <= 1
    # Buffers are left alone by default (the paper clips parameters).
    assert critic[1].running_var.max() > 0.01
    WeightClipping(0.01, clip_buffers=True).after_critic_step(critic)
    assert critic[1].running_var.abs().max() <= 0.01
    assert not clip.per_sample and clip.active
