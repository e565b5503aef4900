"""The seed claims on 25 Gaussians: Lipschitz constraints, optimizers and CGD, on equal networks and budget.

- constraint (Adam for all): weight clipping (Arjovsky et al. 2017) vs the gradient penalty (Gulrajani et al.
  2017) vs the one-sided penalty (Petzka et al. 2018);
- optimizer (gradient penalty for all): SGDA vs normalized SGDA vs Adam (Jelassi et al. 2022: SGDA
  mode-collapses, nSGDA recovers the modes);
- competitive gradient descent with the plain WGAN loss and no penalty (Schäfer et al. 2020), in its adaptive
  form ACGD as in that paper (plain CGD was unstable or diverged at the learning rates we tried, 0.02 to 0.5).

Every run uses the same MLPs, batch, data stream and number of generator steps, trained by ``WGANGP`` and the
project's regularizers and optimizers. Reported: modes covered and high-quality share
(:func:`src.metrics.mode_coverage`, on 2,500 samples) and exact W1 to 2,500 fresh real points
(:func:`src.metrics.exact_w1`), mean ± std over seeds.

    OMP_NUM_THREADS=1 python -m bench.toy_claims [--seeds 3] [--steps 2000] [--hidden 64] [--jobs 2]

Prints a markdown table and writes ``bench/figures/toy_claims.png`` (samples of seed 0 for each method) and
``bench/figures/toy_claims.md`` (the table with its stamp).
"""

from __future__ import annotations

import argparse
import functools
import math
import multiprocessing
import statistics
import time
import warnings
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch

from bench.common import stamp
from src.data import Toy2DDataModule
from src.data.toy import sample_toy, toy_mode_centers, toy_mode_std
from src.metrics import exact_w1, mode_coverage
from src.models import WGANGP, CompetitiveWGAN
from src.nets import MLPCritic, MLPGenerator
from src.optim import CGD, NormalizedSGD
from src.regularizers import CriticRegularizer, GradientPenalty, OneSidedPenalty, WeightClipping
from src.utils.divergence import TrainingDivergedError

FIGURES = Path(__file__).resolve().parent / "figures"
DATASET = "25gaussians"
NUM_EVAL = 2500


@dataclass(frozen=True)
class Method:
    """One row of the table: how the critic is constrained and how both players are optimized."""

    label: str
    regularizer: Callable[[], CriticRegularizer | None]
    optimizer: Callable[..., torch.optim.Optimizer] | None = None  # both players, alternating
    competitive: Callable[..., torch.optim.Optimizer] | None = None  # both players, simultaneous


def methods(lr_adam: float, lr_sgd: float, lr_nsgd: float, lr_cgd: float) -> dict[str, Method]:
    """The compared methods.

    The default learning rates had the lowest W1 in a one-seed sweep (1,000 generator steps, width 64): Adam
    {1e-3, 3e-3}, SGD {0.01, 0.05}, nSGD {0.02, 0.05}, ACGD {1e-3, 1e-2} (500 steps); plain CGD (``BCGD``) at
    {0.02, 0.05, 0.2, 0.5} was unstable or diverged.
    """
    adam = functools.partial(torch.optim.Adam, lr=lr_adam, betas=(0.5, 0.9))  # the paper's toy betas
    gp = functools.partial(GradientPenalty, weight=0.1)  # the paper's toy λ
    return {
        "clip": Method("weight clipping (c=0.01) + Adam", functools.partial(WeightClipping, 0.01), adam),
        "gp": Method("gradient penalty (λ=0.1) + Adam", gp, adam),
        "lp": Method(
            "one-sided penalty (λ=0.1) + Adam", functools.partial(OneSidedPenalty, weight=0.1), adam
        ),
        "sgda": Method(f"GP + SGDA (lr {lr_sgd:g})", gp, functools.partial(torch.optim.SGD, lr=lr_sgd)),
        "nsgda": Method(
            f"GP + nSGDA (layer-wise, lr {lr_nsgd:g})", gp, functools.partial(NormalizedSGD, lr=lr_nsgd)
        ),
        "cgd": Method(
            f"ACGD (lr {lr_cgd:g}), plain WGAN loss, no penalty",
            lambda: None,
            competitive=functools.partial(CGD, lr_min=lr_cgd, adaptive=True),
        ),
    }


