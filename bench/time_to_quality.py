"""Time to quality: wall time on this machine until a config reaches a quality target, with the curve.

* ``toy``: ``configs/toy.yaml`` until all 25 modes are covered with >= 90% high-quality samples
  (``val/modes_covered``, ``val/high_quality`` from ``ToyMetrics``);
* ``digits``: the default digits run until its domain FID (digits-classifier features) is within 2x of the FID
  between the real digits' train and test splits, with all 10 classes covered.

Runs the real CLI in-process (same code as ``python -m src.train``) with a clock callback; stops at the target
or at the time budget. Writes ``bench/figures/time_to_quality_<case>.png`` and a section of BENCHMARKS.md.

    python -m bench.time_to_quality toy [--budget-min 25] [EXTRA CLI FLAGS...]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time

import lightning.pytorch as pl
import torch

from bench.common import ROOT, stamp, write_section
from src.cli import build_cli

FIGURES = ROOT / "bench" / "figures"


def digits_reference_fid() -> float:
    """FID between the real digits' train and test splits, on the digits-classifier features."""
    from torchmetrics.image.fid import FrechetInceptionDistance

    from src.data import DigitsDataModule
    from src.metrics.digits_classifier import DigitsFeatureExtractor

    data = DigitsDataModule(image_size=32)
    metric = FrechetInceptionDistance(feature=DigitsFeatureExtractor("features"))  # uint8 images
    metric.update(data.reference_images("train"), real=True)
    metric.update(data.reference_images("test"), real=False)
    return float(metric.compute())


class Clock(pl.Callback):
    """Records (seconds since fit start, generator steps, metrics) after each evaluation; stops at the target."""

    def __init__(self, keys: list[str], reached, budget_s: float) -> None:
        self.keys, self.reached, self.budget_s = keys, reached, budget_s
        self.points: list[dict] = []
        self.hit: dict | None = None

    def on_train_start(self, trainer, pl_module) -> None:
        self.start = time.perf_counter()

    def on_validation_epoch_end(self, trainer, pl_module) -> None:
        if trainer.sanity_checking or not hasattr(self, "start"):
            return
        metrics = {k: float(trainer.callback_metrics[k]) for k in self.keys if k in trainer.callback_metrics}
        if len(metrics) < len(self.keys):
            return
        point = {
            "seconds": time.perf_counter() - self.start,
            "gen_steps": pl_module.generator_steps,
            **metrics,
        }
        if self.points and self.points[-1]["gen_steps"] == point["gen_steps"]:
            return
        self.points.append(point)
        print(json.dumps(point), flush=True)
        if self.hit is None and self.reached(metrics):
            self.hit = point
            trainer.should_stop = True
        if point["seconds"] > self.budget_s:
            trainer.should_stop = True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("case", choices=["toy", "digits"])
    parser.add_argument("--budget-min", type=float, default=25.0)
    args, extra = parser.parse_known_args()
    tmp = tempfile.mkdtemp(prefix=f"ttq_{args.case}_")
    common = [
        f"--trainer.logger.init_args.save_dir={tmp}",
        "--trainer.enable_progress_bar=false",
        "--model.max_generator_steps=null",
        "--trainer.max_epochs=100000",
    ]
    if args.case == "toy":
        keys = ["val/modes_covered", "val/high_quality", "val/w1"]
        target = "25/25 modes and >= 90% high-quality samples"
        cli_args = ["--config", "configs/toy.yaml", *common, *extra]

        def reached(m):
            return m["val/modes_covered"] >= 25 and m["val/high_quality"] >= 0.9
    else:
        reference = digits_reference_fid()
        keys = ["val/fid", "val/classes_covered"]
        target = f"domain FID <= 2 x {reference:.2f} (FID of real train vs test) with 10/10 classes"
        cli_args = ["--config", "configs/digits.yaml", *common, *extra]

        def reached(m):
            return m["val/fid"] <= 2 * reference and m["val/classes_covered"] >= 10

    clock = Clock(keys, reached, args.budget_min * 60)
    cli = build_cli(cli_args)
    cli.trainer.callbacks.append(clock)
    cli.trainer.fit(cli.model, datamodule=cli.datamodule)

    FIGURES.mkdir(parents=True, exist_ok=True)
    figure = FIGURES / f"time_to_quality_{args.case}.png"
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    minutes = [p["seconds"] / 60 for p in clock.points]
    fig, axes = plt.subplots(1, len(keys), figsize=(4.2 * len(keys), 3.2))
    for ax, key in zip(axes, keys):
        ax.plot(minutes, [p[key] for p in clock.points], marker=".")
        ax.set_xlabel("wall time (min)")
        ax.set_title(key)
    if args.case == "digits":
        axes[0].axhline(2 * reference, ls="--", c="gray", label="target")
        axes[0].set_yscale("log")
        axes[0].legend()
    fig.tight_layout()
    fig.savefig(figure, dpi=100)
    if clock.hit:
        result = (
            f"reached after **{clock.hit['seconds'] / 60:.1f} min** "
            f"({clock.hit['gen_steps']} generator steps)"
        )
    else:
        last = clock.points[-1] if clock.points else {}
        result = (
            f"**not reached** within the {args.budget_min:.0f}-minute budget "
            f"(last: {json.dumps({k: round(v, 3) for k, v in last.items()})})"
        )
    body = (
        f"### Time to quality: {args.case}\n\nTarget: {target}; {result}. Curve: "
        f"![{args.case}](bench/figures/{figure.name})\n\n"
        f"Threads: {torch.get_num_threads()}. {stamp()}"
    )
    print(body)
    write_section(f"ttq_{args.case}", body)


if __name__ == "__main__":
    main()
