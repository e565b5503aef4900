"""Train a WGAN-GP: ``python -m src.train [--config FILE ...] [--trainer.* --model.* --data.* ...]``.

Fits, then tests ``last.ckpt`` (``test/...``) and the best checkpoint (``test_best/...``). With no arguments it
trains on scikit-learn's digits on the CPU.
"""

from __future__ import annotations

import signal
import sys

import torch
from lightning.pytorch import LightningDataModule, LightningModule, Trainer
from lightning.pytorch.utilities import rank_zero_info
from lightning.pytorch.utilities.exceptions import SIGTERMException

from src.cli import WGANCLI, build_cli
from src.utils.output_dirs import claim_run_dir, no_empty_run_dir


def main(args: list[str] | None = None) -> WGANCLI:
    """Run the CLI: fit, then test last.ckpt and the best checkpoint (:func:`report_test_metrics`)."""
    cli = build_cli(args)
    cli.check_before_training()  # writable output folders; a --ckpt_path file saved with these settings
    trainer, model, datamodule = cli.trainer, cli.model, cli.datamodule
    ckpt_path = cli.config.get("ckpt_path")
    resuming = bool(ckpt_path or getattr(cli, "resumed", None))
    claimed = claim_run_dir(trainer, resuming)  # runs started together each get their own version_N
    # weights_only: checkpoints hold tensors and plain types only, so no pickled code runs when loading
    try:
        with no_empty_run_dir(
            trainer, claimed
        ):  # a run that fails before any result leaves no empty version_N
            trainer.fit(model, datamodule=datamodule, ckpt_path=ckpt_path, weights_only=True)
    except SIGTERMException:  # preempted: PreemptionCheckpoint saved last.ckpt; exit as SIGTERM-killed
        sys.exit(128 + signal.SIGTERM)
    if trainer.interrupted:
        return cli
    if type(datamodule).test_dataloader is LightningDataModule.test_dataloader:
        rank_zero_info(f"{type(datamodule).__name__} has no test_dataloader: skipping the test stage.")
    else:
        report_test_metrics(trainer, model, datamodule)
    rank_zero_info(f"Run directory: {trainer.log_dir}")
    return cli


def report_test_metrics(
    trainer: Trainer, model: LightningModule, datamodule: LightningDataModule
) -> dict[str, str]:
    """Test ``last.ckpt`` under ``test/`` (the headline) and the best checkpoint under ``test_best/``.

    The evaluation callbacks draw the test noise and real images from their ``test_seed``, not from the seed of
    the validations that chose the best checkpoint; the best checkpoint's numbers are still selected ones, so
    they get their own keys. Without ``last.ckpt`` the final weights in memory are tested; without a monitored
    checkpoint (``--best=null``) there is no ``test_best/``.

    Returns:
        The prefix and the checkpoint it measured: ``{"test": path, "test_best": path}``.
    """
    callbacks = trainer.checkpoint_callbacks
    last = next((cb.last_model_path for cb in callbacks if cb.last_model_path), "")
    best = next((cb.best_model_path for cb in callbacks if cb.monitor and cb.best_model_path), "")
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
