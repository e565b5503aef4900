"""A callback that makes each training epoch last a while, so a test can stop a run in the middle."""

from __future__ import annotations

import time

import lightning.pytorch as pl


class SlowEpochs(pl.Callback):
    """Sleeps ``seconds`` at the end of every training epoch."""

    def __init__(self, seconds: float = 0.5) -> None:
        self.seconds = seconds

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        time.sleep(self.seconds)