def train(method: Method, seed: int, steps: int, hidden: int, batch_size: int) -> tuple[WGANGP, float]:
    """Train one method from ``seed`` for ``steps`` generator steps; returns the model and the seconds taken.

    A run that diverges stops with ``TrainingDivergedError`` (raised before the bad step is taken).
    """
    pl.seed_everything(seed, verbose=False)
    nets = MLPGenerator(latent_dim=2, hidden_dim=hidden), MLPCritic(hidden_dim=hidden)
    if method.competitive is not None:  # both players, simultaneously
        model = CompetitiveWGAN(*nets, competitive_optimizer=method.competitive, max_generator_steps=steps)
    else:
        model = WGANGP(
            *nets,
            n_critic=5,
            generator_optimizer=method.optimizer,
            critic_optimizer=method.optimizer,
            max_generator_steps=steps,
        )
    regularizer = method.regularizer()
    trainer = pl.Trainer(
        accelerator="cpu",
        devices=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        limit_val_batches=0,
        num_sanity_val_steps=0,
        max_epochs=-1,
        callbacks=[] if regularizer is None else [regularizer],
    )
    data = Toy2DDataModule(dataset=DATASET, batch_size=batch_size, batches_per_epoch=500, seed=seed)
    start = time.perf_counter()
    trainer.fit(model, datamodule=data)
    return model, time.perf_counter() - start


def evaluate(model: WGANGP, seed: int) -> dict[str, Any]:
    """Modes covered, high-quality share and exact W1 on ``NUM_EVAL`` samples."""
    torch.manual_seed(10_000 + seed)
    fake = model.sample(NUM_EVAL).float().cpu()
    real = sample_toy(DATASET, NUM_EVAL, torch.Generator().manual_seed(20_000 + seed))
    finite = bool(torch.isfinite(fake).all())
    cover = mode_coverage(fake, toy_mode_centers(DATASET), toy_mode_std(DATASET)) if finite else None
    return {
        "modes": cover["modes_covered"] if cover else 0,
        "hq": cover["high_quality_fraction"] if cover else 0.0,
        "w1": exact_w1(fake, real) if finite else float("nan"),
        "samples": fake,
    }


def run_one(key: str, seed: int, args: argparse.Namespace) -> dict[str, Any]:
    """Train and evaluate one (method, seed); a diverged run counts as 0 modes and W1 = nan."""
    torch.set_num_threads(1)
    warnings.filterwarnings("ignore")
    method = methods(args.lr_adam, args.lr_sgd, args.lr_nsgd, args.lr_cgd)[key]
    start = time.perf_counter()
    try:
        model, seconds = train(method, seed, args.steps, args.hidden, args.batch_size)
    except TrainingDivergedError:
        return {"modes": 0, "hq": 0.0, "w1": float("nan"), "samples": None, "diverged": True,
                "seconds": time.perf_counter() - start}  # fmt: skip
    return {**evaluate(model, seed), "seconds": seconds, "diverged": False}


def mean_std(values: list[float], fmt: str) -> str:
    """``mean ± std`` over seeds (std 0 for one seed)."""
    values = [v for v in values if not math.isnan(v)]
    if not values:
        return "diverged"
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{format(statistics.mean(values), fmt)} ± {format(std, fmt)}"


