"""Text from a language-model checkpoint: what ``python -m src.generate`` writes for a text run.

A checkpoint of a :class:`~src.data.TextDataModule` run holds the vocabulary (the datamodule's ``state_dict``),
so decoding needs no data: ``samples.txt`` gets ``n`` lines, the argmax at each position, and with
``--interpolate STEPS`` ``interpolation.txt`` gets blocks of ``STEPS`` lines along slerp paths in the latent
space, one block per row.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch
from torch import Tensor

from src.data.vocabulary import Vocabulary
from src.models import WGANGP


def checkpoint_vocabulary(ckpt: str | Path) -> Vocabulary | None:
    """The vocabulary saved in a checkpoint, or ``None`` for a run on other data."""
    return Vocabulary.from_checkpoint(torch.load(ckpt, map_location="cpu", weights_only=True))


@torch.no_grad()
def sample_lines(model: WGANGP, vocabulary: Vocabulary, n: int, batch_size: int = 256) -> list[str]:
    """``n`` decoded lines from fresh noise, in batches of ``batch_size``."""
    lines: list[str] = []
    for start in range(0, n, batch_size):
        probs = model.sample(min(batch_size, n - start))  # (b, vocab, L)
        lines += vocabulary.decode_batch(probs)
    return lines


def write_text(
    model: WGANGP,
    vocabulary: Vocabulary,
    out: Path,
    n: int,
    batch_size: int = 256,
    interpolate: int = 0,
    rows: int = 8,
    slerp: Callable[[Tensor, Tensor, Tensor], Tensor] | None = None,
) -> dict[str, Path]:
    """Write ``samples.txt`` (and ``interpolation.txt`` with ``interpolate`` steps) into ``out``.

    Args:
        model: The model of the checkpoint, in eval mode.
        vocabulary: The checkpoint's vocabulary.
        out: Output folder (created).
        n: Sample lines.
        batch_size: Sequences per forward pass.
        interpolate: Lines per interpolation path (0: none).
        rows: Interpolation paths.
        slerp: ``(a (R, D), b (R, D), t (T,)) -> (R, T, D)``, the interpolation of ``src.generate``.

    Returns:
        The paths written, by name.
    """
    out.mkdir(parents=True, exist_ok=True)
    written = {"samples": out / "samples.txt"}
    lines = sample_lines(model, vocabulary, n, batch_size)
    written["samples"].write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    if interpolate and slerp is not None:
        a, b = model.noise(rows), model.noise(rows)
        path = slerp(a, b, torch.linspace(0, 1, interpolate, device=model.device))  # (R, T, D)
        strip = vocabulary.decode_batch(model.sample(noise=path.reshape(-1, model.latent_dim)))
        blocks = [
            "".join(line + "\n" for line in strip[r * interpolate : (r + 1) * interpolate])
            for r in range(rows)
        ]
        written["interpolation"] = out / "interpolation.txt"
        written["interpolation"].write_text("\n".join(blocks), encoding="utf-8")
    for line in lines[:10]:
        print(line)
    return written
