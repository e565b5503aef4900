"""The paper's 1-D residual generator and critic for character sequences (``gan_language.py``, section 5.4).

Sequences are one-hot (or, from the generator, softmax) tensors (B, vocab, seq_len): characters are channels
and positions the length of 1-D convolutions. The generator's softmax output is continuous, so the critic
sees probability vectors for fake text and one-hot vectors for real text; the gradient penalty keeps the
critic smooth in between, which is what lets a WGAN-GP model discrete data. Neither network normalizes over
the batch, so the penalty stays per sample.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from src.nets.init import Init, init_weights


class ResBlock1d(nn.Module):
    """``x + 0.3 * conv5(relu(conv5(relu(x))))`` on (B, dim, L), the paper's ``ResBlock``.

    Args:
        dim: Channels in and out.
        kernel_size: Width of both convolutions (5 in the paper), zero-padded to keep the length.
        scale: Weight of the residual branch (0.3 in the paper).
    """

    def __init__(self, dim: int, kernel_size: int = 5, scale: float = 0.3) -> None:
        super().__init__()
        if kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be odd to keep the sequence length, got {kernel_size}")
        self.conv1 = nn.Conv1d(dim, dim, kernel_size, padding=kernel_size // 2)
        self.conv2 = nn.Conv1d(dim, dim, kernel_size, padding=kernel_size // 2)
        self.scale = scale

    def forward(self, x: Tensor) -> Tensor:
        """(B, dim, L) -> (B, dim, L)."""
        return x + self.scale * self.conv2(F.relu(self.conv1(F.relu(x))))


def _shape(data_shape: Sequence[int]) -> tuple[int, int]:
    shape = tuple(int(s) for s in data_shape)
    if len(shape) != 2 or min(shape) < 1:
        raise ValueError(
            f"the language networks need data_shape (vocab, seq_len), got {shape}; use src.data.TextDataModule"
        )
    return shape  # type: ignore[return-value]


class LanguageGenerator(nn.Module):
    """Noise (B, latent_dim) -> character distributions (B, vocab, seq_len), a softmax over the vocabulary.

    ``linear -> (B, dim, L) -> 5 residual blocks -> conv k=1 to the vocabulary -> softmax``. Samples decode by
    an argmax at each position (:meth:`src.data.vocabulary.Vocabulary.decode_batch`).

    Args:
        data_shape: ``(vocab, seq_len)``; linked from the datamodule.
        latent_dim: Size of the noise vector (128 in the paper).
        dim: Channels of the residual blocks (512 in the paper).
        num_blocks: Residual blocks (5 in the paper).
        init: ``"torch"`` (PyTorch's default) or ``"paper"`` (tflib's, as ``gan_language.py``: He-uniform
            convolutions, ``√(4 / (fan_in + fan_out))`` with the kernel width in both fans, Glorot linear layers,
            zero biases; see :mod:`src.nets.init`).
    """

    def __init__(
        self,
        data_shape: Sequence[int] = (32, 32),
        latent_dim: int = 128,
        dim: int = 512,
        num_blocks: int = 5,
        init: Init = "torch",
    ) -> None:
        super().__init__()
        self.data_shape = _shape(data_shape)
        self.vocab_size, self.seq_len = self.data_shape
        self.latent_dim = latent_dim
        self.num_classes = 0
        self.dim = dim
        self.project = nn.Linear(latent_dim, dim * self.seq_len)
        self.blocks = nn.Sequential(*[ResBlock1d(dim) for _ in range(num_blocks)])
        self.out = nn.Conv1d(dim, self.vocab_size, 1)
        init_weights(self, init)

    def forward(self, z: Tensor) -> Tensor:
        """Generate character distributions from noise."""
        x = self.project(z).view(-1, self.dim, self.seq_len)  # (B, dim, L)
        logits = self.out(self.blocks(x))  # (B, vocab, L)
        return torch.softmax(logits, dim=1)  # (B, vocab, L), sums to 1 over the vocabulary


class LanguageCritic(nn.Module):
    """Character sequences (B, vocab, seq_len) -> scores (B,).

    ``conv k=1 from the vocabulary -> 5 residual blocks -> flatten (B, dim * L) -> linear``.

    Args:
        data_shape: ``(vocab, seq_len)``; linked from the datamodule.
        dim: Channels of the residual blocks (512 in the paper).
        num_blocks: Residual blocks (5 in the paper).
        init: ``"torch"`` (PyTorch's default) or ``"paper"`` (tflib's, as ``gan_language.py``: He-uniform
            convolutions, ``√(4 / (fan_in + fan_out))`` with the kernel width in both fans, Glorot linear layers,
            zero biases; see :mod:`src.nets.init`).
    """

    def __init__(
        self, data_shape: Sequence[int] = (32, 32), dim: int = 512, num_blocks: int = 5, init: Init = "torch"
    ) -> None:
        super().__init__()
        self.data_shape = _shape(data_shape)
        vocab_size, seq_len = self.data_shape
        self.num_classes = 0
        self.embed = nn.Conv1d(vocab_size, dim, 1)
        self.blocks = nn.Sequential(*[ResBlock1d(dim) for _ in range(num_blocks)])
        self.head = nn.Linear(dim * seq_len, 1)
        init_weights(self, init)

    def forward(self, x: Tensor) -> Tensor:
        """Critic scores (B,)."""
        h = self.blocks(self.embed(x))  # (B, dim, L)
        return self.head(h.flatten(1)).squeeze(1)  # channel-major flatten, as the released code's reshape
