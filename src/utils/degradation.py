"""The degradation of super-resolution: bicubic downsampling with antialiasing, and bicubic upsampling.

Both resize with PyTorch's antialiased bicubic kernel (``F.interpolate(..., mode="bicubic", antialias=True)``),
which is PIL's ``Image.resize(..., Image.BICUBIC)`` (a = -0.5, the kernel widened by the downscale factor), the
degradation of the SR benchmarks (MATLAB's ``imresize`` uses the same kernel). The low-resolution image is then
rounded to 8-bit levels, as a saved LR image would be.
"""

from __future__ import annotations

import math

import torch.nn.functional as F
from torch import Tensor


def check_scale(scale: int, option: str = "scale") -> int:
    """Return ``scale`` when it is a power of two >= 2.

    Raises:
        ValueError: Naming ``option`` and the value, for anything else.
    """
    if int(scale) != scale or scale < 2 or (int(scale) & (int(scale) - 1)) != 0:
        raise ValueError(f"{option} must be a power of two >= 2 (2, 4, 8, ...), got {option}={scale}")
    return int(scale)


def quantize(x: Tensor) -> Tensor:
    """Round images in [-1, 1] to the 256 levels of an 8-bit image (clamping to [-1, 1] first)."""
    return (x.clamp(-1, 1) * 127.5 + 127.5).round() / 127.5 - 1


def bicubic_downsample(hr: Tensor, scale: int, round_to_8bit: bool = True) -> Tensor:
    """The low-resolution image (B, C, H/scale, W/scale) of high-resolution images (B, C, H, W) in [-1, 1].

    Antialiased bicubic (PIL's and MATLAB's kernel), then rounded to 8-bit levels unless ``round_to_8bit`` is off.

    Raises:
        ValueError: When H or W is not a multiple of ``scale``.
    """
    height, width = hr.shape[-2:]
    if height % scale or width % scale:
        raise ValueError(
            f"the high-resolution images are {height}x{width}, not a multiple of the scale {scale}; choose "
            f"data.image_size (the HR crop side) as a multiple of {scale}, e.g. {max(1, height // scale) * scale}"
        )
    lr = F.interpolate(
        hr.float(),
        size=(height // scale, width // scale),
        mode="bicubic",
        antialias=True,
        align_corners=False,
    )
    return (quantize(lr) if round_to_8bit else lr.clamp(-1, 1)).to(hr.dtype)


def bicubic_upsample(lr: Tensor, size: tuple[int, int] | int) -> Tensor:
    """Bicubic upsampling (PIL's kernel) of images (B, C, h, w) to ``size`` (H, W), or by an integer factor."""
    if isinstance(size, int):
        size = (lr.shape[-2] * size, lr.shape[-1] * size)
    up = F.interpolate(lr.float(), size=tuple(size), mode="bicubic", antialias=True, align_corners=False)
    return up.clamp(-1, 1).to(lr.dtype)


def log2_scale(scale: int) -> int:
    """The number of 2x upsampling stages of a power-of-two ``scale``."""
    return int(math.log2(check_scale(scale)))
