"""Super-resolution: time and generator steps until ``configs/superres.yaml`` beats bicubic on held-out crops.

Runs the real CLI in-process (as ``python -m src.train --config configs/superres.yaml``) for the WGAN-GP model and
for the content-only baseline of the same config (``--model.adversarial_weight=0``), and records when the
validation PSNR and SSIM first both exceed bicubic upsampling's (``val/psnr > val/psnr_bicubic`` and
``val/ssim > val/ssim_bicubic``, evaluated every 100 batches), and the last evaluation (PSNR, SSIM, sharpness).
It refuses to run when the load average shows other jobs (``--max-load``); ``--steps-only`` runs at any load and
records steps, not seconds (nothing is written to BENCHMARKS.md then).

    python -m bench.superres_time --seeds 1                 # quiet machine: writes a BENCHMARKS.md section
    python -m bench.superres_time --seeds 1 --steps-only    # any load: prints steps and quality only
"""

from __future__ import annotations

import argparse
import json
import tempfile

from bench.common import QUIET_LOAD, load_average, require_quiet, stamp, write_section
from bench.time_to_quality import Clock, run_seed, summary

KEYS = [
    "val/psnr",
    "val/psnr_bicubic",
    "val/ssim",
    "val/ssim_bicubic",
    "val/sharpness",
    "val/sharpness_bicubic",
]
CASES = {"content + WGAN-GP": [], "content only": ["--model.adversarial_weight=0"]}


def above_bicubic(m: dict[str, float]) -> bool:
    """PSNR and SSIM both above bicubic upsampling's on the validation crops."""
    return m["val/psnr"] > m["val/psnr_bicubic"] and m["val/ssim"] > m["val/ssim_bicubic"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=1)
    parser.add_argument("--budget-min", type=float, default=15.0, help="per run")
    parser.add_argument("--max-load", type=float, default=QUIET_LOAD)
    parser.add_argument("--steps-only", action="store_true", help="record steps and quality, not seconds")
    args, extra = parser.parse_known_args()
    load = load_average() if args.steps_only else require_quiet(args.max_load)
    tmp = tempfile.mkdtemp(prefix="superres_time_")
    lines = [
        "| model | seed | PSNR > bicubic at (s) | at (generator steps) | last: steps, PSNR / bicubic, SSIM / bicubic, "
        "sharpness / bicubic | fit wall time (s) |",
        "|---|---|---|---|---|---|",
    ]
    for name, flags in CASES.items():
        hits = []
        for seed in range(args.seeds):
            clock = Clock(KEYS, above_bicubic, hold=1, budget_s=args.budget_min * 60)
            fit_s = run_seed(
                ["--config", "configs/superres.yaml", *flags, *extra],
                seed,
                clock,
                tmp,
                data_seed=False,
                test=False,
            )["fit_s"]
            hit, last = clock.hit, clock.points[-1] if clock.points else {}
            hits.append(None if hit is None else hit["seconds"])
            print(
                json.dumps({"model": name, "seed": seed, "fit_s": fit_s, "hit": hit, "last": last}),
                flush=True,
            )
            seconds = "—" if args.steps_only else (f"{hit['seconds']:.0f}" if hit else "not reached")
            quality = (
                f"{last.get('gen_steps')}, {last['val/psnr']:.2f} / {last['val/psnr_bicubic']:.2f} dB, "
                f"{last['val/ssim']:.4f} / {last['val/ssim_bicubic']:.4f}, "
                f"{last['val/sharpness']:.3f} / {last['val/sharpness_bicubic']:.3f}"
                if last
                else "no evaluation"
            )
            steps = hit["gen_steps"] if hit else "not reached"
            fit = "—" if args.steps_only else f"{fit_s:.0f}"
            lines.append(f"| {name} | {seed} | {seconds} | {steps} | {quality} | {fit} |")
        if not args.steps_only:
            print(f"{name}: seconds to PSNR and SSIM above bicubic, median / worst: {summary(hits)}")
    body = "\n".join(lines)
    print(body)
    if not args.steps_only:
        write_section(
            "superres_time",
            f"### Super-resolution: time to beat bicubic (configs/superres.yaml)\n\n{body}\n\n{stamp(load)}",
        )


if __name__ == "__main__":
    main()
