"""DCGAN-style generator and critic for square images of any channel count (28, 32, 64 px and more).

The critic has no BatchNorm: the gradient penalty is per sample, and BatchNorm couples the samples of a
batch (Gulrajani et al. 2017, section 4). LayerNorm is offered instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from torch import Tensor, nn

from src.nets.init import Init, init_weights
from src.nets.shapes import check_sizes, upsampling_plan
from src.nets.spectral import spectral_normalize


class DCGANGenerator(nn.Module):
    """Noise (B, latent_dim) -> images (B, C, H, W) in [-1, 1].

    Args:
        data_shape: ``(C, H, W)``; linked from the datamodule.
        latent_dim: Size of the noise vector (128 in the paper).
        dim: Channel width of the last hidden layer; earlier layers double it.
        init: ``"torch"`` (PyTorch's default) or ``"paper"`` (tflib's, as ``gan_mnist.py``: Glorot for the
            linear layer, ``he_init`` for every transposed convolution; see :mod:`src.nets.init`).
    """

    def __init__(
        self,
        data_shape: Sequence[int] = (1, 32, 32),
        latent_dim: int = 128,
        dim: int = 64,
        init: Init = "torch",
    ) -> None:
        super().__init__()
        check_sizes(type(self).__name__, latent_dim=latent_dim, dim=dim)
        self.data_shape = tuple(int(s) for s in data_shape)
        self.latent_dim = latent_dim
        self.num_classes = 0
        base, doublings = upsampling_plan(self.data_shape)
        self.base = base
        self.base_channels = dim * 2 ** (doublings - 1)
        self.project = nn.Sequential(
            nn.Linear(latent_dim, self.base_channels * base * base),
            nn.BatchNorm1d(self.base_channels * base * base),
            nn.ReLU(inplace=True),
        )
        layers: list[nn.Module] = []
        channels = self.base_channels
        for _ in range(doublings - 1):
            layers += [
                nn.ConvTranspose2d(channels, channels // 2, 4, stride=2, padding=1),
                nn.BatchNorm2d(channels // 2),
                nn.ReLU(inplace=True),
            ]
            channels //= 2
        layers += [nn.ConvTranspose2d(channels, self.data_shape[0], 4, stride=2, padding=1), nn.Tanh()]
        self.upsample = nn.Sequential(*layers)
        init_weights(self, init)

    def forward(self, z: Tensor) -> Tensor:
        """Generate images from noise."""
        x = self.project(z).view(-1, self.base_channels, self.base, self.base)  # (B, C0, base, base)
        return self.upsample(x)  # (B, C, H, W)


class DCGANCritic(nn.Module):
    """Images (B, C, H, W) -> scores (B,).

    Args:
        data_shape: ``(C, H, W)``; linked from the datamodule.
        dim: Channel width of the first layer; later layers double it.
        norm: ``"none"`` (the paper), ``"layer"`` (LayerNorm, safe with a gradient penalty), ``"batch"``
            (only for weight clipping; it breaks the per-sample penalty and the run warns about it) or
            ``"spectral"`` (spectral normalisation of every layer, Miyato et al. 2018; no penalty needed,
            ``configs/penalties/spectral.yaml``).
        init: ``"torch"`` (PyTorch's default) or ``"paper"`` (tflib's, as ``gan_mnist.py``: ``he_init`` for every
            convolution, Glorot for the output layer; see :mod:`src.nets.init`).
    """

    def __init__(
        self,
        data_shape: Sequence[int] = (1, 32, 32),
        dim: int = 64,
        norm: Literal["none", "layer", "batch", "spectral"] = "none",
        init: Init = "torch",
    ) -> None:
        super().__init__()
        check_sizes(type(self).__name__, dim=dim)
        if norm not in ("none", "layer", "batch", "spectral"):
            raise ValueError(f"critic norm must be 'none', 'layer', 'batch' or 'spectral', got {norm!r}")
        self.data_shape = tuple(int(s) for s in data_shape)
        self.num_classes = 0
        base, doublings = upsampling_plan(self.data_shape)
        layers: list[nn.Module] = []
        channels, size = self.data_shape[0], self.data_shape[1]
        out = dim
        for i in range(doublings):
            layers.append(nn.Conv2d(channels, out, 4, stride=2, padding=1))
            size //= 2
            if i > 0 and norm == "layer":
                layers.append(nn.LayerNorm([out, size, size]))
            elif i > 0 and norm == "batch":
                layers.append(nn.BatchNorm2d(out))
            layers.append(nn.LeakyReLU(0.2, inplace=True))
            channels, out = out, out * 2
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(channels * base * base, 1)
        init_weights(self, init)
        if norm == "spectral":
            spectral_normalize(self)

    def forward(self, x: Tensor) -> Tensor:
        """Critic scores (B,)."""
        return self.head(self.features(x).flatten(1)).squeeze(1)
