"""Step time of 2-process DDP (gloo, CPU) against 1 process, same per-device batch, through the real CLI.

    OMP_NUM_THREADS=1 python bench/ddp_ratio.py [--configs toy digits] [--steps 150] [--skip 30] [--repeats 3]

Each run is ``python -m src.train --trainer.accelerator=cpu --trainer.devices=N ...`` with a ``StepTimer``
callback that records the wall time of every training batch (one critic step, plus a generator step every
``n_critic``-th) on rank zero after ``skip`` warm-up batches. The two device counts alternate ``repeats``
times and each keeps its fastest median, the run least disturbed by other work on the machine. Prints a markdown snippet with the machine, the
commands and the date. The ideal ratio is 1.0 (twice the samples per second); above 1 is the cost of the
gradient all-reduce, the per-step flags and the processes sharing the machine.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import Callback

REPO_ROOT = Path(__file__).resolve().parents[1]

WORKLOADS = {
    # the paper's toy setup: MLPs of 3 x 512, batch 256 per device
    "toy": ["--config", "configs/toy.yaml"],
    # the default digits run: DCGAN of width 32 at 32 px, batch 64 per device
    "digits": ["--config", "configs/digits.yaml"],
}


class StepTimer(Callback):
    """Writes the median and mean wall time of training batches (after ``skip``) to ``out`` as JSON."""

    def __init__(self, out: str, skip: int = 30) -> None:
        super().__init__()
        self.out, self.skip = out, skip
        self.times: list[float] = []
        self._start = 0.0

    def on_train_batch_start(self, trainer: pl.Trainer, *args: object) -> None:
        self._start = time.perf_counter()

    def on_train_batch_end(self, trainer: pl.Trainer, *args: object) -> None:
        self.times.append(time.perf_counter() - self._start)

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.is_global_zero:
            kept = self.times[self.skip :]
            Path(self.out).write_text(
                json.dumps(
                    {"median": statistics.median(kept), "mean": statistics.fmean(kept), "n": len(kept)}
                )
            )


def command(workload: str, devices: int, steps: int, skip: int, out: Path) -> list[str]:
    timer = [{"class_path": "bench.ddp_ratio.StepTimer", "init_args": {"out": str(out), "skip": skip}}]
    return [
        sys.executable,
        "-m",
        "src.train",
        *WORKLOADS[workload],
        "--trainer.accelerator=cpu",
        f"--trainer.devices={devices}",
        f"--model.max_generator_steps={steps}",
        "--trainer.limit_val_batches=0",
        "--trainer.num_sanity_val_steps=0",
        "--trainer.enable_progress_bar=false",
        f"--trainer.callbacks={json.dumps(timer)}",
        "--quality=null",
        "--best=null",
        "--samples.every_n_epochs=100000",
        f"--trainer.logger.init_args.save_dir={out.parent}",
        "--checkpoint.save_last=false",
        "--checkpoint.save_top_k=0",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", nargs="+", default=list(WORKLOADS), choices=list(WORKLOADS))
    parser.add_argument("--steps", type=int, default=150, help="generator steps per run")
    parser.add_argument("--skip", type=int, default=30, help="warm-up batches left out of the timing")
    parser.add_argument(
        "--repeats", type=int, default=3, help="runs per device count; the fastest median is kept"
    )
    args = parser.parse_args()
    env = {
        **os.environ,
        "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1"),
        "PYTHONWARNINGS": "ignore",
    }
    rows, commands = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for workload in args.configs:
            times: dict[int, dict] = {}
            for repeat in range(
                args.repeats
            ):  # alternate 1 and 2 processes; keep each one's least-disturbed run
                for devices in (1, 2):
                    out = Path(tmp) / f"{workload}-{devices}-{repeat}" / "times.json"
                    out.parent.mkdir(parents=True)
                    cmd = command(workload, devices, args.steps, args.skip, out)
                    subprocess.run(cmd, cwd=REPO_ROOT, env=env, check=True, capture_output=True)
                    result = json.loads(out.read_text())
                    if devices not in times or result["median"] < times[devices]["median"]:
                        times[devices] = result
                    if repeat == 0:
                        commands.append(shlex.join(["python", *cmd[1:]]).replace(tmp, "<tmp>"))
            ratio = times[2]["median"] / times[1]["median"]
            rows.append(
                f"| {workload} | {times[1]['median'] * 1e3:.1f} | {times[2]['median'] * 1e3:.1f} | {ratio:.2f} | "
                f"{2 / ratio:.2f}x |"
            )
    cpu = platform.processor() or platform.machine()
    print(
        f"DDP on the CPU (gloo), {datetime.date.today().isoformat()}, {os.cpu_count()} cores ({cpu}), "
        f"torch {torch.__version__}, lightning {pl.__version__}, OMP_NUM_THREADS={env['OMP_NUM_THREADS']}; "
        f"median batch time on rank zero over {args.steps} generator steps after {args.skip} warm-up batches, "
        f"fastest of {args.repeats} alternating runs.\n"
    )
    print("| workload | 1 process, ms/batch | 2 processes, ms/batch | ratio (2/1) | samples/s vs 1 process |")
    print("|---|---|---|---|---|")
    print("\n".join(rows))
    print("\nCommands (per-device batch as in the config; `bench/ddp_ratio.py` runs them):\n")
    print("\n".join(f"    {c}" for c in commands))


if __name__ == "__main__":
    main()
