"""Spectral normalisation of the critics (norm="spectral"): every weight ends with largest singular value ~1."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from src.nets import (
    DCGANCritic,
    MLPCritic,
    ProjectionDCGANCritic,
    ProjectionResNetCritic,
    ResNetCritic,
)
from src.nets.spectral import LINEAR_LAYERS, has_spectral_norm, is_spectrally_normalized, spectral_normalize

CRITICS = {
    "dcgan": lambda norm: DCGANCritic((1, 16, 16), dim=8, norm=norm),
    "resnet": lambda norm: ResNetCritic((3, 16, 16), dim=8, norm=norm),
    "mlp": lambda norm: MLPCritic(hidden_dim=16, norm=norm),
    "projection_dcgan": lambda norm: ProjectionDCGANCritic((1, 16, 16), dim=8, norm=norm, num_classes=3),
    "projection_resnet": lambda norm: ProjectionResNetCritic((3, 16, 16), dim=8, num_classes=3, norm=norm),
}


def _forward(critic: nn.Module, n: int = 8) -> torch.Tensor:
    shape = critic.data_shape
    x = torch.randn(n, *shape)
    return critic(x) if not critic.num_classes else critic(x, torch.randint(critic.num_classes, (n,)))


@pytest.mark.parametrize("name", list(CRITICS))
def test_every_weight_has_unit_spectral_norm_after_power_iterations(name: str) -> None:
    torch.manual_seed(0)
    critic = CRITICS[name]("spectral").train()
    layers = [m for m in critic.modules() if isinstance(m, LINEAR_LAYERS)]
    assert layers and all(has_spectral_norm(m) for m in layers) and is_spectrally_normalized(critic)
    with torch.no_grad():  # 15 power iterations at registration, then one per training forward
        for _ in range(100):  # a ResNet convolution here needs ~100 (its top singular values are close)
            _forward(critic, 2)
    critic.eval()  # uses the estimate without another iteration
    for layer in layers:
        sigma = torch.linalg.matrix_norm(layer.weight.detach().flatten(1), ord=2)
        assert sigma.item() == pytest.approx(1.0, abs=0.01), (type(layer).__name__, sigma)
    assert _forward(critic).shape == (8,)


def test_the_estimate_never_overshoots() -> None:
    """Power iteration under-estimates sigma, so a normalised weight's sigma starts at or above 1 and falls."""
    torch.manual_seed(0)
    critic = CRITICS["resnet"]("spectral").train()
    layers = [m for m in critic.modules() if isinstance(m, LINEAR_LAYERS)]
    for _ in range(3):
        sigmas = [torch.linalg.matrix_norm(m.weight.detach().flatten(1), ord=2).item() for m in layers]
        assert min(sigmas) >= 1 - 1e-5
        with torch.no_grad():
            _forward(critic, 2)


@pytest.mark.parametrize("name", list(CRITICS))
def test_norm_none_leaves_the_weights_alone(name: str) -> None:
    assert not is_spectrally_normalized(CRITICS[name]("none"))


def test_spectral_mlp_critic_is_1_lipschitz() -> None:
    """With every layer of a ReLU MLP normalised, ||grad D(x)|| <= prod of sigmas ~ 1."""
    torch.manual_seed(0)
    critic = MLPCritic(hidden_dim=32, norm="spectral").train()
    with torch.no_grad():
        for _ in range(20):
            critic(torch.randn(64, 2))
    critic.eval()
    x = (3 * torch.randn(256, 2)).requires_grad_(True)
    (grad,) = torch.autograd.grad(critic(x).sum(), x)
    assert grad.norm(dim=1).max().item() <= 1.02


def test_spectral_normalize_is_idempotent_and_keeps_the_initial_weight() -> None:
    layer = nn.Linear(5, 3)
    before = layer.weight.detach().clone()
    spectral_normalize(layer)
    spectral_normalize(layer)
    assert len(layer.parametrizations["weight"]) == 1
    torch.testing.assert_close(layer.parametrizations["weight"].original, before)


def test_old_style_spectral_norm_is_recognised_and_a_partial_one_is_not() -> None:
    net = nn.Sequential(nn.utils.spectral_norm(nn.Linear(2, 4)), nn.ReLU(), nn.Linear(4, 1))
    assert has_spectral_norm(net[0]) and not is_spectrally_normalized(net)  # the head is not normalised
    nn.utils.spectral_norm(net[2])
    assert is_spectrally_normalized(net)


def test_unknown_norm_is_rejected() -> None:
    with pytest.raises(ValueError, match="'none' or 'spectral'"):
        MLPCritic(norm="layer")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="'spectral'"):
        DCGANCritic(norm="group")  # type: ignore[arg-type]
