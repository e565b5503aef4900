"""MLP generator and critic for 2-D toy data (the paper's ``gan_toy.py``: 3 hidden layers of 512, ReLU)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch
from torch import Tensor, nn

from src.nets.init import Init, init_weights
from src.nets.shapes import check_sizes
from src.nets.spectral import spectral_normalize


def _mlp(in_dim: int, hidden: int, depth: int, out_dim: int) -> nn.Sequential:
    layers: list[nn.Module] = []
    dim = in_dim
    for _ in range(depth):
        layers += [nn.Linear(dim, hidden), nn.ReLU(inplace=True)]
        dim = hidden
    layers.append(nn.Linear(dim, out_dim))
    return nn.Sequential(*layers)


def _init_mlp(net: nn.Sequential, init: Init) -> None:
    """The paper's init (tflib, as ``gan_toy.py``): He for the hidden (ReLU) layers, Glorot for the output layer."""
    init_weights(net, init, he_linear=[m for m in net if isinstance(m, nn.Linear)][:-1])


class MLPGenerator(nn.Module):
    """Maps noise ``z`` of shape (B, latent_dim) to points of shape (B, *data_shape).

    Args:
        data_shape: Shape of one sample, e.g. ``(2,)`` for the toy sets; linked from the datamodule.
        latent_dim: Size of the noise vector (the paper's toy code uses 2).
        hidden_dim: Width of each hidden layer.
        depth: Number of hidden layers.
        init: ``"torch"`` (PyTorch's default) or ``"paper"`` (tflib's, as ``gan_toy.py``; see
            :mod:`src.nets.init`).
    """

    def __init__(
        self,
        data_shape: Sequence[int] = (2,),
        latent_dim: int = 2,
        hidden_dim: int = 512,
        depth: int = 3,
        init: Init = "torch",
    ) -> None:
        super().__init__()
        check_sizes("MLPGenerator", latent_dim=latent_dim, hidden_dim=hidden_dim)
        check_sizes("MLPGenerator", 0, depth=depth)
        self.data_shape = tuple(data_shape)
        self.latent_dim = latent_dim
        self.num_classes = 0
        self.net = _mlp(latent_dim, hidden_dim, depth, int(torch.Size(self.data_shape).numel()))
        _init_mlp(self.net, init)

    def forward(self, z: Tensor) -> Tensor:
        """Generate samples from noise (B, latent_dim) -> (B, *data_shape)."""
        return self.net(z).view(z.shape[0], *self.data_shape)


class MLPCritic(nn.Module):
    """Scores samples of shape (B, *data_shape) with one real number each, shape (B,).

    Args:
        data_shape: Shape of one sample; linked from the datamodule.
        hidden_dim: Width of each hidden layer.
        depth: Number of hidden layers.
        norm: ``"none"`` (the paper) or ``"spectral"`` (spectral normalisation of every layer, Miyato et al.
            2018).
        init: ``"torch"`` (PyTorch's default) or ``"paper"`` (tflib's, as ``gan_toy.py``; see
            :mod:`src.nets.init`).
    """

    def __init__(
        self,
        data_shape: Sequence[int] = (2,),
        hidden_dim: int = 512,
        depth: int = 3,
        norm: Literal["none", "spectral"] = "none",
        init: Init = "torch",
    ) -> None:
        super().__init__()
        check_sizes("MLPCritic", hidden_dim=hidden_dim)
        check_sizes("MLPCritic", 0, depth=depth)
        if norm not in ("none", "spectral"):
            raise ValueError(f"MLP critic norm must be 'none' or 'spectral', got {norm!r}")
        self.data_shape = tuple(data_shape)
        self.num_classes = 0
        self.net = _mlp(int(torch.Size(self.data_shape).numel()), hidden_dim, depth, 1)
        _init_mlp(self.net, init)
        if norm == "spectral":
            spectral_normalize(self)

    def forward(self, x: Tensor) -> Tensor:
        """Critic scores (B,)."""
        return self.net(x.flatten(1)).squeeze(1)
