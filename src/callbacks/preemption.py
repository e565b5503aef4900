"""Write a resumable checkpoint when the run is stopped: SIGTERM, Ctrl-C (SIGINT), or SIGUSR1 outside SLURM."""

from __future__ import annotations

import os
import shlex
import signal
import sys
from pathlib import Path
from types import FrameType
from typing import Any

import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import Callback, ModelCheckpoint
from lightning.pytorch.utilities import rank_zero_info
from lightning.pytorch.utilities.exceptions import SIGTERMException
from typing_extensions import override


def resume_command(path: str) -> str:
    """How to resume: this process's own ``python -m src.train`` command with ``--ckpt_path last``, when it is one."""
    argv = sys.argv
    if not argv or Path(argv[0]).resolve() != Path(__file__).resolve().parents[1] / "train.py":
        return f"the same command with --ckpt_path last (or --ckpt_path {path})"
    args, skip = [], False
    for arg in argv[1:]:  # drop an earlier --ckpt_path
        if skip:
            skip = False
        elif arg == "--ckpt_path":
            skip = True
        elif not arg.startswith("--ckpt_path="):
            args.append(arg)
    return f"python -m src.train {shlex.join([*args, '--ckpt_path', 'last'])}"


class PreemptionCheckpoint(Callback):
    """Saves ``<checkpoint dir>/last.ckpt`` when a SIGTERM or a Ctrl-C stops training, so ``--ckpt_path last`` resumes it.

    Lightning turns SIGTERM into a ``SIGTERMException`` at the end of the current batch (under DDP rank 0's flag
    is broadcast, so every rank stops at the same batch); this callback saves the checkpoint in
    ``on_exception``, on every rank as ``Trainer.save_checkpoint`` requires, before the process exits.
    A diverged run (any other exception) writes nothing. This is why Lightning's
    ``ModelCheckpoint(save_on_exception=True)`` is not used: it saves on every exception, so a NaN stop would
    replace the last good ``last.ckpt`` with the state that diverges at once when resumed.

    SIGUSR1 is what SLURM sends ahead of a time limit (``#SBATCH --signal=SIGUSR1@90``). Under SLURM with
    auto-requeue Lightning handles it itself (an ``hpc_ckpt_*.ckpt`` and ``scontrol requeue``); elsewhere, when
    ``sigusr1`` is true and nothing else handles SIGUSR1, it is treated as SIGTERM.

    Ctrl-C (SIGINT), with ``sigint`` true, is treated as SIGTERM too: the batch finishes, ``last.ckpt`` is
    saved, the resume command is printed and ``src.train`` exits with 130 (128 + SIGINT, as SIGTERM's 143 is
    128 + SIGTERM). Rank zero's Ctrl-C decides (a terminal sends it to every DDP rank): it is broadcast at the
    end of each training batch and turned into Lightning's stop request on every rank, so all ranks stop at the
    same batch and save together. A second Ctrl-C aborts at once, without saving (Lightning's
    ``KeyboardInterrupt`` handling).

    Args:
        sigusr1: Treat SIGUSR1 as a stop request when no other handler is installed.
        sigint: Treat the first Ctrl-C (SIGINT) as a stop request that saves ``last.ckpt``.
    """

    def __init__(self, sigusr1: bool = True, sigint: bool = True) -> None:
        super().__init__()
        self.sigusr1 = sigusr1
        self.sigint = sigint
        self.saved_path: str | None = None
        self.stop_signal: int | None = None  # the signal that stopped the run, for the exit code
        self._installed: dict[int, object] = {}  # signal -> the handler to restore

    def _forward_to_sigterm(self, signum: int, frame: FrameType | None) -> None:
        self.stop_signal = self.stop_signal or signum
        rank_zero_info(f"Received signal {signum}: stopping at the end of this batch, as for SIGTERM.")
        signal.raise_signal(signal.SIGTERM)

    def _on_sigint(self, signum: int, frame: FrameType | None) -> None:
        if self.stop_signal == signal.SIGINT:  # the second Ctrl-C: abort now
            signal.signal(signal.SIGINT, signal.default_int_handler)
            raise KeyboardInterrupt
        self.stop_signal = signal.SIGINT
        rank_zero_info(
            "\nCtrl-C: stopping at the end of this batch and saving last.ckpt (press Ctrl-C again to abort at "
            "once, without saving)."
        )

    @override
    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        # A Ctrl-C becomes Lightning's stop request here, between training batches. Under DDP rank zero's Ctrl-C
        # is broadcast (a collective on every rank at every batch, like Lightning's own for SIGTERM) and every
        # rank raises the request at this same batch, so they stop and save together; raising a SIGTERM from the
        # handler would broadcast from inside it, against the ranks' collectives, and hang.
        if not self.sigint:
            return
        requested = self.stop_signal == signal.SIGINT
        if trainer.world_size > 1 and torch.distributed.is_available() and torch.distributed.is_initialized():
            flag = torch.tensor([int(requested)], device=trainer.strategy.root_device)
            torch.distributed.broadcast(flag, src=0)
            requested = bool(flag.item())
        if requested and not trainer.received_sigterm:
            self.stop_signal = signal.SIGINT
            # Lightning's own SIGTERM flag (no public setter): it raises SIGTERMException after this batch
            trainer._signal_connector.received_sigterm = True

    def _install(self, signum: int, handler: object, replaceable: tuple) -> None:
        previous = signal.getsignal(signum)
        if previous in replaceable:
            signal.signal(signum, handler)  # type: ignore[arg-type]
            self._installed[signum] = previous

    @override
    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # Lightning registers its signal handlers after `on_fit_start`: installing here leaves its SLURM
        # SIGUSR1 handler (auto-requeue) in place, and only fills the default.
        self.stop_signal = None
        try:
            if self.sigusr1 and hasattr(signal, "SIGUSR1"):
                self._install(signal.SIGUSR1, self._forward_to_sigterm, (signal.SIG_DFL, None))
            if self.sigint:  # Python's own handler (KeyboardInterrupt), not one a user installed
                self._install(signal.SIGINT, self._on_sigint, (signal.default_int_handler,))
        except ValueError:  # not the main thread: signals cannot be handled here
            pass

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
        name = "Ctrl-C (SIGINT)" if self.stop_signal == signal.SIGINT else "a signal"
        step = getattr(pl_module, "generator_steps", trainer.global_step)
        rank_zero_info(
            f"Stopped by {name}: saved {path} (generator step {step}). Resume with {resume_command(path)}"
        )

    @override
    def teardown(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        for signum, previous in self._installed.items():
            try:
                signal.signal(signum, previous)  # type: ignore[arg-type]
            except ValueError:
                pass
        self._installed = {}
