"""Which choices of the default digits run matter: one lever at a time from the default, over seeds.

Each variant is the real CLI (``python -m src.train``, the default digits run) with a few flags changed, run with
``--seeds`` seeds to its own generator-step budget. The table gives the test precision, recall, FID and KID of
``last.ckpt`` (digits-classifier features) as mean ± std over the seeds, the floor (real digits against real
digits at the same sample sizes), and whether each variant differs from the default beyond the spread. Quality
per step does not depend on the load, so this bench runs on a busy machine too (``--jobs`` runs at once, one
torch thread each); it quotes no times.

    python -m bench.digits_levers [--jobs 2] [--seeds 3] [--only NAME ...] [--collect FOLDER]

Writes ``bench/figures/digits_levers.png`` (validation precision and FID against critic updates) and the
``digits_levers`` section of BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import csv
import os
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from bench.common import ROOT, load_average, stamp, write_section

FIGURES = ROOT / "bench" / "figures"


def lr(value: float) -> list[str]:
    """Both players' Adam learning rate."""
    return [
        f"--model.generator_optimizer.init_args.lr={value}",
        f"--model.critic_optimizer.init_args.lr={value}",
    ]


def decay(steps: int) -> list[str]:
    """Both learning rates decayed linearly to 0 over ``steps`` generator steps."""
    return [
        f"--model.{p}_scheduler={{class_path: torch.optim.lr_scheduler.LinearLR, init_args: "
        f"{{start_factor: 1.0, end_factor: 0.0, total_iters: {steps}}}}}"
        for p in ("generator", "critic")
    ]


def critic_lr(value: float) -> str:
    """The critic's learning rate alone."""
    return f"--model.critic_optimizer.init_args.lr={value}"


def setting(image_size: int, n_critic: int, steps: int) -> list[str]:
    """Image size, critic updates per generator update and run length."""
    return [
        f"--data.init_args.image_size={image_size}",
        f"--model.init_args.n_critic={n_critic}",
        f"--model.init_args.max_generator_steps={steps}",
    ]


# name -> flags on top of the default run (`python -m src.train`, the first row). Each row changes one thing, so
# a row that is worse than the default beyond the spread over seeds shows that the default's choice matters.
VARIANTS: dict[str, list[str]] = {
    "the default run": [],
    "unconditional (configs/digits_uncond.yaml)": ["--config", "configs/digits_uncond.yaml"],
    "paper's: 32 px, n_critic 5, Adam 4e-4, 600 steps": [*setting(32, 5, 600), *lr(4e-4)],
    "n_critic 1, 2,600 steps": [*setting(16, 1, 2600)],
    "one learning rate: Adam 1e-3": lr(1e-3),
    "Adam betas (0.5, 0.9)": [
        "--model.generator_optimizer.init_args.betas=[0.5, 0.9]",
        "--model.critic_optimizer.init_args.betas=[0.5, 0.9]",
    ],
    "latent size 128": ["--model.generator.init_args.latent_dim=128"],
    "linear lr decay to 0": decay(1500),
    "batch 128": ["--data.init_args.batch_size=128"],
    "EMA 0.999": ["--model.init_args.ema_decay=0.999"],
    "no EMA": ["--model.init_args.ema_decay=null"],
    "lambda 1": ["--regularizer.init_args.weight=1"],
    "hinge loss": ["--model.init_args.loss=hinge"],
    "non-saturating loss + R1 (configs/penalties/r1.yaml)": ["--config", "configs/penalties/r1.yaml"],
}


def folder_name(name: str) -> str:
    """A variant's run folder."""
    return "".join(c if c.isalnum() else "_" for c in name)


METRICS = ("precision", "recall", "fid", "kid")


