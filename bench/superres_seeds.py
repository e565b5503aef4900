"""Super-resolution over seeds: content only against content + WGAN-GP on the held-out test crops.

    python -m bench.superres_seeds [--seeds 0 1 2] [--jobs 2]

Trains ``configs/superres.yaml`` (content + WGAN-GP, adversarial weight 5e-4) and the same with
``--model.adversarial_weight=0`` (content only) with each seed, one torch thread per run, and writes the test
PSNR, SSIM and sharpness of ``last.ckpt`` (mean ± std over the seeds; bicubic's are the same crops for every
run) to the ``superres_seeds`` section of BENCHMARKS.md. Quality per step does not depend on the load: no times.
Any other flag goes to every run (``--model.max_generator_steps=20`` for a smoke test, which writes nothing).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from bench.common import load_average, spread, stamp, train_run, write_section

METRICS = (
    "test/psnr",
    "test/ssim",
    "test/sharpness",
    "test/psnr_bicubic",
    "test/ssim_bicubic",
    "test/sharpness_bicubic",
)
VARIANTS = {
    "content only (`--model.adversarial_weight=0`)": [
        "--config",
        "configs/superres.yaml",
        "--model.adversarial_weight=0",
    ],
    "content + WGAN-GP (`configs/superres.yaml`)": ["--config", "configs/superres.yaml"],
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--jobs", type=int, default=2)
    args, extra = parser.parse_known_args()
    load = load_average()
    with tempfile.TemporaryDirectory() as tmp, ThreadPoolExecutor(args.jobs) as pool:
        futures = {
            (name, seed): pool.submit(train_run, [*flags, *extra], seed, Path(tmp), METRICS)
            for name, flags in VARIANTS.items()
            for seed in args.seeds
        }
        results = {key: future.result() for key, future in futures.items()}
    first = results[next(iter(results))]
    rows = ["| model | PSNR (dB) | SSIM | sharpness (1 = HR) |", "|---|---|---|---|"]
    rows.append(
        f"| bicubic upsampling | {first['test/psnr_bicubic']:.3f} | {first['test/ssim_bicubic']:.4f} | "
        f"{first['test/sharpness_bicubic']:.3f} |"
    )
    values = {}
    for name in VARIANTS:
        values[name] = {m: [results[name, s][m] for s in args.seeds] for m in METRICS[:3]}
        rows.append(f"| {name} | " + " | ".join(spread(values[name][m]) for m in METRICS[:3]) + " |")
    content, wgan = values.values()
    gain = statistics.mean(wgan["test/sharpness"]) - statistics.mean(content["test/sharpness"])
    beyond = gain > statistics.stdev(wgan["test/sharpness"]) + statistics.stdev(content["test/sharpness"])
    cost = statistics.mean(content["test/psnr"]) - statistics.mean(wgan["test/psnr"])
    body = (
        "### Super-resolution over seeds: content only vs content + WGAN-GP (steps only)\n\n"
        + "\n".join(rows)
        + f"\n\nTest crops (20 of 64 px, x4), `last.ckpt` after the config's 600 generator steps, seeds {args.seeds}, "
        f"mean ± std; one torch thread per run, {args.jobs} at a time (no times). WGAN-GP is sharper by {gain:+.3f} "
        f"({'beyond' if beyond else 'not beyond'} the two seed spreads added) for {cost:+.3f} dB of PSNR.\n\n"
        f"{stamp(load, threads=1)}"
    )
    print(body)
    if not extra:
        write_section("superres_seeds", body)


if __name__ == "__main__":
    main()
