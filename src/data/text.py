"""Lines of characters from any UTF-8 text, as one-hot sequences: the paper's language-model data (section 5.4).

``language_helpers.load_dataset`` of the released code reads the Billion Word corpus this way; this datamodule
reads any text file, or a folder of ``.txt`` files, a user points ``data.path`` at.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch
from torch import Tensor
from torch.utils.data import DataLoader, TensorDataset

from src.data.errors import DatasetNotFoundError
from src.data.splits import seeded_split
from src.data.vocabulary import STATE_KEY, Vocabulary, one_hot


class OneHotCollate:
    """Collates index rows into a one-hot float batch (B, vocab, L); a class so DataLoader workers can pickle it."""

    def __init__(self, vocab_size: int) -> None:
        self.vocab_size = vocab_size

    def __call__(self, rows: list[tuple[Tensor]]) -> Tensor:
        """Rows of ``(indices (L,),)`` -> one-hot (B, vocab, L)."""
        indices = torch.stack([row[0] for row in rows]).long()  # (B, L)
        return one_hot(indices, self.vocab_size)  # (B, V, L)


def text_files(path: Path, pattern: str = "*.txt") -> list[Path]:
    """The file at ``path``, or the files matching ``pattern`` under the folder ``path`` (recursively, sorted)."""
    if not path.exists():
        raise DatasetNotFoundError(
            f"data.path={str(path)!r} does not exist; point it at a UTF-8 text file or a folder of .txt files"
        )
    if path.is_file():
        return [path]
    files = sorted(p for p in path.rglob(pattern) if p.is_file())
    if not files:
        raise DatasetNotFoundError(
            f"data.path={str(path)!r} is a folder without files matching data.pattern={pattern!r}"
        )
    return files


def read_lines(file: Path) -> list[str]:
    """The lines of a UTF-8 file (a byte-order mark and Windows line endings are accepted).

    Raises:
        ValueError: When the file holds NUL bytes or is not valid UTF-8; the message names ``data.path``.
    """
    raw = file.read_bytes()
    if b"\x00" in raw:
        raise ValueError(f"data.path: {file} holds NUL bytes: it is binary, not text")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise ValueError(
            f"data.path: {file} is not UTF-8 text (invalid byte at offset {error.start})"
        ) from None
    return [line[:-1] if line.endswith("\r") else line for line in text.split("\n")]


class TextDataModule(pl.LightningDataModule):
    """Lines of at most ``seq_len`` characters as one-hot float batches (B, vocab, seq_len).

    As in the released code (``language_helpers.load_dataset``): lines are padded at the end to ``seq_len``,
    the vocabulary holds the unknown symbol (index 0) and the ``max_vocab - 1`` most frequent symbols of the
    padded training lines (padding included; the held-out lines are not looked at), and every other character
    maps to the unknown symbol. Differences: the released code counts every line; lines longer than
    ``seq_len`` are dropped (``truncate=true`` cuts them, as the released code does) and empty or
    whitespace-only lines are skipped. The vocabulary depends only on the data, is read when :attr:`data_shape`
    is first needed (the CLI links it into the networks) and is saved in checkpoints through
    :meth:`state_dict`, so ``python -m src.generate`` decodes samples without the data.

    Args:
        path: A UTF-8 text file, or a folder whose files matching ``pattern`` (recursively) are read in sorted
            order. Required (``None`` is refused with a message saying so).
        seq_len: Characters per sequence (32 in the paper).
        max_vocab: Vocabulary size, the unknown symbol included (2048 in the released code).
        batch_size: Sequences per batch, per device (64 in the paper). Incomplete batches are dropped.
        val_fraction: Share of the lines held out for validation and the n-gram metrics (seeded by ``seed``).
        max_val_lines: At most this many held-out lines (``None``: no cap); keeps the metrics cheap on a
            large corpus.
        max_lines: Read at most this many kept lines (``None``: all; the released code caps at 10M).
        truncate: Cut longer lines to ``seq_len`` instead of dropping them.
        seed: Seed of the validation split.
        num_workers: DataLoader workers.
        pattern: Which files of a folder are read (``news.en-*`` for the Billion Word corpus).
    """

    num_classes = 0

    def __init__(
        self,
        path: str | None = None,
        seq_len: int = 32,
        max_vocab: int = 2048,
        batch_size: int = 64,
        val_fraction: float = 0.1,
        max_val_lines: int | None = 10_000,
        max_lines: int | None = None,
        truncate: bool = False,
        seed: int = 0,
        num_workers: int = 0,
        pattern: str = "*.txt",
    ) -> None:
        super().__init__()
        for option, value, low in (
            ("seq_len", seq_len, 1),
            ("max_vocab", max_vocab, 2),
            ("batch_size", batch_size, 1),
        ):
            if value < low:
                raise ValueError(f"data.{option} must be >= {low}, got {option}={value}")
        if not 0 <= val_fraction < 1:
            raise ValueError(f"data.val_fraction must be in [0, 1), got val_fraction={val_fraction}")
        for option, value in (("max_val_lines", max_val_lines), ("max_lines", max_lines)):
            if value is not None and value < 1:
                raise ValueError(f"data.{option} must be >= 1 or null, got {option}={value}")
        if path is None or not str(path).strip():
            raise ValueError(
                "data.path is required: pass --data.path=FILE (a UTF-8 text file, one sentence a line) or a folder "
                "of .txt files"
            )
        self.save_hyperparameters()
        self.path = Path(path).expanduser()
        # A missing path fails here, before any network is built; the text itself is read on first use.
        self.files = text_files(self.path, pattern)
        self.seq_len, self.max_vocab, self.batch_size = seq_len, max_vocab, batch_size
        self.val_fraction, self.max_val_lines, self.max_lines = val_fraction, max_val_lines, max_lines
        self.truncate, self.seed, self.num_workers = truncate, seed, num_workers
        self._vocabulary: Vocabulary | None = None
        self._splits: dict[str, Tensor] = {}

    # ------------------------------------------------------------------------------------------- loading
    def read(self) -> list[str]:
        """The kept lines of every file, in file order: not blank, at most ``seq_len`` characters (or cut).

        Empty lines and lines of whitespace only are skipped.

        Raises:
            ValueError: When no line is usable; the message names the file(s) and counts the lines read, blank
                and too long.
        """
        kept: list[str] = []
        total = blank = too_long = 0
        for file in self.files:
            for line in read_lines(file):
                total += 1
                if not line.strip():
                    blank += 1
                    continue
                if len(line) > self.seq_len:
                    too_long += 1
                    if not self.truncate:
                        continue
                    line = line[: self.seq_len]
                kept.append(line)
                if self.max_lines is not None and len(kept) >= self.max_lines:
                    return kept
        if not kept:
            where = (
                str(self.files[0]) if len(self.files) == 1 else f"{len(self.files)} files under {self.path}"
            )
            raise ValueError(
                f"data.path: no usable line in {where}: {total} lines read, {blank} empty or whitespace only, "
                f"{too_long} longer than data.seq_len={self.seq_len} (set data.truncate=true to cut long lines)"
            )
        return kept

    def _load(self) -> None:
        if self._vocabulary is not None:
            return
        lines = self.read()
        n_val = round(self.val_fraction * len(lines))
        if self.max_val_lines is not None:
            n_val = min(n_val, self.max_val_lines)
        train, val = seeded_split(len(lines), [n_val / len(lines)], self.seed)
        if len(train) < self.batch_size:
            raise ValueError(
                f"data.path: {len(train)} training lines are fewer than data.batch_size={self.batch_size} "
                f"(after holding out {len(val)} for validation); use more text or a smaller batch"
            )
        # The vocabulary comes from the training lines only: the held-out lines stay unseen (a symbol only
        # they use is the unknown symbol, as for any new text).
        vocabulary = Vocabulary.build([lines[i] for i in train.tolist()], self.seq_len, self.max_vocab)
        encoded = vocabulary.encode_lines(lines)  # (N, L) int64
        encoded = encoded.to(torch.int16 if len(vocabulary) <= torch.iinfo(torch.int16).max else torch.int32)
        self._splits = {"train": encoded[train], "val": encoded[val]}
        self._vocabulary = vocabulary

    @property
    def vocabulary(self) -> Vocabulary:
        """The vocabulary (reads the data on first use)."""
        self._load()
        assert self._vocabulary is not None
        return self._vocabulary

    @property
    def data_shape(self) -> tuple[int, int]:
        """Shape (vocab, seq_len) of one sequence, linked into the networks."""
        return (len(self.vocabulary), self.seq_len)

    def lines(self, split: str) -> Tensor:
        """Indices (N, seq_len) int64 of the ``train`` or ``val`` lines; an empty ``val`` falls back to ``train``."""
        return self._rows(split).long()

    def _rows(self, split: str) -> Tensor:
        """The stored indices (N, seq_len), int16 unless the vocabulary is larger."""
        self._load()
        if split not in self._splits:
            raise ValueError(f"split must be 'train' or 'val', got {split!r}")
        rows = self._splits[split]
        return self._splits["train"] if split == "val" and len(rows) == 0 else rows

    # ------------------------------------------------------------------------------------------- loaders
    def setup(self, stage: str) -> None:
        """Read the data (once)."""
        self._load()

    def _loader(self, split: str, shuffle: bool) -> DataLoader:
        return DataLoader(
            TensorDataset(self._rows(split)),  # compact indices; the collate makes them one-hot
            batch_size=self.batch_size,
            shuffle=shuffle,
            drop_last=shuffle,
            num_workers=self.num_workers,
            collate_fn=OneHotCollate(len(self.vocabulary)),
            persistent_workers=self.num_workers > 0,
        )

    def train_dataloader(self) -> DataLoader:
        """Shuffled one-hot batches (B, vocab, seq_len); incomplete batches are dropped."""
        return self._loader("train", shuffle=True)

    def val_dataloader(self) -> DataLoader:
        """The held-out lines as one-hot batches (B, vocab, seq_len), in a fixed order."""
        return self._loader("val", shuffle=False)

    # ---------------------------------------------------------------------------------------- checkpoints
    def state_dict(self) -> dict[str, Any]:
        """The vocabulary, so sampling from a checkpoint needs no data."""
        return {STATE_KEY: self.vocabulary.state_dict()}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Check that a resumed run reads the data the checkpoint was trained on.

        Raises:
            ValueError: When the checkpoint's vocabulary differs from the one built from ``data.path``.
        """
        if STATE_KEY not in state_dict:
            return
        saved = Vocabulary.from_state_dict(state_dict[STATE_KEY])
        if saved != self.vocabulary:
            raise ValueError(
                f"the checkpoint's vocabulary ({saved!r}) differs from the one built from data.path="
                f"{str(self.path)!r} ({self.vocabulary!r}); resume with the text the run was trained on"
            )
