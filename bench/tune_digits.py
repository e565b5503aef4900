"""The Optuna search of the default digits run, and its best trial against the hand-tuned default over seeds.

    python -m bench.tune_digits search [--workers 2] [--n_trials 20]   # src.tune, configs/tune/digits.yaml
    python -m bench.tune_digits compare [--seeds 0 1 2] [--jobs 2]       # best.yaml vs the default

Any other flag goes to every run (``--model.max_generator_steps=40`` for a smoke test, which writes nothing
to BENCHMARKS.md).

``search`` starts ``--workers`` processes of ``python -m src.tune`` on one SQLite study (one torch thread per
trial), each with its own sampler seed, and waits for them: the study's objective is
``min(test/precision, test/recall)`` of ``last.ckpt`` (``configs/tune/digits.yaml``), 2,000 generator steps per
trial. ``compare`` trains the default run and ``best.yaml`` with each seed and writes the objective, test FID,
KID, precision and recall (mean ± std over the seeds) to the ``tune_digits`` section of BENCHMARKS.md, with the
study's plots in ``bench/figures/``. The best trial wins when its objective is better than the default's by more
than the two standard deviations added. Quality per step does
not depend on the load, so neither needs a quiet machine; the study directory is ``runs/tune/<study>``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from bench.common import ROOT, load_average, spread, stamp, train_run, write_section
from src.tuning.objective import combine, metric_terms
from src.tuning.space import load_space

SPACE = load_space(ROOT / "configs" / "tune" / "digits.yaml")
METRICS = tuple(
    dict.fromkeys([*metric_terms(SPACE.metric)[1], "test/fid", "test/kid", "test/precision", "test/recall"])
)
FIGURES = ROOT / "bench" / "figures"


def search(study: str, workers: int, n_trials: int, extra: list[str]) -> None:
    """Run ``workers`` tune workers on one study until it has ``n_trials`` trials."""
    command = [sys.executable, "-m", "src.tune", "--space", "configs/tune/digits.yaml", "--study", study]
    command += ["--n_trials", str(n_trials), "--threads", "1", *extra]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    procs = [subprocess.Popen([*command, "--seed", str(i)], cwd=ROOT, env=env) for i in range(workers)]
    codes = [p.wait() for p in procs]
    if any(codes):
        sys.exit(f"tune workers exited with {codes}")


def train(extra: list[str], seed: int, root: Path) -> dict[str, float]:
    """One ``python -m src.train`` run; its last test metrics and the study's objective."""
    values = train_run(extra, seed, root, METRICS)
    return {SPACE.metric: combine(SPACE.metric, values.get), **values}


def compare(study: str, seeds: list[int], jobs: int, extra: list[str]) -> None:
    """Train the default and the study's best.yaml with each seed; write the table to BENCHMARKS.md.

    With ``extra`` flags (a smoke run) the table is printed; nothing is written.
    """
    study_dir = ROOT / "runs" / "tune" / study
    best = study_dir / "best.yaml"
    if not best.is_file():
        sys.exit(f"{best} does not exist: run `python -m bench.tune_digits search` first")
    load = load_average()
    variants = {
        "default (`python -m src.train`)": [],
        f"best trial (`{best.relative_to(ROOT)}`)": ["--config", str(best)],
    }
    with tempfile.TemporaryDirectory() as tmp, ThreadPoolExecutor(jobs) as pool:
        futures = {
            (name, seed): pool.submit(train, [*args, *extra], seed, Path(tmp))
            for name, args in variants.items()
            for seed in seeds
        }
        results = {key: future.result() for key, future in futures.items()}
    columns = [SPACE.metric, *(m for m in METRICS if m != SPACE.metric)]
    rows = ["| run | " + " | ".join(columns) + " |", "|---|" + "---|" * len(columns)]
    for name in variants:
        cells = [spread([results[name, s][m] for s in seeds]) for m in columns]
        rows.append(f"| {name} | " + " | ".join(cells) + " |")
    default, tuned = ([results[name, s][SPACE.metric] for s in seeds] for name in variants)
    sign = 1 if SPACE.direction == "maximize" else -1
    gain = sign * (statistics.mean(tuned) - statistics.mean(default))
    wins = gain > statistics.stdev(tuned) + statistics.stdev(default)
    verdict = f"better by {gain:+.3f}: {'beyond' if wins else 'not beyond'} the seed spread"
    header = best.read_text().splitlines()[0].lstrip("# ")
    FIGURES.mkdir(exist_ok=True)
    for plot in ("history", "importances", "slice"):
        if not extra and (study_dir / "plots" / f"{plot}.png").is_file():
            shutil.copy(study_dir / "plots" / f"{plot}.png", FIGURES / f"tune_digits_{plot}.png")
    body = (
        f"### Optuna search of the default digits run\n\n{header}\n\n"
        + "\n".join(rows)
        + f"\n\nSeeds {seeds}, test side (`last.ckpt`). The best trial's objective ({SPACE.metric}) is "
        f"{verdict}. Plots: `bench/figures/tune_digits_*.png`.\n\n{stamp(load, threads=1)}"
    )
    print(body)
    if not extra:
        write_section("tune_digits", body)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("step", choices=("search", "compare"))
    parser.add_argument("--study", default="digits_bench")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--n_trials", type=int, default=20)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--jobs", type=int, default=2)
    args, extra = parser.parse_known_args()  # other flags go to every run (a smoke test: fewer steps)
    if args.step == "search":
        search(args.study, args.workers, args.n_trials, extra)
    else:
        compare(args.study, args.seeds, args.jobs, extra)


if __name__ == "__main__":
    main()
