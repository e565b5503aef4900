"""Upscaling an image of any size in overlapping tiles, so memory stays bounded by the tile size.

Each tile is upscaled with a margin of context on every side that has a neighbour; only its inside is kept,
cut at the middle of each overlap. A fully convolutional generator whose receptive field reaches less than
``overlap // 2`` LR pixels therefore gives exactly the whole-image output (up to float rounding); with a wider
field the seams differ slightly (tests/test_superres_upscale.py states the tolerance).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor


def tile_spans(length: int, tile: int, overlap: int) -> list[tuple[int, int, int, int]]:
    """The tiles along one axis: ``(start, end, keep_start, keep_end)`` in input pixels.

    Tiles of ``tile`` pixels start every ``tile - overlap`` pixels (the last one ends at ``length``); each keeps
    the part from the middle of its overlap with the previous tile to the middle of its overlap with the next.
    A ``length`` up to ``tile`` is one tile.

    Raises:
        ValueError: When ``overlap`` is negative or not smaller than ``tile``.
    """
    if tile < 1 or not 0 <= overlap < tile:
        raise ValueError(
            f"--tile must be >= 1 and 0 <= --overlap < --tile, got tile={tile}, overlap={overlap}"
        )
    if length <= tile:
        return [(0, length, 0, length)]
    starts = list(range(0, length - tile, tile - overlap)) + [length - tile]
    bounds = [0] + [(starts[i] + tile + starts[i + 1]) // 2 for i in range(len(starts) - 1)] + [length]
    return [(s, s + tile, bounds[i], bounds[i + 1]) for i, s in enumerate(starts)]


@torch.no_grad()
def upscale_tiled(
    upscale: Callable[[Tensor], Tensor], lr: Tensor, scale: int, tile: int = 128, overlap: int = 32
) -> Tensor:
    """Upscale LR images (B, C, h, w) tile by tile with ``upscale`` (LR tile -> HR tile, ``scale`` times larger).

    Args:
        upscale: The model, e.g. :meth:`~src.models.SuperResolutionWGAN.upscale`.
        lr: The input (B, C, h, w); any h and w.
        scale: The upscaling factor of ``upscale``.
        tile: Side of a tile in LR pixels (memory grows with ``(tile · scale)²``).
        overlap: LR pixels shared by neighbouring tiles; each tile's own part stops ``overlap // 2`` from its edge.

    Returns:
        HR images (B, C, scale·h, scale·w) on the device of ``upscale``'s output.
    """
    height, width = lr.shape[-2:]
    rows, cols = tile_spans(height, tile, overlap), tile_spans(width, tile, overlap)
    out: Tensor | None = None
    for top, bottom, keep_top, keep_bottom in rows:
        for left, right, keep_left, keep_right in cols:
            sr = upscale(lr[..., top:bottom, left:right])  # (B, C, s·th, s·tw)
            if out is None:
                out = sr.new_empty(*lr.shape[:2], height * scale, width * scale)
            out[..., keep_top * scale : keep_bottom * scale, keep_left * scale : keep_right * scale] = sr[
                ...,
                (keep_top - top) * scale : (keep_bottom - top) * scale,
                (keep_left - left) * scale : (keep_right - left) * scale,
            ]
    assert out is not None
    return out
