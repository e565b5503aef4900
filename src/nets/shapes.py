"""Validation of image shapes and layer sizes shared by the networks."""

from __future__ import annotations

from collections.abc import Sequence
from numbers import Integral


def check_sizes(owner: str, minimum: int = 1, **sizes: int) -> None:
    """Raise ``ValueError`` naming ``owner`` and the argument when a size is not an integer >= ``minimum``.

    Args:
        owner: The network's class name, e.g. ``"DCGANGenerator"``.
        minimum: The smallest valid size.
        **sizes: The sizes by argument name, e.g. ``dim=64``.
    """
    for name, value in sizes.items():
        if isinstance(value, bool) or not isinstance(value, Integral) or value < minimum:
            raise ValueError(f"{owner} {name} must be an integer >= {minimum}, got {name}={value!r}")


def upsampling_plan(
    data_shape: Sequence[int], bases: Sequence[int] = (4, 7), min_doublings: int = 1
) -> tuple[int, int]:
    """Find the base resolution and number of doublings that produce a square image.

    Args:
        data_shape: ``(C, H, W)`` of the images.
        bases: Allowed starting resolutions.
        min_doublings: Smallest allowed number of doublings.

    Returns:
        ``(base, doublings)`` with ``base * 2**doublings == H``.

    Raises:
        ValueError: If the shape is not ``(C, H, H)`` or ``H`` is not reachable from any base.
    """
    if len(data_shape) != 3:
        raise ValueError(f"data_shape must be (C, H, W), got {tuple(data_shape)}")
    channels, height, width = (int(s) for s in data_shape)
    if channels < 1 or height != width:
        raise ValueError(f"data_shape must be (C, H, H) with C >= 1, got {tuple(data_shape)}")
    for base in bases:
        doublings = 0
        size = base
        while size < height:
            size *= 2
            doublings += 1
        if size == height and doublings >= min_doublings:
            return base, doublings
    supported = sorted({b * 2**k for b in bases for k in range(min_doublings, 6)})
    raise ValueError(
        f"image size {height} px is not supported by this network (data_shape={tuple(data_shape)}); "
        f"use one of {supported}, e.g. --data.image_size=32"
    )
