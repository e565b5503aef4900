"""Which departures from the paper's recipe make the default digits run learn fast: one curve per lever.

Each variant is the real CLI (``python -m src.train``, the default digits run) with a few flags changed, run to
its own generator-step budget. The table gives the last validation FID (digits-classifier features), the test FID
of ``last.ckpt``, and the wall time of each run measured side by side (``--jobs`` runs at once, one torch thread
each), so the times are comparable with each other but not with a quiet two-thread run. Quality per step does
not depend on the load, so this bench runs on a busy machine too.

    python -m bench.digits_levers [--jobs 2] [--only NAME ...]

Writes ``bench/figures/digits_levers.png`` (FID against generator steps and against seconds) and the
``digits_levers`` section of BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import csv
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from bench.common import ROOT, load_average, stamp, write_section

FIGURES = ROOT / "bench" / "figures"
PAPER_ADAM = ["--model.generator_optimizer.init_args.lr=1e-4", "--model.critic_optimizer.init_args.lr=1e-4"]
PAPER_ADAM += ["--model.generator_optimizer.init_args.betas=[0.0,0.9]"]
PAPER_ADAM += ["--model.critic_optimizer.init_args.betas=[0.0,0.9]"]


def lr(value: float) -> list[str]:
    """Both players' Adam learning rate."""
    return [
        f"--model.generator_optimizer.init_args.lr={value}",
        f"--model.critic_optimizer.init_args.lr={value}",
    ]


def setting(image_size: int, n_critic: int, steps: int) -> list[str]:
    """Image size, critic updates per generator update and run length."""
    return [
        f"--data.init_args.image_size={image_size}",
        f"--model.init_args.n_critic={n_critic}",
        f"--model.init_args.max_generator_steps={steps}",
    ]


# name -> flags on top of the default run; each row changes one thing from the row before it.
VARIANTS: dict[str, list[str]] = {
    "paper Adam, 32 px, n_critic 5": [*setting(32, 5, 600), *PAPER_ADAM],
    "Adam 4e-4 (0.5, 0.9), 32 px, n_critic 5": [*setting(32, 5, 600), *lr(4e-4)],
    "16 px": [*setting(16, 5, 600), *lr(4e-4)],
    "lr 1e-3": [*setting(16, 5, 600), *lr(1e-3)],
    "n_critic 2 (1200 steps)": [*setting(16, 2, 1200), *lr(1e-3)],
    "n_critic 1 (2000 steps)": [*setting(16, 1, 2000), *lr(1e-3)],
    "lr 2e-3: the default run": [*setting(16, 1, 2000), *lr(2e-3)],
}


def run(name: str, flags: list[str], root: str) -> dict:
    """Train one variant in a subprocess; return its curve, test FID and wall seconds."""
    folder = Path(root) / name.replace(" ", "_").replace(",", "").replace(":", "")
    command = [
        sys.executable,
        "-m",
        "src.train",
        *flags,
        f"--trainer.logger.init_args.save_dir={folder}",
        "--trainer.enable_progress_bar=false",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    start = time.perf_counter()
    subprocess.run(command, cwd=ROOT, env=env, check=True, capture_output=True)
    seconds = time.perf_counter() - start
    rows = list(csv.DictReader(open(next(folder.rglob("metrics.csv")))))
    n_critic = int(next(f for f in flags if "n_critic" in f).split("=")[1])
    # `step` counts critic updates (one per batch); a generator update follows every n_critic-th.
    curve = [((int(r["step"]) + 1) / n_critic, float(r["val/fid"])) for r in rows if r.get("val/fid")]
    test = next(float(r["test/fid"]) for r in rows if r.get("test/fid"))
    print(f"{name}: {seconds:.0f} s, last val FID {curve[-1][1]:.1f}, test FID {test:.1f}", flush=True)
    return {"name": name, "seconds": seconds, "curve": curve, "test_fid": test, "flags": flags}


def plot(results: list[dict], path: Path) -> None:
    """Validation FID against generator steps and against the run's share of its wall time."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
    for r in results:
        steps, fid = zip(*r["curve"])
        total = steps[-1]
        axes[0].plot(steps, fid, marker=".", label=r["name"])
        axes[1].plot([s / total * r["seconds"] for s in steps], fid, marker=".", label=r["name"])
    for ax, label in zip(axes, ["generator steps", "seconds (side by side, 1 thread each)"]):
        ax.set_xlabel(label)
        ax.set_ylabel("val/fid (digits features)")
        ax.set_yscale("log")
        ax.axhline(40, ls="--", c="gray")
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--only", nargs="*", help="variant names (default: all)")
    args = parser.parse_args()
    load = load_average()
    names = args.only or list(VARIANTS)
    with tempfile.TemporaryDirectory(prefix="digits_levers_") as root, ThreadPoolExecutor(args.jobs) as pool:
        results = list(pool.map(lambda n: run(n, VARIANTS[n], root), names))

    FIGURES.mkdir(parents=True, exist_ok=True)
    plot(results, FIGURES / "digits_levers.png")
    lines = [
        "| variant | generator steps | last val FID | test FID (last.ckpt) | seconds (side by side) |",
        "|---|---|---|---|---|",
    ]
    for r in results:
        steps, fid = r["curve"][-1]
        lines.append(f"| {r['name']} | {steps:.0f} | {fid:.1f} | {r['test_fid']:.1f} | {r['seconds']:.0f} |")
    body = (
        "### The default digits run: one lever at a time\n\n"
        "Each row changes one thing from the row before it; the last row is `python -m src.train`. "
        "FID on the digits classifier's features, 2,000 samples against the 1,455 training digits "
        "(validation) and the test digits (test). Seconds were measured with "
        f"{args.jobs} runs at once, one torch thread each: compare them with each other only.\n\n"
        + "\n".join(lines)
        + "\n\nFlags of each row: `bench/digits_levers.py` (VARIANTS). Curves: "
        "![digits levers](bench/figures/digits_levers.png)\n\n" + stamp(load)
    )
    print(body)
    write_section("digits_levers", body)


if __name__ == "__main__":
    main()
