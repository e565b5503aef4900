"""A callback for the reliability tests: each rank saves the first training batch it draws in a fit."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import Callback


class FirstBatches(Callback):
    """Writes ``<out>/rank<R>.pt``: the first training batch rank ``R`` draws in each fit (overwritten per fit).

    Args:
        out: The folder.
    """

    def __init__(self, out: str) -> None:
        super().__init__()
        self.out = Path(out)
        self._saved = False

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._saved = False

    def on_train_batch_start(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        if not self._saved:
            self.out.mkdir(parents=True, exist_ok=True)
            torch.save(batch.detach().cpu(), self.out / f"rank{trainer.global_rank}.pt")
            self._saved = True
