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


# name -> flags on top of the default run. The main line changes one thing per row; "tried" rows were not kept.
VARIANTS: dict[str, list[str]] = {
    "32 px, n_critic 5, Adam 4e-4 (the old default)": [*setting(32, 5, 600), *lr(4e-4)],
    "16 px": [*setting(16, 5, 600), *lr(4e-4)],
    "tried: 16 px + linear lr decay": [*setting(16, 5, 600), *lr(4e-4), *decay(600)],
    "lr 1e-3": [*setting(16, 5, 600), *lr(1e-3)],
    "tried: lr 1e-3 + linear lr decay": [*setting(16, 5, 600), *lr(1e-3), *decay(600)],
    "n_critic 2 (1200 steps)": [*setting(16, 2, 1200), *lr(1e-3)],
    "also: n_critic 2 with lr 2e-3": [*setting(16, 2, 1200), *lr(2e-3)],
    "n_critic 1 (2000 steps)": [*setting(16, 1, 2000), *lr(1e-3)],
    "tried: n_critic 1, TTUR (critic 2e-3)": [*setting(16, 1, 2000), *lr(1e-3), critic_lr(2e-3)],
    "lr 2e-3: the default run": [*setting(16, 1, 2000), *lr(2e-3)],
}


def folder_name(name: str) -> str:
    """A variant's run folder."""
    return "".join(c if c.isalnum() else "_" for c in name)


def run(name: str, flags: list[str], root: str, collect: bool = False) -> dict:
    """Train one variant in a subprocess (or, with ``collect``, read its finished run under ``root``).

    Returns its curve, test FID and wall seconds (``None`` when collected).
    """
    folder = Path(root) / folder_name(name)
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
    if not collect:
        subprocess.run(command, cwd=ROOT, env=env, check=True, capture_output=True)
    seconds = None if collect else time.perf_counter() - start
    rows = list(csv.DictReader(open(next(folder.rglob("metrics.csv")))))
    n_critic = int(next(f for f in flags if "n_critic" in f).split("=")[1])
    # (critic updates, val FID): `step` counts critic updates, one per batch.
    curve = [(int(r["step"]) + 1, float(r["val/fid"])) for r in rows if r.get("val/fid")]
    test = next(float(r["test/fid"]) for r in rows if r.get("test/fid"))
    took = "collected" if seconds is None else f"{seconds:.0f} s"
    print(f"{name}: {took}, last val FID {curve[-1][1]:.1f}, test FID {test:.1f}", flush=True)
    return {"name": name, "seconds": seconds, "curve": curve, "test_fid": test, "n_critic": n_critic}


def plot(results: list[dict], path: Path) -> None:
    """Validation FID against critic updates (and against seconds, when the runs were timed here)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    timed = all(r["seconds"] is not None for r in results)
    fig, axes = plt.subplots(1, 2 if timed else 1, figsize=(11 if timed else 7, 4), squeeze=False)
    for r in results:
        steps, fid = zip(*r["curve"])
        style = {
            "ls": ":" if r["name"].startswith(("tried", "also")) else "-",
            "marker": ".",
            "label": r["name"],
        }
        axes[0][0].plot(steps, fid, **style)
        if timed:
            axes[0][1].plot([s / steps[-1] * r["seconds"] for s in steps], fid, **style)
    for ax, label in zip(axes[0], ["critic updates (batches)", "seconds (side by side, 1 thread each)"]):
        ax.set_xlabel(label)
        ax.set_ylabel("val/fid (digits features)")
        ax.set_yscale("log")
        ax.axhline(40, ls="--", c="gray")
    axes[0][0].legend(fontsize=6)
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--only", nargs="*", help="variant names (default: all)")
    parser.add_argument(
        "--collect", type=Path, help="read finished runs from this folder (one subfolder per variant) instead"
    )
    args = parser.parse_args()
    load = load_average()
    names = args.only or list(VARIANTS)
    with tempfile.TemporaryDirectory(prefix="digits_levers_") as tmp, ThreadPoolExecutor(args.jobs) as pool:
        root = str(args.collect or tmp)
        results = list(pool.map(lambda n: run(n, VARIANTS[n], root, args.collect is not None), names))

    FIGURES.mkdir(parents=True, exist_ok=True)
    plot(results, FIGURES / "digits_levers.png")
    lines = [
        "| variant | generator steps | last val FID | test FID (last.ckpt) | seconds (side by side) |",
        "|---|---|---|---|---|",
    ]
    for r in results:
        updates, fid = r["curve"][-1]
        steps = updates / r["n_critic"]
        seconds = "—" if r["seconds"] is None else f"{r['seconds']:.0f}"
        lines.append(f"| {r['name']} | {steps:.0f} | {fid:.1f} | {r['test_fid']:.1f} | {seconds} |")
    how = (
        f"Seconds were measured with {args.jobs} runs at once, one torch thread each: compare them with each "
        "other only."
        if args.collect is None
        else "Collected from finished runs (`--collect`); their times were not taken side by side, so none "
        "is given: quality per generator step does not depend on the load."
    )
    body = (
        "### The default digits run: one lever at a time\n\n"
        "Each main row changes one thing from the main row before it; the last row is `python -m src.train`. "
        "Rows marked *tried* were not kept; *also* rows are a second path to the same lever. FID on the digits classifier's features, 2,000 samples against "
        f"the training digits (validation) and the test digits (test). {how}\n\n"
        + "\n".join(lines)
        + "\n\nFlags of each row: `bench/digits_levers.py` (VARIANTS). Curves: "
        "![digits levers](bench/figures/digits_levers.png)\n\n" + stamp(load)
    )
    print(body)
    write_section("digits_levers", body)


if __name__ == "__main__":
    main()
