"""MLP generator and critic for 2-D toy data (the paper's ``gan_toy.py``: 3 hidden layers of 512, ReLU)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn


def _mlp(in_dim: int, hidden: int, depth: int, out_dim: int) -> nn.Sequential:
    layers: list[nn.Module] = []
    dim = in_dim
    for _ in range(depth):
        layers += [nn.Linear(dim, hidden), nn.ReLU(inplace=True)]
        dim = hidden
    layers.append(nn.Linear(dim, out_dim))
    return nn.Sequential(*layers)


class MLPGenerator(nn.Module):
    """Maps noise ``z`` of shape (B, latent_dim) to points of shape (B, *data_shape).

    Args:
        data_shape: Shape of one sample, e.g. ``(2,)`` for the toy sets; linked from the datamodule.
        latent_dim: Size of the noise vector (the paper's toy code uses 2).
        hidden_dim: Width of each hidden layer.
        depth: Number of hidden layers.
    """

    def __init__(
        self, data_shape: Sequence[int] = (2,), latent_dim: int = 2, hidden_dim: int = 512, depth: int = 3
    ) -> None:
        super().__init__()
        self.data_shape = tuple(data_shape)
        self.latent_dim = latent_dim
        self.num_classes = 0
        self.net = _mlp(latent_dim, hidden_dim, depth, int(torch.Size(self.data_shape).numel()))

    def forward(self, z: Tensor) -> Tensor:
        """Generate samples from noise (B, latent_dim) -> (B, *data_shape)."""
        return self.net(z).view(z.shape[0], *self.data_shape)


class MLPCritic(nn.Module):
    """Scores samples of shape (B, *data_shape) with one real number each, shape (B,).

    Args:
        data_shape: Shape of one sample; linked from the datamodule.
        hidden_dim: Width of each hidden layer.
        depth: Number of hidden layers.
    """

    def __init__(self, data_shape: Sequence[int] = (2,), hidden_dim: int = 512, depth: int = 3) -> None:
        super().__init__()
        self.data_shape = tuple(data_shape)
        self.num_classes = 0
        self.net = _mlp(int(torch.Size(self.data_shape).numel()), hidden_dim, depth, 1)

    def forward(self, x: Tensor) -> Tensor:
        """Critic scores (B,)."""
        return self.net(x.flatten(1)).squeeze(1)
