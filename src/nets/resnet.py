"""The paper's ResNet generator and critic (Gulrajani et al. 2017, appendix F; ``gan_cifar_resnet.py``).

BatchNorm in the generator only; the critic has no normalization so the gradient penalty stays per sample.
Built for 32 px (three up-sampling blocks from 4x4); larger powers of two add blocks.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch.nn.functional as F
from torch import Tensor, nn

from src.nets.init import Init, init_weights
from src.nets.shapes import upsampling_plan
from src.nets.spectral import spectral_normalize


class _UpBlock(nn.Module):
    """BN-ReLU-Upsample-Conv3x3-BN-ReLU-Conv3x3, with an upsampled 1x1 conv shortcut."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)
        self.bn2 = nn.BatchNorm2d(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)
        self.shortcut = nn.Conv2d(channels, channels, 1)

    def forward(self, x: Tensor) -> Tensor:
        h = F.interpolate(F.relu(self.bn1(x)), scale_factor=2, mode="nearest")
        h = self.conv2(F.relu(self.bn2(self.conv1(h))))
        return h + self.shortcut(F.interpolate(x, scale_factor=2, mode="nearest"))


class _DownBlock(nn.Module):
    """ReLU-Conv3x3-ReLU-Conv3x3(-MeanPool), with a 1x1 conv (+mean pool) shortcut when resampling.

    ``first=True`` is the paper's "OptimizedResBlockDisc1": no leading ReLU, pool-then-conv shortcut.
    """

    def __init__(self, in_channels: int, channels: int, downsample: bool, first: bool = False) -> None:
        super().__init__()
        self.first = first
        self.downsample = downsample
        self.conv1 = nn.Conv2d(in_channels, channels, 3, padding=1)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)
        self.shortcut = (
            nn.Conv2d(in_channels, channels, 1) if (downsample or in_channels != channels) else None
        )

    def forward(self, x: Tensor) -> Tensor:
        h = x if self.first else F.relu(x)
        h = self.conv2(F.relu(self.conv1(h)))
        if self.downsample:
            h = F.avg_pool2d(h, 2)
        if self.shortcut is None:
            return h + x
        if self.first:
            return h + self.shortcut(F.avg_pool2d(x, 2))
        s = self.shortcut(x)
        return h + (F.avg_pool2d(s, 2) if self.downsample else s)


def init_resnet(net: nn.Module, init: Init, glorot: Sequence[nn.Module] = ()) -> None:
    """Initialise a ResNet as ``init`` says; ``"paper"`` is tflib's, as in ``gan_cifar_resnet.py``.

    ``he_init`` for the blocks' 3x3 convolutions; Glorot for their 1x1 shortcuts, for ``glorot`` (the
    generator's output convolution) and for the linear layers.
    """
    shortcuts = [m.shortcut for m in net.modules() if isinstance(m, (_UpBlock, _DownBlock))]
    init_weights(net, init, glorot_conv=[m for m in [*shortcuts, *glorot] if m is not None])


class ResNetGenerator(nn.Module):
    """Noise (B, latent_dim) -> images (B, C, H, W) in [-1, 1].

    Args:
        data_shape: ``(C, H, W)`` with ``H = 4 * 2**k`` (32 in the paper); linked from the datamodule.
        latent_dim: Size of the noise vector (128 in the paper).
        dim: Channels of every residual block (128 in the paper).
        init: ``"torch"`` (PyTorch's default) or ``"paper"`` (tflib's, as ``gan_cifar_resnet.py``; see
            :func:`init_resnet`).
    """

    def __init__(
        self,
        data_shape: Sequence[int] = (3, 32, 32),
        latent_dim: int = 128,
        dim: int = 128,
        init: Init = "torch",
    ) -> None:
        super().__init__()
        self.data_shape = tuple(int(s) for s in data_shape)
        self.latent_dim = latent_dim
        self.num_classes = 0
        self.dim = dim
        _, doublings = upsampling_plan(self.data_shape, bases=(4,), min_doublings=2)
        self.project = nn.Linear(latent_dim, 4 * 4 * dim)
        self.blocks = nn.Sequential(*[_UpBlock(dim) for _ in range(doublings)])
        self.out = nn.Sequential(
            nn.BatchNorm2d(dim),
            nn.ReLU(inplace=True),
            nn.Conv2d(dim, self.data_shape[0], 3, padding=1),
            nn.Tanh(),
        )
        init_resnet(self, init, glorot=[self.out[2]])

    def forward(self, z: Tensor) -> Tensor:
        """Generate images from noise."""
        x = self.project(z).view(-1, self.dim, 4, 4)  # (B, dim, 4, 4)
        return self.out(self.blocks(x))  # (B, C, H, W)


class ResNetCritic(nn.Module):
    """Images (B, C, H, W) -> scores (B,).

    Args:
        data_shape: ``(C, H, W)`` with ``H = 4 * 2**k``; linked from the datamodule.
        dim: Channels of every residual block (128 in the paper).
        norm: ``"none"`` (the paper) or ``"spectral"`` (spectral normalisation of every layer, as SN-GAN's
            ResNet critic; no penalty needed, ``configs/penalties/spectral.yaml``).
        init: ``"torch"`` (PyTorch's default) or ``"paper"`` (tflib's, as ``gan_cifar_resnet.py``; see
            :func:`init_resnet`).
    """

    def __init__(
        self,
        data_shape: Sequence[int] = (3, 32, 32),
        dim: int = 128,
        norm: Literal["none", "spectral"] = "none",
        init: Init = "torch",
    ) -> None:
        super().__init__()
        if norm not in ("none", "spectral"):
            raise ValueError(f"ResNet critic norm must be 'none' or 'spectral', got {norm!r}")
        self.data_shape = tuple(int(s) for s in data_shape)
        self.num_classes = 0
        _, doublings = upsampling_plan(self.data_shape, bases=(4,), min_doublings=2)
        blocks = [_DownBlock(self.data_shape[0], dim, downsample=True, first=True)]
        blocks += [_DownBlock(dim, dim, downsample=True) for _ in range(doublings - 2)]
        blocks += [_DownBlock(dim, dim, downsample=False) for _ in range(2)]
        self.blocks = nn.Sequential(*blocks)
        self.head = nn.Linear(dim, 1)
        init_resnet(self, init)
        if norm == "spectral":
            spectral_normalize(self)

    def forward(self, x: Tensor) -> Tensor:
        """Critic scores (B,)."""
        h = F.relu(self.blocks(x)).mean(dim=(2, 3))  # (B, dim)
        return self.head(h).squeeze(1)
