"""Time to quality: seconds and generator steps until a config reaches its quality target, over several seeds.

Cases (each runs the real CLI in-process, the same code as ``python -m src.train``, to the config's own
``max_generator_steps``):

* ``toy_fast`` / ``toy``: ``configs/toy_fast.yaml`` / ``configs/toy.yaml`` until 25/25 modes with >= 90%
  high-quality samples hold over three evaluations in a row (``val/modes_covered``, ``val/high_quality``);
* ``digits``: the default run until validation precision and recall >= 0.75 with 10/10 classes;
* ``digits_long``: ``configs/digits_long.yaml`` until precision >= 0.85 and recall >= 0.80 with 10/10 classes;
* ``digits_uncond``: ``configs/digits_uncond.yaml`` (the default without its labels), the default's target.

The digits runs then test ``last.ckpt`` as ``python -m src.train`` does, and the table gives the test metrics
beside their real-against-real floor at the same sample sizes (``test/fid_floor``), with the mean and std over
the seeds. For each target it records the median and the worst over the seeds, writes the curves to
``bench/figures/time_to_quality_<case>[_steps].png`` and a section of BENCHMARKS.md. It refuses to run when the load
average shows other jobs on the machine (``--max-load``): times taken beside them are not comparable.

    python -m bench.time_to_quality toy_fast --seeds 3 [EXTRA CLI FLAGS...]
    python -m bench.time_to_quality toy_fast --seeds 5 --steps-only   # robustness over seeds, any load
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import lightning.pytorch as pl

from bench.common import QUIET_LOAD, ROOT, load_average, require_quiet, stamp, write_section
from src.cli import build_cli
from src.evaluation import ScheduledEvaluation
from src.train import report_test_metrics

FIGURES = ROOT / "bench" / "figures"
TOY_KEYS = ["val/modes_covered", "val/high_quality", "val/w1"]
DIGITS_KEYS = ["val/precision", "val/recall", "val/fid", "val/fid_floor", "val/classes_covered"]
DIGITS_TARGETS = {
    "digits": (0.75, 0.75),
    "digits_long": (0.85, 0.80),
    "digits_uncond": (0.75, 0.75),
}  # precision, recall (issue 19)
DIGITS_CONFIGS = {  # the config files of each case, in order
    "digits": [],
    "digits_long": ["configs/digits_long.yaml"],
    "digits_uncond": ["configs/digits_uncond.yaml"],
}
TEST_KEYS = ["fid", "fid_floor", "kid", "kid_floor", "precision", "precision_floor", "recall", "recall_floor"]


def toy_target(m: dict[str, float]) -> bool:
    """25/25 modes and >= 90% high-quality samples."""
    return m["val/modes_covered"] >= 25 and m["val/high_quality"] >= 0.9


class Clock(pl.Callback):
    """Records (seconds since fit start, generator steps, metrics) after each evaluation.

    The target is reached at the evaluation that completes ``hold`` consecutive evaluations meeting it; with
    ``stop`` the run ends there.
    """

    def __init__(
        self, keys: list[str], reached: Callable[[dict], bool], hold: int, budget_s: float, stop: bool = False
    ) -> None:
        self.keys, self.reached, self.hold, self.budget_s, self.stop = keys, reached, hold, budget_s, stop
        self.points: list[dict] = []
        self.hit: dict | None = None
        self.streak = 0

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.start = time.perf_counter()

    def on_validation_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.sanity_checking or not hasattr(self, "start"):
            return
        metrics = {k: float(trainer.callback_metrics[k]) for k in self.keys if k in trainer.callback_metrics}
        evaluations = [cb for cb in trainer.callbacks if isinstance(cb, ScheduledEvaluation)]
        fresh = all(cb.last_eval_step == trainer.global_step for cb in evaluations)
        if len(metrics) < len(self.keys) or not fresh:
            return  # no new evaluation this epoch: the logged values are the last evaluation's
        point = {
            "seconds": time.perf_counter() - self.start,
            "gen_steps": pl_module.generator_steps,
            **metrics,
        }
        self.points.append(point)
        print(json.dumps(point), flush=True)
        self.streak = self.streak + 1 if self.reached(metrics) else 0
        if self.hit is None and self.streak >= self.hold:
            self.hit = point
        if point["seconds"] > self.budget_s or (self.stop and self.hit is not None):
            trainer.should_stop = True


def run_seed(cli_args: list[str], seed: int, clock: Clock, tmp: str, data_seed: bool, test: bool) -> dict:
    """Train one seed to the config's step budget (and with ``test`` test ``last.ckpt`` as ``src.train`` does).

    The seed sets the initial weights and the noise; with ``data_seed`` also the toy data stream.

    Returns:
        ``fit_s`` (the fit's wall seconds), ``total_s`` (fit and test) and the ``test/...`` metrics.
    """
    cli = build_cli(
        [
            *cli_args,
            f"--seed_everything={seed}",
            *([f"--data.init_args.seed={seed}"] if data_seed else []),
            f"--trainer.logger.init_args.save_dir={tmp}/seed{seed}",
            "--trainer.enable_progress_bar=false",
        ]
    )
    cli.trainer.callbacks.append(clock)
    start = time.perf_counter()
    cli.trainer.fit(cli.model, datamodule=cli.datamodule)
    out: dict = {"fit_s": time.perf_counter() - start, "test": {}}
    if test:
        report_test_metrics(cli.trainer, cli.model, cli.datamodule)
        rows = list(csv.DictReader(open(Path(cli.trainer.log_dir) / "metrics.csv")))
        for key in [*TEST_KEYS, *(f"{k}_std" for k in TEST_KEYS if k.endswith("_floor"))]:
            values = [float(r[f"test/{key}"]) for r in rows if r.get(f"test/{key}")]
            if values:
                out["test"][key] = values[-1]
    out["total_s"] = time.perf_counter() - start
    return out


def test_cell(rows: list[dict], key: str) -> str:
    """A test metric's mean ± std over seeds; a floor (the same for every seed) ± its std over its draws."""
    if key.endswith("_floor"):
        row = next((r["test"] for r in rows if key in r["test"]), None)
        return "—" if row is None else f"{row[key]:.3g} ± {row.get(key + '_std', float('nan')):.2g}"
    return mean_std([r["test"][key] for r in rows if key in r["test"]])


def mean_std(values: list[float]) -> str:
    """``mean ± std`` (sample std) of per-seed values."""
    if len(values) < 2:
        return f"{values[0]:.3g}" if values else "—"
    return f"{statistics.mean(values):.3g} ± {statistics.stdev(values):.2g}"


def summary(values: list[float | None]) -> str:
    """``median / worst`` of per-seed values; a seed that never reached the target makes the worst 'not reached'."""
    reached = [v for v in values if v is not None]
    if not reached:
        return "not reached"
    med = statistics.median([v if v is not None else float("inf") for v in values])
    worst = "not reached" if len(reached) < len(values) else f"{max(reached):.0f}"
    return f"{med:.0f} / {worst}" if med != float("inf") else f"not reached / {worst}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("case", choices=["toy_fast", "toy", *DIGITS_TARGETS])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--budget-min", type=float, default=30.0, help="per seed")
    parser.add_argument("--max-load", type=float, default=QUIET_LOAD)
    parser.add_argument(
        "--steps-only", action="store_true", help="record steps and quality, not seconds (any load)"
    )
    parser.add_argument("--stop-at-target", action="store_true", help="end each seed's run at its target")
    args, extra = parser.parse_known_args()
    load = load_average() if args.steps_only else require_quiet(args.max_load)

    if args.case.startswith("toy"):
        keys, reached, hold = TOY_KEYS, toy_target, 3
        target = "25/25 modes and >= 90% high-quality samples, held over 3 evaluations in a row"
        config = ["--config", f"configs/{args.case}.yaml"]
    else:
        keys, hold = DIGITS_KEYS, 1
        min_precision, min_recall = DIGITS_TARGETS[args.case]
        target = f"validation precision >= {min_precision} and recall >= {min_recall} with 10/10 classes"
        config = [arg for path in DIGITS_CONFIGS[args.case] for arg in ("--config", path)]

        def reached(m: dict[str, float]) -> bool:
            return (
                m["val/precision"] >= min_precision
                and m["val/recall"] >= min_recall
                and m["val/classes_covered"] >= 10
            )

    tmp = tempfile.mkdtemp(prefix=f"ttq_{args.case}_")
    rows, clocks = [], []
    for seed in range(args.seeds):
        clock = Clock(keys, reached, hold, args.budget_min * 60, args.stop_at_target)
        digits = args.case.startswith("digits")
        run = run_seed([*config, *extra], seed, clock, tmp, data_seed=not digits, test=digits)
        clocks.append(clock)
        last = clock.points[-1] if clock.points else {}
        rows.append({"seed": seed, **run, "hit": clock.hit, "last": last})
        print(json.dumps(rows[-1]), flush=True)

    FIGURES.mkdir(parents=True, exist_ok=True)
    figure = FIGURES / f"time_to_quality_{args.case}{'_steps' if args.steps_only else ''}.png"
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x_key = "gen_steps" if args.steps_only else "seconds"
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.2))
    for seed, clock in enumerate(clocks):
        xs = [p[x_key] / (1 if args.steps_only else 60) for p in clock.points]
        for ax, key in zip(axes, keys[:2]):
            ax.plot(xs, [p[key] for p in clock.points], marker=".", label=f"seed {seed}")
    for ax, key in zip(axes, keys[:2]):
        ax.set_xlabel("generator steps" if args.steps_only else "wall time (min)")
        ax.set_title(key)
    if keys is DIGITS_KEYS:
        axes[0].axhline(min_precision, ls="--", c="gray", label="target")
        axes[1].axhline(min_recall, ls="--", c="gray")
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(figure, dpi=100)

    lines = [
        "| seed | reached at (s) | reached at (generator steps) | last evaluation | fit (s) | fit + test (s) |",
        "|---|---|---|---|---|---|",
    ]
    for row in rows:
        hit = row["hit"]
        seconds = "—" if args.steps_only else (f"{hit['seconds']:.0f}" if hit else "not reached")
        steps = f"{hit['gen_steps']}" if hit else "not reached"
        last = ", ".join(
            f"{k.split('/')[-1]} {v:.3g}" for k, v in row["last"].items() if k.startswith("val/")
        )
        fit, total = ("—", "—") if args.steps_only else (f"{row['fit_s']:.0f}", f"{row['total_s']:.0f}")
        lines.append(
            f"| {row['seed']} | {seconds} | {steps} | {last} (step {row['last'].get('gen_steps')}) | {fit} | {total} |"
        )
    steps_summary = summary([r["hit"]["gen_steps"] if r["hit"] else None for r in rows])
    result = f"Generator steps to target, median / worst over {len(rows)} seeds: **{steps_summary}**."
    if not args.steps_only:
        seconds_summary = summary([r["hit"]["seconds"] if r["hit"] else None for r in rows])
        total_summary = summary([r["total_s"] for r in rows])
        result += (
            f" Seconds to target, median / worst: **{seconds_summary}**; the whole fit and test (the clock of"
            f" `python -m src.train` less its ~10 s of imports): {total_summary}."
        )
    else:
        result += " Steps only: the machine was not required to be quiet, so no time is recorded."
    if any(r["test"] for r in rows):
        lines += [
            "",
            "Test metrics of `last.ckpt` (held-out noise and real subset), mean ± std over the seeds; each floor"
            " (real against real at the same sizes) ± its std over its 5 draws:",
            "",
        ]
        lines += ["| " + " | ".join(TEST_KEYS) + " |", "|" + "---|" * len(TEST_KEYS)]
        lines.append("| " + " | ".join(test_cell(rows, k) for k in TEST_KEYS) + " |")
        gaps = [
            abs(r["last"]["val/fid"] - r["test"]["fid"])
            for r in rows
            if "val/fid" in r["last"] and "fid" in r["test"]
        ]
        if gaps:
            lines.append(
                f"\nThe same final weights, validation against test FID (other noise, other real subset): "
                f"|val - test| = {mean_std(gaps)}."
            )
    body = (
        f"### Time to quality: {args.case}{' (steps only)' if args.steps_only else ''}\n\n"
        f"Target: {target}. {result}\n\n"
        + "\n".join(lines)
        + f"\n\nCurves: ![{args.case}](bench/figures/{figure.name})\n\n"
        f"{stamp(load)}"
    )
    print(body)
    write_section(f"ttq_{args.case}{'_steps' if args.steps_only else ''}", body)


if __name__ == "__main__":
    main()
