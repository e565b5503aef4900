"""Train a WGAN-GP: ``python -m src.train [--config FILE ...] [--trainer.* --model.* --data.* ...]``.

Fits, then tests ``last.ckpt`` (``test/...``) and the best checkpoint (``test_best/...``). With no arguments it
trains on scikit-learn's digits on the CPU. A resumed checkpoint that has already reached the run's length is not
trained again (:func:`finish`). Stopped by SIGTERM (or Ctrl-C), it saves ``last.ckpt`` and exits with 143 (130).
"""

from __future__ import annotations

import signal
import sys

import torch
from lightning.pytorch import LightningDataModule, LightningModule, Trainer
from lightning.pytorch.utilities import rank_zero_info
from lightning.pytorch.utilities.exceptions import SIGTERMException

from src.callbacks import PreemptionCheckpoint
from src.cli import WGANCLI, build_cli
from src.utils.checkpoint import load_checkpoint
from src.utils.output_dirs import claim_run_dir, no_empty_run_dir, run_directory
from src.utils.run_length import best_checkpoint, finished_checkpoint


def main(args: list[str] | None = None) -> WGANCLI:
    """Run the CLI: fit, then test last.ckpt and the best checkpoint (:func:`report_test_metrics`)."""
    cli = build_cli(args)
    cli.check_before_training()  # writable output folders; a --ckpt_path file saved with these settings
    trainer, model, datamodule = cli.trainer, cli.model, cli.datamodule
    ckpt_path = cli.config.get("ckpt_path")
    resumed = ckpt_path or getattr(cli, "resumed", None)
    done = finished_checkpoint(str(resumed) if resumed else None, model, trainer)
    if done is not None:
        return finish(cli, str(resumed), done)
    claimed = claim_run_dir(trainer, bool(resumed))  # runs started together each get their own version_N
    # weights_only: checkpoints hold tensors and plain types only, so no pickled code runs when loading
    try:
        with no_empty_run_dir(
            trainer, claimed
        ):  # a run that fails before any result leaves no empty version_N
            trainer.fit(model, datamodule=datamodule, ckpt_path=ckpt_path, weights_only=True)
    except SIGTERMException:  # preempted: PreemptionCheckpoint saved last.ckpt; exit as killed by the signal
        sys.exit(128 + stop_signal(trainer))
    if trainer.interrupted:
        return cli
    if type(datamodule).test_dataloader is LightningDataModule.test_dataloader:
        rank_zero_info(f"{type(datamodule).__name__} has no test_dataloader: skipping the test stage.")
    else:
        report_test_metrics(trainer, model, datamodule)
    rank_zero_info(f"Run directory: {run_directory(trainer)}")
    return cli


def stop_signal(trainer: Trainer) -> int:
    """The signal that stopped training: SIGINT for a Ctrl-C, else SIGTERM (also for a forwarded SIGUSR1)."""
    for callback in trainer.callbacks:
        if isinstance(callback, PreemptionCheckpoint) and callback.stop_signal == signal.SIGINT:
            return signal.SIGINT
    return signal.SIGTERM


def finish(cli: WGANCLI, ckpt: str, done: str) -> WGANCLI:
    """A resumed checkpoint whose run is complete: train nothing, say so, and test it only when asked.

    ``--test_finished=true`` tests it (``test/...``) and the best checkpoint its run kept (``test_best/...``), as
    the end of a run does; otherwise nothing is written.
    """
    rank_zero_info(
        f"{ckpt} has finished its run ({done}): nothing to train. To train further, resume with a longer run "
        "(e.g. a larger --model.max_generator_steps); to test it, add --test_finished=true, or run "
        f"python -m src.evaluate --ckpt {ckpt}."
    )
    datamodule = cli.datamodule
    if (
        cli.config.get("test_finished")
        and type(datamodule).test_dataloader is not LightningDataModule.test_dataloader
    ):
        best = best_checkpoint(load_checkpoint(ckpt, mmap=True))
        report_test_metrics(cli.trainer, cli.model, datamodule, last=ckpt, best=best)
    return cli


def report_test_metrics(
    trainer: Trainer,
    model: LightningModule,
    datamodule: LightningDataModule,
    last: str | None = None,
    best: str | None = None,
) -> dict[str, str]:
    """Test ``last.ckpt`` under ``test/`` (the headline) and the best checkpoint under ``test_best/``.

    The evaluation callbacks draw the test noise and real images from their ``test_seed``, not from the seed of
    the validations that chose the best checkpoint; the best checkpoint's numbers are still selected ones, so
    they get their own keys. Without ``last.ckpt`` the final weights in memory are tested; without a monitored
    checkpoint (``--best=null``) there is no ``test_best/``.

    Args:
        trainer: The trainer that fitted.
        model: Its model.
        datamodule: Its data.
        last: The checkpoint to test as ``test/``; default: the ``last.ckpt`` of this fit.
        best: The checkpoint to test as ``test_best/``; default: the best of this fit's monitored checkpoint.

    Returns:
        The prefix and the checkpoint it measured: ``{"test": path, "test_best": path}``.
    """
    callbacks = trainer.checkpoint_callbacks
    last = last or next((cb.last_model_path for cb in callbacks if cb.last_model_path), "")
    best = best or next((cb.best_model_path for cb in callbacks if cb.monitor and cb.best_model_path), "")
    tested = {"test": last or "the final weights (no last.ckpt)"}
    rank_zero_info(f"test/... measures {tested['test']}")
    trainer.test(model, datamodule=datamodule, ckpt_path=last or None, weights_only=True)
    if best:
        tested["test_best"] = best
        rank_zero_info(f"test_best/... measures the best checkpoint on validation, {best}")
        model.test_prefix = "test_best"
        try:
            trainer.test(model, datamodule=datamodule, ckpt_path=best, weights_only=True)
        finally:
            model.test_prefix = "test"
    return tested


def end_distributed() -> None:
    """Destroy the process group, if any: gloo's threads otherwise abort the interpreter at exit."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()


if __name__ == "__main__":
    try:
        main()
    finally:
        end_distributed()
