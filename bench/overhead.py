"""Framework overhead: the project's WGANGP under the Lightning Trainer against ``bench/bare_loop.py``.

Both sides train the same networks on the same pre-generated batches with the same math (Adam, n_critic 5,
gradient penalty). Each repetition runs the two sides back to back in alternating order; the ratio of their
throughputs is taken per repetition and the median reported. Writes the table into BENCHMARKS.md.

    python -m bench.overhead [--steps 200] [--reps 5]
"""

from __future__ import annotations

import argparse
import copy
import time

import lightning.pytorch as pl
import torch

from bench import bare_loop
from bench.common import median, stamp, write_section
from src.models import WGANGP
from src.nets import DCGANCritic, DCGANGenerator, MLPCritic, MLPGenerator
from src.regularizers import GradientPenalty

CASES = {
    # name: (generator, critic, batch shape, gp weight)
    "toy MLP 3x512, batch 256": (lambda: MLPGenerator(latent_dim=2), lambda: MLPCritic(), (256, 2), 0.1),
    "DCGAN 32 px (dim 64), batch 64": (
        lambda: DCGANGenerator((3, 32, 32), dim=64),
        lambda: DCGANCritic((3, 32, 32), dim=64),
        (64, 3, 32, 32),
        10.0,
    ),
}


class Batches:
    """The same pre-generated real batches for both sides (no data loading in the measurement)."""

    def __init__(self, batches: list[torch.Tensor]) -> None:
        self.batches = batches

    def __iter__(self):
        return iter(self.batches)

    def __len__(self) -> int:
        return len(self.batches)


class Timer(pl.Callback):
    """Wall time from the first training batch to the end of the epoch (excludes Trainer set-up)."""

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if batch_idx == 0:
            self.start = time.perf_counter()

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        self.seconds = time.perf_counter() - self.start


def run_project(generator, critic, batches, weight: float, tmp: str) -> float:
    timer = Timer()
    model = WGANGP(generator, critic, n_critic=5)
    trainer = pl.Trainer(
        accelerator="cpu",
        devices=1,
        max_epochs=1,
        logger=pl.loggers.CSVLogger(tmp),
        log_every_n_steps=25,
        enable_checkpointing=False,
        enable_model_summary=False,
        limit_val_batches=0,
        num_sanity_val_steps=0,
        callbacks=[GradientPenalty(weight), timer],
    )
    trainer.fit(model, train_dataloaders=Batches(batches))
    return timer.seconds


def run_bare(generator, critic, batches, weight: float) -> float:
    start = time.perf_counter()
    bare_loop.train(generator, critic, batches, n_critic=5, gp_weight=weight)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=200, help="critic steps per side and repetition")
    parser.add_argument("--reps", type=int, default=5)
    args = parser.parse_args()
    import tempfile

    rows = []
    for name, (make_g, make_c, shape, weight) in CASES.items():
        torch.manual_seed(0)
        g0, c0 = make_g(), make_c()
        batches = [torch.randn(*shape) for _ in range(args.steps)]
        ratios, bare_s, proj_s = [], [], []
        for rep in range(args.reps):
            sides = ["bare", "project"] if rep % 2 == 0 else ["project", "bare"]
            times = {}
            for side in sides:
                g, c = copy.deepcopy(g0), copy.deepcopy(c0)
                with tempfile.TemporaryDirectory() as tmp:
                    times[side] = (
                        run_bare(g, c, batches, weight)
                        if side == "bare"
                        else run_project(g, c, batches, weight, tmp)
                    )
            bare_s.append(times["bare"])
            proj_s.append(times["project"])
            ratios.append(times["bare"] / times["project"])  # throughput ratio project / bare
            print(f"{name} rep {rep}: bare {times['bare']:.2f}s project {times['project']:.2f}s", flush=True)
        steps = args.steps
        rows.append(
            f"| {name} | {steps / median(bare_s):.1f} | {steps / median(proj_s):.1f} | "
            f"{steps / 5 / median(proj_s):.1f} | **{median(ratios):.3f}×** |"
        )
    table = "\n".join(
        [
            "| case | bare loop critic steps/s | project critic steps/s | project generator steps/s | project / bare (median of per-rep ratios) |",
            "|---|---|---|---|---|",
            *rows,
        ]
    )
    body = f"### Framework overhead\n\n{table}\n\n{args.reps} repetitions of {args.steps} critic steps per side, sides alternated. {stamp()}"
    print(body)
    write_section("overhead", body)


if __name__ == "__main__":
    main()
