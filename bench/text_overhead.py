"""Step rate of the language model at the paper's size (``configs/text.yaml``) against a bare PyTorch loop.

Both sides train the paper's 1-D residual generator and critic (width 512, five blocks, sequences of 32 over a
vocabulary of 2048, batch 64) with the same math: Adam 1e-4 with betas (0.5, 0.9), n_critic 10, gradient
penalty λ = 10, on the same pre-generated one-hot batches. As ``bench/overhead.py``: each repetition runs the
sides back to back in alternating order, and the median of the per-repetition throughput ratios is reported.
Refuses to record on a busy machine (load average above 1.5). Writes the table into BENCHMARKS.md.

    python -m bench.text_overhead [--steps 40] [--reps 3] [--dim 512] [--vocab 2048]
"""

from __future__ import annotations

import argparse
import copy
import tempfile
import time

import lightning.pytorch as pl
import torch

from bench import bare_loop
from bench.common import median, require_quiet, stamp, write_section
from bench.overhead import Batches, Timer
from src.models import WGANGP
from src.nets import LanguageCritic, LanguageGenerator
from src.regularizers import GradientPenalty

N_CRITIC, GP_WEIGHT, LR, BETAS = 10, 10.0, 1e-4, (0.5, 0.9)


def _adam(params) -> torch.optim.Optimizer:
    return torch.optim.Adam(params, lr=LR, betas=BETAS)


def run_project(generator, critic, batches, tmp: str) -> float:
    """Seconds from the first batch to the end of the epoch under the Lightning Trainer."""
    timer = Timer()
    model = WGANGP(generator, critic, n_critic=N_CRITIC, generator_optimizer=_adam, critic_optimizer=_adam)
    trainer = pl.Trainer(
        accelerator="cpu",
        devices=1,
        max_epochs=1,
        logger=pl.loggers.CSVLogger(tmp),
        log_every_n_steps=25,
        enable_checkpointing=False,
        enable_model_summary=False,
        enable_progress_bar=False,
        limit_val_batches=0,
        num_sanity_val_steps=0,
        callbacks=[GradientPenalty(GP_WEIGHT), timer],
    )
    trainer.fit(model, train_dataloaders=Batches(batches))
    return timer.seconds


def run_bare(generator, critic, batches) -> float:
    """Seconds of the bare loop over the same batches."""
    start = time.perf_counter()
    bare_loop.train(generator, critic, batches, n_critic=N_CRITIC, gp_weight=GP_WEIGHT, lr=LR, betas=BETAS)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=40, help="critic steps per side and repetition")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--vocab", type=int, default=2048)
    parser.add_argument("--seq-len", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=64)
    args = parser.parse_args()
    load = require_quiet()

    torch.manual_seed(0)
    shape = (args.vocab, args.seq_len)
    g0 = LanguageGenerator(shape, dim=args.dim, init="paper")
    c0 = LanguageCritic(shape, dim=args.dim, init="paper")
    batches = [
        torch.nn.functional.one_hot(torch.randint(args.vocab, (args.batch_size, args.seq_len)), args.vocab)
        .transpose(1, 2)
        .float()  # (B, vocab, L)
        for _ in range(args.steps)
    ]
    ratios, bare_s, proj_s = [], [], []
    for rep in range(args.reps):
        times = {}
        for side in ["bare", "project"] if rep % 2 == 0 else ["project", "bare"]:
            g, c = copy.deepcopy(g0), copy.deepcopy(c0)
            with tempfile.TemporaryDirectory() as tmp:
                times[side] = run_bare(g, c, batches) if side == "bare" else run_project(g, c, batches, tmp)
        bare_s.append(times["bare"])
        proj_s.append(times["project"])
        ratios.append(times["bare"] / times["project"])  # throughput ratio project / bare
        print(f"rep {rep}: bare {times['bare']:.2f}s project {times['project']:.2f}s", flush=True)
    steps = args.steps
    name = f"language dim {args.dim}, vocab {args.vocab}, seq {args.seq_len}, batch {args.batch_size}"
    table = "\n".join(
        [
            "| case | bare loop critic steps/s | project critic steps/s | project generator steps/s | "
            "project / bare (median of per-rep ratios) |",
            "|---|---|---|---|---|",
            f"| {name} | {steps / median(bare_s):.2f} | {steps / median(proj_s):.2f} | "
            f"{steps / N_CRITIC / median(proj_s):.3f} | **{median(ratios):.3f}×** |",
        ]
    )
    body = (
        f"### Language model step rate (configs/text.yaml)\n\n{table}\n\n{args.reps} repetitions of {steps} "
        f"critic steps per side (n_critic {N_CRITIC}), sides alternated. {stamp(load)}"
    )
    print(body)
    write_section("text_overhead", body)


if __name__ == "__main__":
    main()
