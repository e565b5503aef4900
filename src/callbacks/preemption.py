"""Write a resumable checkpoint when the scheduler stops the run (SIGTERM, or SIGUSR1 outside SLURM)."""

from __future__ import annotations

import os
import signal
from types import FrameType

import lightning.pytorch as pl
from lightning.pytorch.callbacks import Callback, ModelCheckpoint
from lightning.pytorch.utilities import rank_zero_info
from lightning.pytorch.utilities.exceptions import SIGTERMException
from typing_extensions import override


class PreemptionCheckpoint(Callback):
    """Saves ``<checkpoint dir>/last.ckpt`` when a SIGTERM stops training, so ``--ckpt_path last`` resumes it.

    Lightning turns SIGTERM into a ``SIGTERMException`` at the end of the current batch (under DDP rank 0's flag
    is broadcast, so every rank stops at the same batch); this callback saves the checkpoint in
    ``on_exception``, on every rank as ``Trainer.save_checkpoint`` requires, before the process exits.
    A diverged run (any other exception) writes nothing. This is why Lightning's
    ``ModelCheckpoint(save_on_exception=True)`` is not used: it saves on every exception, so a NaN stop would
    replace the last good ``last.ckpt`` with the state that diverges at once when resumed.

    SIGUSR1 is what SLURM sends ahead of a time limit (``#SBATCH --signal=SIGUSR1@90``). Under SLURM with
    auto-requeue Lightning handles it itself (an ``hpc_ckpt_*.ckpt`` and ``scontrol requeue``); elsewhere, when
    ``sigusr1`` is true and nothing else handles SIGUSR1, it is treated as SIGTERM.

    Args:
        sigusr1: Treat SIGUSR1 as a stop request when no other handler is installed.
    """

    def __init__(self, sigusr1: bool = True) -> None:
        super().__init__()
        self.sigusr1 = sigusr1
        self.saved_path: str | None = None
        self._installed = False

    @staticmethod
    def _forward_to_sigterm(signum: int, frame: FrameType | None) -> None:
        rank_zero_info(f"Received signal {signum}: stopping at the end of this batch, as for SIGTERM.")
        signal.raise_signal(signal.SIGTERM)

    @override
    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # Lightning registers its signal handlers after `on_fit_start`: installing here leaves its SLURM
        # SIGUSR1 handler (auto-requeue) in place, and only fills the default.
        if not self.sigusr1 or not hasattr(signal, "SIGUSR1"):
            return
        try:
            if signal.getsignal(signal.SIGUSR1) in (signal.SIG_DFL, None):
                signal.signal(signal.SIGUSR1, self._forward_to_sigterm)
                self._installed = True
        except ValueError:  # not the main thread: signals cannot be handled here
            self._installed = False

    @staticmethod
    def checkpoint_path(trainer: pl.Trainer) -> str:
        """Where the preemption checkpoint goes: the ``last`` file of the first ``ModelCheckpoint``."""
        callback = trainer.checkpoint_callback
        if isinstance(callback, ModelCheckpoint) and callback.dirpath:
            name = callback.CHECKPOINT_NAME_LAST
            if "{" in name:  # a templated name such as "last-{epoch}"
                name = callback.format_checkpoint_name(
                    {"epoch": trainer.current_epoch, "step": trainer.global_step}, name
                )
                return name
            return os.path.join(callback.dirpath, name + callback.FILE_EXTENSION)
        root = trainer.log_dir or trainer.default_root_dir
        return os.path.join(root, "checkpoints", ModelCheckpoint.CHECKPOINT_NAME_LAST + ".ckpt")

    @override
    def on_exception(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException
    ) -> None:
        if not isinstance(exception, SIGTERMException) or trainer.state.fn != "fit":
            return
        path = self.checkpoint_path(trainer)
        trainer.save_checkpoint(path, weights_only=False)  # the full state, to resume from
        self.saved_path = path
        rank_zero_info(f"Stopped by a signal: saved {path}. Resume with --ckpt_path last (or {path}).")

    @override
    def teardown(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if self._installed:
            try:
                signal.signal(signal.SIGUSR1, signal.SIG_DFL)
            except ValueError:
                pass
            self._installed = False
