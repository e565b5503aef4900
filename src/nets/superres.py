"""Super-resolution networks: an SRResNet-style generator (LR -> HR) and a critic of HR patches.

The generator follows SRResNet (Ledig et al. 2017) without BatchNorm (as EDSR, Lim et al. 2017): a head
convolution, residual blocks at low resolution, then one ``conv -> PixelShuffle(2) -> PReLU`` stage per factor
of two. With ``residual=True`` it predicts the difference to the bicubic upsampling of its input (global
residual learning, VDSR), so an untrained generator already outputs about bicubic.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from src.nets.init import Init, init_weights
from src.utils.degradation import bicubic_upsample, check_scale, log2_scale


class ResidualBlock(nn.Module):
    """``x + conv(PReLU(conv(x))) · res_scale`` at constant width."""

    def __init__(self, dim: int, res_scale: float = 1.0) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(dim, dim, 3, padding=1), nn.PReLU(dim), nn.Conv2d(dim, dim, 3, padding=1)
        )
        self.res_scale = res_scale

    def forward(self, x: Tensor) -> Tensor:
        """(B, dim, h, w) -> (B, dim, h, w)."""
        return x + self.body(x) * self.res_scale


class SRResNetGenerator(nn.Module):
    """Maps low-resolution images (B, C, H/s, W/s) to high-resolution ones (B, C, H, W), for any H and W.

    Args:
        data_shape: Shape (C, H, W) of the high-resolution images (linked from the data; only C is used: the
            network is fully convolutional).
        scale: The upscaling factor, a power of two (2, 4, 8, ...).
        dim: Channels of the hidden layers.
        num_blocks: Residual blocks at low resolution.
        noise_channels: Standard normal noise channels concatenated to the input (0: deterministic).
        residual: Add the bicubic upsampling of the input to the output (the network learns the difference).
        init: ``"torch"`` (PyTorch's default) or ``"paper"`` (tflib's, :mod:`src.nets.init`).
    """

    #: A super-resolution generator draws no noise vector (its noise, if any, is drawn per pixel inside).
    latent_dim = 0

    def __init__(
        self,
        data_shape: tuple[int, int, int] = (3, 64, 64),
        scale: int = 4,
        dim: int = 32,
        num_blocks: int = 4,
        noise_channels: int = 0,
        residual: bool = True,
        init: Init = "torch",
    ) -> None:
        super().__init__()
        for name, value, low in (
            ("dim", dim, 1),
            ("num_blocks", num_blocks, 0),
            ("noise_channels", noise_channels, 0),
        ):
            if int(value) != value or value < low:
                raise ValueError(
                    f"model.generator.init_args.{name} must be an integer >= {low}, got {name}={value}"
                )
        self.scale = check_scale(scale, "model.generator.init_args.scale")
        self.channels, self.noise_channels, self.residual = int(data_shape[0]), noise_channels, residual
        self.head = nn.Sequential(nn.Conv2d(self.channels + noise_channels, dim, 3, padding=1), nn.PReLU(dim))
        self.blocks = nn.Sequential(*(ResidualBlock(dim) for _ in range(num_blocks)))
        self.body_end = nn.Conv2d(dim, dim, 3, padding=1)
        stages: list[nn.Module] = []
        for _ in range(log2_scale(self.scale)):
            stages += [nn.Conv2d(dim, 4 * dim, 3, padding=1), nn.PixelShuffle(2), nn.PReLU(dim)]
        self.upsample = nn.Sequential(*stages)
        self.tail = nn.Conv2d(dim, self.channels, 3, padding=1)
        init_weights(self, init, glorot_conv=[self.tail])
        if residual:  # start at bicubic: the learned difference is zero before training
            nn.init.zeros_(self.tail.weight)
            nn.init.zeros_(self.tail.bias)

    def forward(self, lr: Tensor, noise: Tensor | None = None) -> Tensor:
        """HR images (B, C, s·h, s·w) from LR images (B, C, h, w); ``noise`` (B, noise_channels, h, w) optional."""
        if lr.dim() != 4 or lr.shape[1] != self.channels:
            raise ValueError(
                f"{type(self).__name__} takes low-resolution images (B, {self.channels}, h, w), got {tuple(lr.shape)}"
            )
        x = lr
        if self.noise_channels:
            if noise is None:
                noise = torch.randn(
                    lr.shape[0], self.noise_channels, *lr.shape[-2:], device=lr.device, dtype=lr.dtype
                )
            x = torch.cat([lr, noise], 1)  # (B, C + noise_channels, h, w)
        features = self.head(x)  # (B, dim, h, w)
        features = features + self.body_end(self.blocks(features))
        out = self.tail(self.upsample(features))  # (B, C, s·h, s·w)
        return out + bicubic_upsample(lr, self.scale) if self.residual else out


class PatchCritic(nn.Module):
    """Scores HR images (B, C, H, W): the mean of a map of patch scores, with no normalisation (the penalty is per sample).

    Strided ``conv -> LeakyReLU(0.2)`` stages halve the resolution ``num_downsamples`` times; a last convolution
    gives one score per patch. With ``condition=True`` the critic also sees the LR input, upsampled (bicubic) to
    the HR size and concatenated as extra channels: it then judges whether the HR image fits that LR image.

    Args:
        data_shape: Shape (C, H, W) of the HR images (linked from the data).
        dim: Channels of the first stage; each downsampling doubles them (at most ``8·dim``).
        num_downsamples: Strided stages (each halves H and W).
        condition: Concatenate the upsampled LR image to the input.
        init: ``"torch"`` or ``"paper"`` (:mod:`src.nets.init`).
    """

    def __init__(
        self,
        data_shape: tuple[int, int, int] = (3, 64, 64),
        dim: int = 32,
        num_downsamples: int = 3,
        condition: bool = False,
        init: Init = "torch",
    ) -> None:
        super().__init__()
        if int(num_downsamples) != num_downsamples or num_downsamples < 0 or dim < 1:
            raise ValueError(
                f"model.critic.init_args: num_downsamples must be >= 0 and dim >= 1, got "
                f"num_downsamples={num_downsamples}, dim={dim}"
            )
        self.channels, self.condition = int(data_shape[0]), bool(condition)
        width = dim
        layers: list[nn.Module] = [
            nn.Conv2d(self.channels * (2 if condition else 1), width, 3, padding=1),
            nn.LeakyReLU(0.2),
        ]
        for _ in range(num_downsamples):
            wider = min(2 * width, 8 * dim)
            layers += [nn.Conv2d(width, wider, 4, stride=2, padding=1), nn.LeakyReLU(0.2)]
            width = wider
        self.features = nn.Sequential(*layers)
        self.score = nn.Conv2d(width, 1, 3, padding=1)
        init_weights(self, init, glorot_conv=[self.score])

    def forward(self, x: Tensor, lr: Tensor | None = None) -> Tensor:
        """Scores (B,) of HR images ``x`` (B, C, H, W), given their LR images (B, C, h, w) when conditioned."""
        if self.condition:
            if lr is None:
                raise ValueError("this PatchCritic is conditioned (condition=true) and needs the LR image")
            x = torch.cat([x, bicubic_upsample(lr, tuple(x.shape[-2:]))], 1)
        return self.score(self.features(x)).mean(dim=(1, 2, 3))  # (B,)
