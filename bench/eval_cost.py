"""Evaluation cost: one FID/IS/KID/precision/recall evaluation of the default digits run against its training.

Runs the default digits config through the real CLI for ``--epochs`` epochs, timing every training epoch
(without validation) and every ``ImageQuality`` evaluation. Reports one evaluation's time, the training time
per epoch, and the amortized share at the default interval (``every_n_epochs``).

    python -m bench.eval_cost [--epochs 21]
"""

from __future__ import annotations

import argparse
import tempfile
import time

import lightning.pytorch as pl
import torch

from bench.common import median, require_quiet, stamp, write_section
from src.cli import build_cli
from src.evaluation import ImageQuality


class EpochClock(pl.Callback):
    """Wall time of each training epoch, validation excluded."""

    def __init__(self) -> None:
        self.train_s: list[float] = []

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        self.start = time.perf_counter()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.last = time.perf_counter()

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        self.train_s.append(self.last - self.start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=21)
    args = parser.parse_args()
    load = require_quiet()
    tmp = tempfile.mkdtemp(prefix="eval_cost_")
    cli = build_cli(
        [
            "--config",
            "configs/digits.yaml",
            f"--trainer.logger.init_args.save_dir={tmp}",
            "--trainer.enable_progress_bar=false",
            "--model.max_generator_steps=null",
            f"--trainer.max_epochs={args.epochs}",
        ]
    )
    quality = next(cb for cb in cli.trainer.callbacks if isinstance(cb, ImageQuality))
    durations: list[float] = []
    original = quality.measure

    def timed_measure(*a, **k):
        values = original(*a, **k)
        durations.append(quality.last_duration_s)
        return values

    quality.measure = timed_measure
    clock = EpochClock()
    cli.trainer.callbacks.append(clock)
    cli.trainer.fit(cli.model, datamodule=cli.datamodule)
    epoch_s, eval_s = (
        median(clock.train_s[1:]),
        median(durations[1:] or durations),
    )  # skip warm-up and cache fill
    share = eval_s / (quality.every_n_epochs * epoch_s)
    body = (
        "### Evaluation cost (digits default)\n\n"
        "| evaluation | samples | every | one evaluation (s) | training per epoch (s) | share of training time |\n"
        "|---|---|---|---|---|---|\n"
        "| FID + IS + KID + precision/recall + class coverage, digits classifier "
        f"| {quality.num_samples} | {quality.every_n_epochs} "
        f"epochs | {eval_s:.2f} | {epoch_s:.2f} | **{100 * share:.1f}%** (one evaluation alone: "
        f"{100 * eval_s / epoch_s:.0f}% of an epoch) |\n\n"
        f"Medians over {args.epochs} epochs and {len(durations)} evaluations (the first evaluation, which also "
        f"computes and caches the real features, took {durations[0]:.2f} s). Threads: {torch.get_num_threads()}. "
        f"{stamp(load)}"
    )
    print(body)
    write_section("eval_cost", body)


if __name__ == "__main__":
    main()
