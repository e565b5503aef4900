"""Shared pieces of the benchmarks: the machine description, timing, and writing into BENCHMARKS.md."""

from __future__ import annotations

import datetime as dt
import os
import platform
import re
import shlex
import statistics
import subprocess
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
BENCHMARKS = ROOT / "BENCHMARKS.md"


def machine(threads: int | None = None) -> str:
    """One line naming the machine: CPU model and cores, or the GPU; ``threads``: the runs' torch threads."""
    if torch.cuda.is_available():
        return f"{torch.cuda.get_device_name(0)}, torch {torch.__version__}"
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    n = threads or torch.get_num_threads()
    return f"{cpu}, {os.cpu_count()} cores, {n} torch thread{'s' * (n != 1)}, torch {torch.__version__}"


QUIET_LOAD = 1.5  # the 1-minute load average above which other jobs share the cores and times mean little


def load_average() -> float:
    """The 1-minute load average of this machine."""
    return os.getloadavg()[0]


def require_quiet(max_load: float = QUIET_LOAD) -> float:
    """Return the load average, or exit without recording anything when other jobs share the machine."""
    load = load_average()
    if load > max_load:
        sys.exit(
            f"load average {load:.2f} > {max_load}: other jobs share this machine, so its times would not be "
            "comparable. Stop them (or wait) and run again; nothing was recorded."
        )
    return load


def stamp(load: float | None = None, threads: int | None = None) -> str:
    """Machine, load, command and date, for the line under each table (``threads``: the runs' torch threads)."""
    module = os.path.relpath(sys.argv[0], ROOT).removesuffix(".py").replace(os.sep, ".")
    command = " ".join(["python -m", module, shlex.join(sys.argv[1:])]).rstrip()
    seen = f" Load average at start: {load:.2f}." if load is not None else ""
    return f"Machine: {machine(threads)}.{seen} Command: `{command}`. Date: {dt.date.today().isoformat()}."


def median(values: list[float]) -> float:
    """The median, robust to the odd slow repetition on a noisy machine."""
    return statistics.median(values)


def write_section(name: str, body: str) -> None:
    """Replace (or append) the section between ``<!-- bench:NAME -->`` markers in BENCHMARKS.md."""
    begin, end = f"<!-- bench:{name} -->", f"<!-- /bench:{name} -->"
    block = f"{begin}\n{body.strip()}\n{end}"
    text = BENCHMARKS.read_text() if BENCHMARKS.exists() else "# Benchmarks\n"
    pattern = re.compile(re.escape(begin) + ".*?" + re.escape(end), re.S)
    text = (
        pattern.sub(lambda _: block, text) if pattern.search(text) else text.rstrip() + "\n\n" + block + "\n"
    )
    BENCHMARKS.write_text(text)


def train_run(args: list[str], seed: int, root: Path, metrics: tuple[str, ...]) -> dict[str, float | None]:
    """One ``python -m src.train`` run with one torch thread, in its own folder under ``root``.

    Args:
        args: The train command's arguments (``--config ...``, ``--model.*``).
        seed: ``--seed_everything``.
        root: Where the run folder goes.
        metrics: The logged metrics to return.

    Returns:
        The last logged value of each metric (``None`` when it was never logged).
    """
    from src.tuning.trial import last_logged

    save_dir = root / f"{abs(hash(tuple(args))) % 10_000}_{seed}"
    args = [*args, f"--seed_everything={seed}", f"--trainer.logger.init_args.save_dir={save_dir}"]
    args += ["--trainer.logger.init_args.version=run", "--trainer.enable_progress_bar=false"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "src.train", *args], cwd=ROOT, env=env, capture_output=True, text=True
    )
    if proc.returncode:
        sys.exit(f"python -m src.train {' '.join(args)} failed:\n{proc.stderr[-3000:]}")
    (metrics_csv,) = save_dir.glob("*/run/metrics.csv")
    return {m: last_logged(metrics_csv, m) for m in metrics}


def spread(values: list[float]) -> str:
    """``mean ± std`` (sample std) with three decimals."""
    return f"{statistics.mean(values):.3f} ± {statistics.stdev(values):.3f}"
