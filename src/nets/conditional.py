"""Class-conditional generators and projection critics (cGAN; Miyato & Koyama 2018).

Each network has ``num_classes > 0`` and takes the labels (B,) as a second argument; ``WGANGP`` passes them.
Generators: a learned class embedding concatenated to the noise (DCGAN), or conditional BatchNorm, whose
gain and bias depend on the class (ResNet, as in the paper's conditional CIFAR-10 model). Critics: the
projection discriminator, ``D(x, y) = ψ(φ(x)) + ⟨embed(y), φ(x)⟩``, with no normalization, so a gradient
penalty stays per sample (the interpolates of a pair share its label).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from src.nets.dcgan import DCGANCritic, DCGANGenerator
from src.nets.init import Init
from src.nets.resnet import ResNetCritic, ResNetGenerator, _UpBlock, init_resnet
from src.nets.shapes import check_sizes
from src.nets.spectral import spectral_normalize


def _check_classes(owner: str, num_classes: int) -> None:
    if num_classes < 1:
        raise ValueError(
            f"{owner} needs num_classes >= 1 (a conditional network), got num_classes={num_classes}; set it to the "
            "data's number of classes (10 for digits, MNIST and CIFAR-10)"
        )


class ConditionalDCGANGenerator(DCGANGenerator):
    """``(noise (B, latent_dim), labels (B,))`` -> images (B, C, H, W): a class embedding joins the noise.

    Args:
        data_shape: ``(C, H, W)``; linked from the datamodule.
        latent_dim: Size of the noise vector.
        dim: Channel width of the last hidden layer; see :class:`~src.nets.DCGANGenerator`.
        num_classes: Number of classes.
        embed_dim: Size of the learned class embedding concatenated to the noise.
        init: ``"torch"`` or ``"paper"``; see :class:`~src.nets.DCGANGenerator` (the embedding keeps PyTorch's).
    """

    def __init__(
        self,
        data_shape: Sequence[int] = (1, 32, 32),
        latent_dim: int = 128,
        dim: int = 64,
        num_classes: int = 10,
        embed_dim: int = 32,
        init: Init = "torch",
    ) -> None:
        _check_classes(type(self).__name__, num_classes)
        check_sizes(type(self).__name__, latent_dim=latent_dim, embed_dim=embed_dim)
        super().__init__(data_shape, latent_dim + embed_dim, dim, init)
        self.latent_dim = latent_dim  # the noise part only; the embedding is added inside
        self.num_classes = num_classes
        self.embed = nn.Embedding(num_classes, embed_dim)

    def forward(self, z: Tensor, labels: Tensor) -> Tensor:  # type: ignore[override]
        """Generate images of the given classes."""
        return super().forward(torch.cat([z, self.embed(labels)], dim=1))  # (B, C, H, W)


class ProjectionDCGANCritic(DCGANCritic):
    """``(images (B, C, H, W), labels (B,))`` -> scores (B,): the DCGAN critic with a projection head.

    Args:
        data_shape: ``(C, H, W)``; linked from the datamodule.
        dim: Channel width of the first layer.
        norm: ``"none"``, ``"layer"`` or ``"spectral"`` (the class embedding too, as Miyato & Koyama); see
            :class:`~src.nets.DCGANCritic`.
        num_classes: Number of classes.
        init: ``"torch"`` or ``"paper"``; see :class:`~src.nets.DCGANCritic` (the embedding keeps N(0, 0.02)).
    """

    def __init__(
        self,
        data_shape: Sequence[int] = (1, 32, 32),
        dim: int = 64,
        norm: Literal["none", "layer", "batch", "spectral"] = "none",
        num_classes: int = 10,
        init: Init = "torch",
    ) -> None:
        _check_classes(type(self).__name__, num_classes)
        super().__init__(data_shape, dim, norm, init=init)
        self.num_classes = num_classes
        self.embed = nn.Embedding(num_classes, self.head.in_features)
        nn.init.normal_(self.embed.weight, std=0.02)
        if norm == "spectral":
            spectral_normalize(self.embed)

    def forward(self, x: Tensor, labels: Tensor) -> Tensor:  # type: ignore[override]
        """Critic scores (B,) of images as members of the given classes."""
        h = self.features(x).flatten(1)  # (B, F)
        return self.head(h).squeeze(1) + (self.embed(labels) * h).sum(1)


class ConditionalBatchNorm2d(nn.Module):
    """BatchNorm whose per-channel gain and bias are looked up by class (Dumoulin et al. 2017).

    Args:
        num_features: Channels.
        num_classes: Number of classes.
    """

    def __init__(self, num_features: int, num_classes: int) -> None:
        super().__init__()
        self.bn = nn.BatchNorm2d(num_features, affine=False)
        self.gain = nn.Embedding(num_classes, num_features)
        self.bias = nn.Embedding(num_classes, num_features)
        nn.init.ones_(self.gain.weight)
        nn.init.zeros_(self.bias.weight)

    def forward(self, x: Tensor, labels: Tensor) -> Tensor:
        """Normalize (B, C, H, W), then scale and shift by the class's parameters."""
        return self.bn(x) * self.gain(labels)[:, :, None, None] + self.bias(labels)[:, :, None, None]


class _ConditionalUpBlock(_UpBlock):
    """The ResNet up-sampling block with conditional BatchNorm."""

    def __init__(self, channels: int, num_classes: int) -> None:
        super().__init__(channels)
        self.bn1 = ConditionalBatchNorm2d(channels, num_classes)
        self.bn2 = ConditionalBatchNorm2d(channels, num_classes)

    def forward(self, x: Tensor, labels: Tensor) -> Tensor:  # type: ignore[override]
        h = F.interpolate(F.relu(self.bn1(x, labels)), scale_factor=2, mode="nearest")
        h = self.conv2(F.relu(self.bn2(self.conv1(h), labels)))
        return h + self.shortcut(F.interpolate(x, scale_factor=2, mode="nearest"))


class ConditionalResNetGenerator(ResNetGenerator):
    """The paper's ResNet generator with conditional BatchNorm: ``(noise, labels)`` -> images in [-1, 1].

    Args:
        data_shape: ``(C, H, W)`` with ``H = 4 * 2**k``; linked from the datamodule.
        latent_dim: Size of the noise vector (128 in the paper).
        dim: Channels of every residual block (128 in the paper).
        num_classes: Number of classes.
        init: ``"torch"`` or ``"paper"``; see :class:`~src.nets.ResNetGenerator`.
    """

    def __init__(
        self,
        data_shape: Sequence[int] = (3, 32, 32),
        latent_dim: int = 128,
        dim: int = 128,
        num_classes: int = 10,
        init: Init = "torch",
    ) -> None:
        _check_classes(type(self).__name__, num_classes)
        super().__init__(data_shape, latent_dim, dim)
        self.num_classes = num_classes
        self.blocks = nn.ModuleList([_ConditionalUpBlock(dim, num_classes) for _ in self.blocks])
        self.out_bn = ConditionalBatchNorm2d(dim, num_classes)
        self.out = nn.Sequential(*list(self.out)[1:])  # ReLU, conv, tanh: the BatchNorm is now out_bn
        init_resnet(self, init, glorot=[self.out[1]])  # again: the conditional blocks are new

    def forward(self, z: Tensor, labels: Tensor) -> Tensor:  # type: ignore[override]
        """Generate images of the given classes."""
        x = self.project(z).view(-1, self.dim, 4, 4)  # (B, dim, 4, 4)
        for block in self.blocks:
            x = block(x, labels)
        return self.out(self.out_bn(x, labels))  # (B, C, H, W)


class ProjectionResNetCritic(ResNetCritic):
    """The paper's ResNet critic with a projection head: ``(images, labels)`` -> scores (B,).

    Args:
        data_shape: ``(C, H, W)`` with ``H = 4 * 2**k``; linked from the datamodule.
        dim: Channels of every residual block (128 in the paper).
        num_classes: Number of classes.
        norm: ``"none"`` (the paper) or ``"spectral"`` (every layer and the class embedding, as Miyato &
            Koyama).
        init: ``"torch"`` or ``"paper"``; see :class:`~src.nets.ResNetCritic` (the embedding keeps N(0, 0.02)).
    """

    def __init__(
        self,
        data_shape: Sequence[int] = (3, 32, 32),
        dim: int = 128,
        num_classes: int = 10,
        norm: Literal["none", "spectral"] = "none",
        init: Init = "torch",
    ) -> None:
        _check_classes(type(self).__name__, num_classes)
        super().__init__(data_shape, dim, norm, init)
        self.num_classes = num_classes
        self.embed = nn.Embedding(num_classes, dim)
        nn.init.normal_(self.embed.weight, std=0.02)
        if norm == "spectral":
            spectral_normalize(self.embed)

    def forward(self, x: Tensor, labels: Tensor) -> Tensor:  # type: ignore[override]
        """Critic scores (B,) of images as members of the given classes."""
        h = F.relu(self.blocks(x)).mean(dim=(2, 3))  # (B, dim)
        return self.head(h).squeeze(1) + (self.embed(labels) * h).sum(1)