def figure(samples: dict[str, torch.Tensor], labels: dict[str, str], path: Path) -> None:
    """Generated points (seed 0) of every method over the real modes."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    real = sample_toy(DATASET, NUM_EVAL, torch.Generator().manual_seed(0))
    fig, axes = plt.subplots(1, len(samples), figsize=(3.2 * len(samples), 3.4), sharex=True, sharey=True)
    for ax, (key, fake) in zip(axes, samples.items()):
        ax.scatter(real[:, 0], real[:, 1], s=1, c="tab:orange", alpha=0.4)
        if fake is not None:
            ax.scatter(fake[:, 0], fake[:, 1], s=1, c="tab:green", alpha=0.5)
        ax.set_title(labels[key], fontsize=8)
        ax.set_xlim(-2.2, 2.2)
        ax.set_ylim(-2.2, 2.2)
        ax.set_aspect("equal")
    fig.suptitle("25 Gaussians: real (orange) vs generated (green), seed 0", fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> str:
    """Run every method over the seeds; print and write the table and the figure."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=2000, help="generator steps per run")
    parser.add_argument("--hidden", type=int, default=64, help="width of the 3 hidden layers of both MLPs")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--lr-adam", type=float, default=1e-3)
    parser.add_argument("--lr-sgd", type=float, default=1e-2)
    parser.add_argument("--lr-nsgd", type=float, default=2e-2)
    parser.add_argument("--lr-cgd", type=float, default=1e-2)
    parser.add_argument("--methods", nargs="*", default=None, help="subset of clip gp lp sgda nsgda cgd")
    parser.add_argument("--jobs", type=int, default=2, help="runs in parallel, one torch thread each")
    parser.add_argument("--out", type=Path, default=FIGURES)
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore")
    table = methods(args.lr_adam, args.lr_sgd, args.lr_nsgd, args.lr_cgd)
    keys = args.methods or list(table)
    jobs = [(key, seed) for key in keys for seed in range(args.seeds)]
    results: dict[str, list[dict[str, Any]]] = {k: [None] * args.seeds for k in keys}
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=args.jobs, mp_context=context) as pool:
        futures = {pool.submit(run_one, key, seed, args): (key, seed) for key, seed in jobs}
        for future in as_completed(futures):
            key, seed = futures[future]
            result = results[key][seed] = future.result()
            status = "DIVERGED" if result["diverged"] else f"W1 {result['w1']:.4f}"
            print(
                f"{key:6s} seed {seed}: modes {result['modes']:2d}/25  high-quality {result['hq']:.3f}  "
                f"{status}  ({result['seconds']:.0f} s)",
                flush=True,
            )
    lines = [
        "| method | modes covered (of 25) | high-quality share | exact W1 | diverged | seconds per run |",
        "|---|---|---|---|---|---|",
    ]
    for key in keys:
        rs = results[key]
        lines.append(
            f"| {table[key].label} | {mean_std([r['modes'] for r in rs], '.1f')} | "
            f"{mean_std([r['hq'] for r in rs], '.3f')} | {mean_std([r['w1'] for r in rs], '.3f')} | "
            f"{sum(r['diverged'] for r in rs)}/{len(rs)} | {statistics.mean(r['seconds'] for r in rs):.0f} |"
        )
    budget = (
        f"Budget: {args.steps} generator steps per run (n_critic 5 for the alternating methods, so "
        f"{5 * args.steps} critic steps; CGD updates both players together, {args.steps} steps), MLPs of 3 "
        f"hidden layers of {args.hidden} for generator and critic, batch {args.batch_size}, noise dim 2, "
        f"{args.seeds} seed(s), mean ± std over seeds (a diverged run counts as 0 modes and 0 high-quality "
        f"share and is left out of W1); metrics on {NUM_EVAL} samples; {args.jobs} run(s) in parallel."
    )
    text = "\n".join([*lines, "", budget, stamp()])
    print()
    print(text)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "toy_claims.md").write_text(text + "\n")
    figure(
        {k: results[k][0]["samples"] for k in keys},
        {k: table[k].label for k in keys},
        args.out / "toy_claims.png",
    )
    print(f"\nwrote {args.out / 'toy_claims.md'} and {args.out / 'toy_claims.png'}")
    return text


if __name__ == "__main__":
    main()
