"""A bare PyTorch WGAN-GP loop: the same math as ``src.models.WGANGP`` with nothing around it.

Read it line by line against Algorithm 1 of Gulrajani et al. (2017); the overhead benchmark compares the
project's Lightning loop against it.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import Tensor, nn


def gradient_penalty(critic: nn.Module, real: Tensor, fake: Tensor, weight: float) -> Tensor:
    """``weight * E[(||∇D(x̂)||₂ - 1)²]`` with one ε per sample."""
    eps = torch.rand(real.shape[0], *([1] * (real.dim() - 1)), device=real.device)
    x_hat = (eps * real + (1 - eps) * fake).requires_grad_(True)
    (grad,) = torch.autograd.grad(critic(x_hat).sum(), x_hat, create_graph=True)
    return weight * (grad.flatten(1).norm(dim=1) - 1).pow(2).mean()


def train(
    generator: nn.Module,
    critic: nn.Module,
    batches: Iterable[Tensor],
    n_critic: int = 5,
    gp_weight: float = 10.0,
    lr: float = 1e-4,
    betas: tuple[float, float] = (0.0, 0.9),
) -> None:
    """One pass over ``batches``: a critic step per batch, a generator step every ``n_critic`` batches."""
    g_opt = torch.optim.Adam(generator.parameters(), lr=lr, betas=betas)
    c_opt = torch.optim.Adam(critic.parameters(), lr=lr, betas=betas)
    for i, real in enumerate(batches):
        z = torch.randn(real.shape[0], generator.latent_dim)
        with torch.no_grad():
            fake = generator(z)
        loss = critic(fake).mean() - critic(real).mean()
        if gp_weight > 0:
            loss = loss + gradient_penalty(critic, real, fake, gp_weight)
        c_opt.zero_grad(set_to_none=True)
        loss.backward()
        c_opt.step()
        if (i + 1) % n_critic == 0:
            critic.requires_grad_(False)
            g_loss = -critic(generator(torch.randn(real.shape[0], generator.latent_dim))).mean()
            g_opt.zero_grad(set_to_none=True)
            g_loss.backward()
            g_opt.step()
            critic.requires_grad_(True)
