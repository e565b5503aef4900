"""A character vocabulary: symbols by frequency, an unknown symbol, padding, one-hot encoding and decoding.

It follows ``language_helpers.load_dataset`` of the paper's released code (Gulrajani et al. 2017): every line is
padded to ``seq_len`` symbols, the ``max_vocab - 1`` most frequent symbols of the padded lines (the padding
included) get the indices ``1..``, and index 0 is the unknown symbol that every other character maps to.

Two symbols are not characters: :data:`UNKNOWN` and :data:`PAD` are longer than one character, so no text can
contain them (the released code pads with a backtick, which a text may also contain).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

UNKNOWN = "<unk>"
PAD = "<pad>"
#: How :meth:`Vocabulary.decode` shows the unknown symbol (padding shows as nothing).
UNKNOWN_CHAR = "\ufffd"
#: The key of the vocabulary in a datamodule's ``state_dict`` (and so in checkpoints).
STATE_KEY = "text_vocabulary"


def codepoints(lines: Sequence[str], seq_len: int) -> np.ndarray:
    """Unicode code points (N, seq_len) uint32 of lines of at most ``seq_len`` characters, 0 where padded.

    Vectorised, so that millions of lines (the Billion Word setting) encode in seconds. Lines never hold NUL
    (the datamodule rejects such files as binary), so 0 marks the padding alone.
    """
    padded = "".join(line.ljust(seq_len, "\0") for line in lines)
    return np.frombuffer(padded.encode("utf-32-le"), dtype=np.uint32).reshape(len(lines), seq_len)


def one_hot(indices: Tensor, vocab_size: int) -> Tensor:
    """Indices (B, L) -> one-hot float (B, vocab_size, L), the channel-first layout of the 1-D convolutions."""
    return F.one_hot(indices.long(), vocab_size).transpose(1, 2).float()


class Vocabulary:
    """Maps characters to indices and back; index 0 is the unknown symbol.

    Args:
        symbols: The symbols by index: ``symbols[0]`` must be :data:`UNKNOWN`; the others are single
            characters or :data:`PAD`.
        seq_len: Length of every encoded sequence.
    """

    def __init__(self, symbols: Sequence[str], seq_len: int) -> None:
        symbols = list(symbols)
        if not symbols or symbols[0] != UNKNOWN:
            raise ValueError(f"a vocabulary starts with the unknown symbol {UNKNOWN!r}, got {symbols[:3]}")
        if len(set(symbols)) != len(symbols):
            raise ValueError("a vocabulary's symbols must be distinct")
        if seq_len < 1:
            raise ValueError(f"seq_len must be >= 1, got {seq_len}")
        self.symbols = symbols
        self.seq_len = int(seq_len)
        self.index = {s: i for i, s in enumerate(symbols)}
        self.pad_index = self.index.get(PAD, 0)  # the unknown symbol when padding is not in the vocabulary

    @classmethod
    def build(cls, lines: Iterable[str], seq_len: int, max_vocab: int) -> Vocabulary:
        """The ``max_vocab - 1`` most frequent symbols of the padded lines, after the unknown symbol.

        Ties are broken by the symbol, so the vocabulary does not depend on the order of the lines.

        Args:
            lines: Lines of at most ``seq_len`` characters.
            seq_len: Length every line is padded to (the padding is counted, as in the released code).
            max_vocab: Size of the vocabulary, the unknown symbol included (>= 2).
        """
        if max_vocab < 2:
            raise ValueError(f"max_vocab must be >= 2 (the unknown symbol and one more), got {max_vocab}")
        codes, freq = np.unique(codepoints(list(lines), seq_len), return_counts=True)
        counts = Counter({chr(c) if c else PAD: int(n) for c, n in zip(codes.tolist(), freq.tolist())})
        ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))[: max_vocab - 1]
        return cls([UNKNOWN, *(s for s, _ in ranked)], seq_len)

    def __len__(self) -> int:
        return len(self.symbols)

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, Vocabulary) and self.symbols == other.symbols and self.seq_len == other.seq_len
        )

    def __repr__(self) -> str:
        return f"Vocabulary(size={len(self)}, seq_len={self.seq_len})"

    # ------------------------------------------------------------------------------------------ encoding
    def encode(self, line: str) -> list[int]:
        """Indices (seq_len,) of one line of at most ``seq_len`` characters, padded at the end."""
        if len(line) > self.seq_len:
            raise ValueError(f"a line of {len(line)} characters does not fit seq_len={self.seq_len}")
        return [self.index.get(c, 0) for c in line] + [self.pad_index] * (self.seq_len - len(line))

    def encode_lines(self, lines: Sequence[str]) -> Tensor:
        """Indices (N, seq_len) as int64, as :meth:`encode` gives them line by line."""
        if any(len(line) > self.seq_len for line in lines):
            raise ValueError(f"a line longer than seq_len={self.seq_len} does not fit")
        if not lines:
            return torch.zeros(0, self.seq_len, dtype=torch.long)
        codes, inverse = np.unique(codepoints(lines, self.seq_len), return_inverse=True)
        table = np.array([self.index.get(chr(c), 0) if c else self.pad_index for c in codes.tolist()])
        return torch.from_numpy(table[inverse.reshape(len(lines), self.seq_len)].astype(np.int64))

    def one_hot(self, indices: Tensor) -> Tensor:
        """Indices (B, L) -> one-hot float (B, vocab, L), the layout of the 1-D convolutions."""
        return one_hot(indices, len(self))

    # ------------------------------------------------------------------------------------------ decoding
    def decode(self, indices: Iterable[int]) -> str:
        """Text of one sequence: padding shows as nothing, the unknown symbol as ``U+FFFD``."""
        out = []
        for i in indices:
            symbol = self.symbols[int(i)]
            out.append("" if symbol == PAD else UNKNOWN_CHAR if symbol == UNKNOWN else symbol)
        return "".join(out)

    def decode_batch(self, x: Tensor) -> list[str]:
        """Lines of a batch: indices (B, L), or one-hot / probabilities (B, vocab, L) decoded by argmax."""
        if x.dim() == 3:
            x = x.argmax(dim=1)  # (B, vocab, L) -> (B, L): the most likely symbol at each position
        return [self.decode(row) for row in x.cpu().tolist()]

    # ---------------------------------------------------------------------------------------- persistence
    def state_dict(self) -> dict[str, Any]:
        """Plain types only, so checkpoints load with ``weights_only=True``."""
        return {"symbols": list(self.symbols), "seq_len": self.seq_len}

    @classmethod
    def from_state_dict(cls, state: dict[str, Any]) -> Vocabulary:
        """The vocabulary of :meth:`state_dict`."""
        return cls(state["symbols"], state["seq_len"])

    @classmethod
    def from_checkpoint(cls, checkpoint: dict[str, Any]) -> Vocabulary | None:
        """The vocabulary a text datamodule saved in a loaded checkpoint (``None`` when it holds none).

        Lightning stores a datamodule's ``state_dict`` under the datamodule's class name; any entry holding
        :data:`STATE_KEY` is taken, so subclasses of the text datamodule work too.
        """
        for value in checkpoint.values():
            if isinstance(value, dict) and isinstance(value.get(STATE_KEY), dict):
                return cls.from_state_dict(value[STATE_KEY])
        return None
