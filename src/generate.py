"""Sample grids, interpolations and raw samples from a checkpoint.

``python -m src.generate --ckpt PATH [--n 64] [--out DIR] [--interpolate STEPS] [--save-raw npz|pt]
[--labels 3 7 ...]`` writes into ``--out`` (default ``<run dir>/generated``):

- ``samples.png``: a grid of ``n`` samples (one row per class for a conditional model; a scatter plot for 2-D
  data);
- ``interpolation.png`` with ``--interpolate STEPS``: rows of ``STEPS`` images along spherical (slerp) paths
  between random latent points (slerp, because Gaussian latents lie near a sphere: a straight line cuts through
  its low-density inside; White 2016);
- ``samples.npz`` or ``samples.pt`` with ``--save-raw``: the raw samples in [-1, 1] (and their labels), written
  batch by batch, so ``--n 200000`` holds one batch in memory, not all samples; the grid then shows the first
  :data:`GRID_MAX` of them (a separate draw with one row per class for a conditional model);
- for a language model (a :class:`~src.data.TextDataModule` run), ``samples.txt`` and ``interpolation.txt``
  instead: decoded lines (``src/generate_text.py``).

The model is rebuilt by ``WGANGP.load_from_checkpoint``: checkpoints written by ``python -m src.train`` hold
the networks' ``class_path``/``init_args`` in their hyperparameters (see ``WGANCLI.after_instantiate_classes``).
The EMA generator is used when the run kept one (``model.ema_decay``).
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
from torch import Tensor
from torchvision.utils import make_grid, save_image
from tqdm import tqdm

from src.generate_text import checkpoint_vocabulary, write_text
from src.models import WGANGP
from src.nets.labels import class_rows, grid_row_length
from src.utils.array_stream import RawSampleWriter
from src.utils.checkpoint import load_checkpoint

GRID_MAX = 1024  # samples.png shows at most this many samples (a 32 x 32 grid)


def load_model(ckpt: str | Path, device: str | torch.device = "cpu") -> WGANGP:
    """Rebuild the model of a checkpoint written by ``python -m src.train``, in eval mode on ``device``.

    Raises:
        CheckpointLoadError: When the file is truncated, corrupt or unsafe (it is loaded with ``weights_only=True``).
        ValueError: When the checkpoint does not hold the networks' configuration (it was not written through
            the CLI); then build the networks yourself and call
            ``WGANGP.load_from_checkpoint(path, generator=..., critic=...)``.
    """
    # weights_only=True (no pickled code runs); a truncated or unsafe file fails naming it
    hparams = load_checkpoint(ckpt, mmap=True).get("hyper_parameters", {})
    if not all(isinstance(hparams.get(net), dict) for net in ("generator", "critic")):
        raise ValueError(
            f"{ckpt} does not record its networks' class_path/init_args (it was not written by "
            "`python -m src.train`); build them and call WGANGP.load_from_checkpoint(path, generator=..., critic=...)"
        )
    model = WGANGP.load_from_checkpoint(ckpt, map_location=device, weights_only=True)
    return model.eval()


def slerp(a: Tensor, b: Tensor, t: Tensor) -> Tensor:
    """Spherical interpolation between rows of ``a`` and ``b`` (R, D) at fractions ``t`` (T,): (R, T, D).

    Falls back to straight lines where the two points are (anti)parallel.
    """
    a_unit, b_unit = a / a.norm(dim=1, keepdim=True), b / b.norm(dim=1, keepdim=True)
    omega = torch.acos((a_unit * b_unit).sum(1).clamp(-1.0, 1.0))[:, None, None]  # (R, 1, 1)
    t = t[None, :, None]  # (1, T, 1)
    sin = torch.sin(omega)
    spherical = (torch.sin((1 - t) * omega) * a[:, None] + torch.sin(t * omega) * b[:, None]) / sin.clamp_min(
        1e-7
    )
    linear = (1 - t) * a[:, None] + t * b[:, None]
    return torch.where(sin > 1e-6, spherical, linear)


def grid_labels(model: WGANGP, n: int, labels: list[int] | None) -> Tensor | None:
    """Labels (n,) in rows: every class (or each of ``labels``) takes ``ceil(n / count)`` samples in turn."""
    if not model.num_classes:
        if labels:
            raise ValueError("--labels needs a class-conditional model; this one is unconditional")
        return None
    classes = torch.tensor(labels if labels else range(model.num_classes), device=model.device)
    if classes.min() < 0 or classes.max() >= model.num_classes:
        raise ValueError(f"--labels must be in [0, {model.num_classes}), got {labels}")
    return classes[class_rows(n, len(classes), device=model.device)]


@torch.no_grad()
def sample_batches(
    model: WGANGP, n: int, labels: Tensor | None = None, batch_size: int = 256, progress: bool = True
) -> Iterator[Tensor]:
    """``n`` samples in batches (b, *data_shape) of at most ``batch_size``, on the CPU, with a progress bar."""
    for start in tqdm(range(0, n, batch_size), desc="sampling", unit="batch", disable=not progress):
        stop = min(start + batch_size, n)
        chunk_labels = None if labels is None else labels[start:stop]
        yield model.sample(stop - start, labels=chunk_labels).float().cpu()


def generate(
    model: WGANGP, n: int, labels: Tensor | None = None, batch_size: int = 256, progress: bool = True
) -> Tensor:
    """``n`` samples (n, *data_shape) on the CPU, drawn in batches of ``batch_size`` (all held in memory)."""
    return torch.cat(list(sample_batches(model, n, labels, batch_size, progress)))


def save_samples(
    model: WGANGP, n: int, labels: Tensor | None, batch_size: int, raw: Path, keep: int
) -> Tensor:
    """Draw ``n`` samples batch by batch into ``raw`` (``.npz``/``.pt``), keeping the first ``keep`` in memory.

    Only one batch and the ``keep`` kept samples are in memory at a time (:class:`RawSampleWriter`).

    Returns:
        The first ``keep`` samples (keep, *data_shape).
    """
    kept: list[Tensor] = []
    held = 0
    writer: RawSampleWriter | None = None
    try:
        for batch in sample_batches(model, n, labels, batch_size):
            if writer is None:
                writer = RawSampleWriter(raw, n, tuple(batch.shape[1:]), labels)
            writer.write(batch)
            if held < keep:
                kept.append(batch[: keep - held].clone())
                held += len(kept[-1])
    except BaseException:
        if writer is not None:
            writer.abort()
        raise
    assert writer is not None  # n >= 1
    writer.close()
    return torch.cat(kept) if kept else torch.empty(0)


def save_grid(samples: Tensor, path: Path, nrow: int) -> None:
    """Images (N, C, H, W) in [-1, 1] as one PNG grid; 2-D points (N, 2) as a scatter plot."""
    if samples.dim() == 4:
        save_image(make_grid(samples, nrow=nrow, normalize=True, value_range=(-1, 1)), path)
        return
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 5))
    flat = samples.reshape(len(samples), -1)
    ax.scatter(flat[:, 0], flat[:, 1], s=2)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv: list[str] | None = None) -> dict[str, Path]:
    """Command-line entry point; returns the paths written."""
    parser = argparse.ArgumentParser(
        description="Sample grids, interpolations and raw samples from a checkpoint."
    )
    parser.add_argument("--ckpt", type=Path, required=True, help="checkpoint written by python -m src.train")
    parser.add_argument("--n", type=int, default=64, help="number of samples")
    parser.add_argument("--out", type=Path, default=None, help="output folder (default: <run dir>/generated)")
    parser.add_argument(
        "--interpolate", type=int, default=0, metavar="STEPS", help="slerp strip with STEPS points"
    )
    parser.add_argument("--rows", type=int, default=8, help="rows of the interpolation strip")
    parser.add_argument("--save-raw", choices=("npz", "pt"), default=None, help="also save the raw samples")
    parser.add_argument(
        "--labels", type=int, nargs="+", default=None, help="classes to draw (conditional models)"
    )
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args(argv)
    if args.n < 1:
        parser.error(f"--n must be >= 1, got {args.n}")
    if args.batch_size < 1:
        parser.error(f"--batch-size must be >= 1 (samples per forward pass), got {args.batch_size}")
    if args.rows < 1:
        parser.error(f"--rows must be >= 1, got {args.rows}")
    if args.interpolate == 1 or args.interpolate < 0:
        parser.error(f"--interpolate needs at least 2 steps, got {args.interpolate}")

    torch.manual_seed(args.seed)
    model = load_model(args.ckpt, args.device)
    run_dir = args.ckpt.parent.parent if args.ckpt.parent.name == "checkpoints" else args.ckpt.parent
    out = args.out or run_dir / "generated"
    out.mkdir(parents=True, exist_ok=True)
    which = "EMA generator" if model.generator_ema is not None else "generator"
    print(f"{args.ckpt}: generator step {model.generator_steps}, sampling from the {which}")
    vocabulary = checkpoint_vocabulary(args.ckpt)
    if vocabulary is not None:  # a language model: decoded lines, not images (src/generate_text.py)
        written = write_text(
            model, vocabulary, out, args.n, args.batch_size, args.interpolate, args.rows, slerp
        )
        for name, path in written.items():
            print(f"wrote {name}: {path}")
        return written

    labels = grid_labels(model, args.n, args.labels)
    count = 1 if labels is None else len(args.labels or range(model.num_classes))
    written = {"samples": out / "samples.png"}
    if args.save_raw:
        written["raw"] = out / f"samples.{args.save_raw}"
    grid_n = min(args.n, GRID_MAX)
    if args.n <= GRID_MAX:  # the grid shows every sample
        raw = written.get("raw")
        grid = save_samples(model, args.n, labels, args.batch_size, raw, args.n) if raw else None
        grid = generate(model, args.n, labels, args.batch_size) if grid is None else grid
    else:  # streamed to disk; the grid shows GRID_MAX samples, laid out as for --n GRID_MAX
        if args.save_raw:
            save_samples(model, args.n, labels, args.batch_size, written["raw"], keep=0)
        print(f"samples.png shows {GRID_MAX} samples ({args.n} asked for; --save-raw keeps them all)")
        grid = generate(model, grid_n, grid_labels(model, grid_n, args.labels), args.batch_size, False)
    nrow = grid_row_length(grid_n, count) if labels is not None else int(np.ceil(np.sqrt(grid_n)))
    save_grid(grid, written["samples"], nrow)

    if args.interpolate:
        rows = args.rows if labels is None else count
        a, b = model.noise(rows), model.noise(rows)
        path = slerp(a, b, torch.linspace(0, 1, args.interpolate, device=model.device))  # (R, T, D)
        row_labels = (
            None
            if labels is None
            else grid_labels(model, rows, args.labels).repeat_interleave(args.interpolate)
        )
        strip = model.sample(noise=path.reshape(-1, model.latent_dim), labels=row_labels).float().cpu()
        written["interpolation"] = out / "interpolation.png"
        save_grid(strip, written["interpolation"], args.interpolate)

    for name, path in written.items():
        print(f"wrote {name}: {path}")
    return written


if __name__ == "__main__":
    main()