def run(name: str, flags: list[str], seed: int, root: str, collect: bool = False) -> dict:
    """Train one variant with one seed in a subprocess (or, with ``collect``, read its finished run).

    The run lives in ``root/<variant folder>/s<seed>/``. Returns its validation curve (critic updates,
    precision, FID), its test metrics and wall seconds (``None`` when collected).
    """
    folder = Path(root) / folder_name(name) / f"s{seed}"
    command = [
        sys.executable,
        "-m",
        "src.train",
        *flags,
        f"--seed_everything={seed}",
        f"--trainer.logger.init_args.save_dir={folder}",
        "--trainer.enable_progress_bar=false",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    start = time.perf_counter()
    if not collect:
        subprocess.run(command, cwd=ROOT, env=env, check=True, capture_output=True)
    seconds = None if collect else time.perf_counter() - start
    rows = list(csv.DictReader(open(next(folder.rglob("metrics.csv")))))
    # (critic updates, val precision, val FID): `step` counts critic updates, one per batch.
    curve = [
        (int(r["step"]) + 1, float(r["val/precision"]), float(r["val/fid"])) for r in rows if r.get("val/fid")
    ]
    test = {m: next(float(r[f"test/{m}"]) for r in rows if r.get(f"test/{m}")) for m in METRICS}
    floor = {
        m + suffix: next(
            float(r[f"test/{m}_floor{suffix}"]) for r in rows if r.get(f"test/{m}_floor{suffix}")
        )
        for m in METRICS
        for suffix in ("", "_std")
    }
    took = "collected" if seconds is None else f"{seconds:.0f} s"
    print(f"{name} seed {seed}: {took}, test {test}", flush=True)
    return {"name": name, "seed": seed, "seconds": seconds, "curve": curve, "test": test, "floor": floor}


def spread(values: list[float]) -> tuple[float, float]:
    """Mean and sample std (0 for one value)."""
    return statistics.mean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def verdict(default: list[float], variant: list[float], higher_is_better: bool) -> str:
    """``better`` / ``worse`` when the means differ by more than both spreads over seeds, else ``within spread``."""
    (m0, s0), (m1, s1) = spread(default), spread(variant)
    if abs(m1 - m0) <= max(s0, s1) or len(default) < 2:
        return "within spread"
    return "better" if (m1 > m0) == higher_is_better else "worse"


def plot(results: list[dict], path: Path) -> None:
    """Validation precision and FID against critic updates, one line per variant and seed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    names = list(dict.fromkeys(r["name"] for r in results))
    colors = {n: f"C{i % 10}" for i, n in enumerate(names)}
    for r in results:
        updates, precision, fid = zip(*r["curve"])
        label = r["name"] if r["seed"] == min(x["seed"] for x in results if x["name"] == r["name"]) else None
        axes[0].plot(updates, precision, c=colors[r["name"]], marker=".", lw=1, label=label)
        axes[1].plot(updates, fid, c=colors[r["name"]], marker=".", lw=1)
    for ax, label in zip(axes, ["val/precision", "val/fid"]):
        ax.set_xlabel("critic updates (batches)")
        ax.set_ylabel(f"{label} (digits features)")
    axes[1].set_yscale("log")
    axes[0].legend(fontsize=6)
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--only", nargs="*", help="variant names (default: all)")
    parser.add_argument(
        "--collect", type=Path, help="read finished runs from this folder (<variant>/s<seed>/...) instead"
    )
    args = parser.parse_args()
    load = load_average()
    names = args.only or list(VARIANTS)
    jobs = [(n, seed) for n in names for seed in range(args.seeds)]
    with tempfile.TemporaryDirectory(prefix="digits_levers_") as tmp, ThreadPoolExecutor(args.jobs) as pool:
        root = str(args.collect or tmp)
        results = list(
            pool.map(lambda j: run(j[0], VARIANTS[j[0]], j[1], root, args.collect is not None), jobs)
        )

    FIGURES.mkdir(parents=True, exist_ok=True)
    plot(results, FIGURES / "digits_levers.png")
    by_name = {n: [r for r in results if r["name"] == n] for n in names}
    base = by_name[names[0]]
    lines = [
        "| variant | seeds | test precision | test recall | test FID | test KID | against the default |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, runs in by_name.items():
        cells = []
        for m in METRICS:
            mean, std = spread([r["test"][m] for r in runs])
            cells.append(f"{mean:.3g} ± {std:.2g}")
        against = (
            "—"
            if runs is base
            else ", ".join(
                f"{m} {verdict([r['test'][m] for r in base], [r['test'][m] for r in runs], m in ('precision', 'recall'))}"
                for m in ("precision", "recall", "fid")
            )
        )
        lines.append(f"| {name} | {len(runs)} | " + " | ".join(cells) + f" | {against} |")
    floor = results[0]["floor"]  # the same real draws for every run
    how = (
        f"Seconds were measured with {args.jobs} runs at once, one torch thread each (not quoted: quality per "
        "generator step does not depend on the load)."
        if args.collect is None
        else "Collected from finished runs (`--collect`), run two at a time with one thread each."
    )
    body = (
        "### The default digits run: one lever at a time, over seeds\n\n"
        "Each row changes one thing from the default run (the first row). Test metrics of `last.ckpt` on the "
        "digits classifier's features, 800 generated against 800 real training digits (held-out noise and real "
        "subset), mean ± std over the seeds. A variant is *better* or *worse* only when its mean differs from "
        "the default's by more than both spreads. What real digits score at these sizes (the floor, "
        f"5 disjoint draws, ± their std): precision {floor['precision']:.3f} ± {floor['precision_std']:.3f}, "
        f"recall {floor['recall']:.3f} ± {floor['recall_std']:.3f}, FID {floor['fid']:.2f} ± {floor['fid_std']:.2f}. "
        f"{how}\n\n"
        + "\n".join(lines)
        + "\n\nFlags of each row: `bench/digits_levers.py` (VARIANTS). Curves: "
        "![digits levers](bench/figures/digits_levers.png)\n\n" + stamp(load, threads=1)
    )
    print(body)
    write_section("digits_levers", body)


if __name__ == "__main__":
    main()
