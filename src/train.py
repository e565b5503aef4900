"""Train a WGAN-GP: ``python -m src.train [--config FILE ...] [--trainer.* --model.* --data.* ...]``.

Fits, then tests the best checkpoint. With no arguments it trains on scikit-learn's digits on the CPU.
"""

from __future__ import annotations

import signal
import sys

import torch
from lightning.pytorch import LightningDataModule
from lightning.pytorch.utilities import rank_zero_info
from lightning.pytorch.utilities.exceptions import SIGTERMException

from src.cli import WGANCLI, build_cli


def main(args: list[str] | None = None) -> WGANCLI:
    """Run the CLI: fit, then test with the best checkpoint; print where the run was written."""
    cli = build_cli(args)
    trainer, model, datamodule = cli.trainer, cli.model, cli.datamodule
    # weights_only: checkpoints hold tensors and plain types only, so no pickled code runs when loading
    try:
        trainer.fit(model, datamodule=datamodule, ckpt_path=cli.config.get("ckpt_path"), weights_only=True)
    except SIGTERMException:  # preempted: PreemptionCheckpoint saved last.ckpt; exit as a SIGTERM-killed process
        sys.exit(128 + signal.SIGTERM)
    if trainer.interrupted:
        return cli
    if type(datamodule).test_dataloader is LightningDataModule.test_dataloader:
        rank_zero_info(f"{type(datamodule).__name__} has no test_dataloader: skipping the test stage.")
    else:
        best = trainer.checkpoint_callback.best_model_path if trainer.checkpoint_callback else ""
        trainer.test(model, datamodule=datamodule, ckpt_path=best or None, weights_only=True)
    rank_zero_info(f"Run directory: {trainer.log_dir}")
    return cli


def end_distributed() -> None:
    """Destroy the process group, if any: gloo's threads otherwise abort the interpreter at exit."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()


if __name__ == "__main__":
    try:
        main()
    finally:
        end_distributed()
