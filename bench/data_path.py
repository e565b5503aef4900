"""Data-path throughput: the in-memory mode against the DataLoader path, on MNIST-shaped data on disk.

Writes 60,000 + 10,000 random 28x28 digits as the real idx files (``MNIST/raw/*-ubyte``) into a temporary
folder, loads them with ``MNISTDataModule`` (torchvision's reader) and times how many training batches per
second each path delivers to the training device: the in-memory mode (one uint8 tensor on the device, sliced,
converted to [-1, 1] per batch) and the DataLoader (PIL pad, to tensor, scale; with 0..N workers, batches
copied to the device). Nothing consumes the batches, so this is the ceiling the data path puts on a step
rate. Prints a markdown snippet (machine, command, date) for BENCHMARKS.md.

    python -m bench.data_path [--batch-size 64] [--batches 400] [--reps 3] [--workers 0 1 2]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Iterator

import torch

from bench.common import median, stamp
from src.data import MNISTDataModule
from tests.fakedata import write_mnist


def _cycle(dm: MNISTDataModule) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    loader = dm.train_dataloader()  # once, as Lightning does: persistent workers carry over epochs
    while True:
        yield from loader


def batches_per_second(dm: MNISTDataModule, device: torch.device, batches: int) -> float:
    """Training batches per second delivered on ``device`` (after 5 warm-up batches)."""
    stream = _cycle(dm)
    for _ in range(5):
        next(stream)
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(batches):
        x, y = next(stream)
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return batches / (time.perf_counter() - start)


class _Device:
    """The bits of a Trainer the datamodule reads: the device and the (single) rank."""

    def __init__(self, device: torch.device) -> None:
        self.strategy = type("Strategy", (), {"root_device": device})()
        self.num_devices, self.global_rank, self.world_size = 1, 0, 1


def main() -> None:
    """Run the benchmark and print the markdown snippet."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--batches", type=int, default=400, help="timed batches per repetition")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 1, 2], help="DataLoader workers to try")
    args = parser.parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")

    with tempfile.TemporaryDirectory() as root:
        write_mnist(root, n_train=60_000, n_test=10_000)
        paths: list[tuple[str, MNISTDataModule]] = []
        start = time.perf_counter()
        memory = MNISTDataModule(
            data_dir=root, batch_size=args.batch_size, in_memory=True, num_workers=0, download=False
        )
        memory.trainer = _Device(device)  # type: ignore[assignment]
        memory.setup("fit")
        memory.train_dataloader()  # moves the uint8 tensor to the device once
        setup_s = time.perf_counter() - start
        paths.append(("in-memory (uint8 tensor on the device)", memory))
        for workers in args.workers:
            dm = MNISTDataModule(
                data_dir=root,
                batch_size=args.batch_size,
                in_memory=False,
                num_workers=workers,
                download=False,
            )
            dm.trainer = _Device(device)  # type: ignore[assignment]
            dm.setup("fit")
            paths.append((f"DataLoader, {workers} worker{'s' if workers != 1 else ''}", dm))

        rates: dict[str, list[float]] = {name: [] for name, _ in paths}
        for _ in range(args.reps):  # interleaved, so drifts in machine load hit every path alike
            for name, dm in paths:
                rates[name].append(batches_per_second(dm, device, args.batches))

    baseline = median(rates[paths[1][0]])
    lines = [
        f"**Data path, MNIST-shaped idx files (60,000 training images, 32 px, batch {args.batch_size}, "
        f"device {device.type})**",
        "",
        "| path | batches/s | images/s | vs DataLoader, " + paths[1][0].split(", ")[1] + " |",
        "|---|---:|---:|---:|",
    ]
    for name, _ in paths:
        rate = median(rates[name])
        lines.append(f"| {name} | {rate:,.0f} | {rate * args.batch_size:,.0f} | {rate / baseline:.1f}x |")
    lines += [
        "",
        f"Median of {args.reps} interleaved repetitions of {args.batches} batches. The in-memory mode's one-time "
        f"setup (read the 60,000 images into one uint8 tensor and move it to the device) took {setup_s:.1f} s.",
        "",
        stamp(),
    ]
    print("\n".join(lines))


if __name__ == "__main__":
    main()
