"""Train the digits CNN whose features back the domain FID/KID/IS, and save its weights.

Usage::

    python -m src.tools.train_digits_classifier [--out PATH] [--epochs N] [--seed S]

Trains on the digits' split of :func:`src.data.digits.split_indices` with no val part (stratified, fixed:
1617 train / 180 held-out images; the held-out part is what ``DigitsDataModule`` calls "test") with small
random shifts, rotations and scalings, then prints train and held-out accuracy and saves the state_dict.
An entry point: it joins the data (the split) and the metrics (the network) layers.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor

from src.data.digits import load_digits_tensors, split_indices
from src.metrics.digits_classifier import DEFAULT_WEIGHTS, INPUT_SIZE, DigitsClassifier


def augment(
    x: Tensor, generator: torch.Generator, max_shift: float = 0.1, max_rot_deg: float = 10.0
) -> Tensor:
    """Random affine jitter of (B, 1, H, W) images in [-1, 1]: shift up to ``max_shift`` of the half-width."""
    b = x.shape[0]
    u = torch.rand(b, 4, generator=generator) * 2 - 1  # (B, 4) in [-1, 1]
    angle = u[:, 0] * math.radians(max_rot_deg)
    scale = 1.0 + 0.1 * u[:, 1]
    cos, sin = torch.cos(angle) * scale, torch.sin(angle) * scale
    theta = torch.stack(
        [torch.stack([cos, -sin, u[:, 2] * max_shift], 1), torch.stack([sin, cos, u[:, 3] * max_shift], 1)], 1
    )  # (B, 2, 3)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    # Shift to [0, 2] so that zero padding means background (-1).
    return F.grid_sample(x + 1, grid, align_corners=False, padding_mode="zeros") - 1


@torch.no_grad()
def accuracy(model: DigitsClassifier, x: Tensor, y: Tensor) -> float:
    """Top-1 accuracy of ``model`` on images (N, 1, H, W) and labels (N,)."""
    model.eval()
    return (model(x).argmax(dim=1) == y).float().mean().item()


def train(
    epochs: int = 20, seed: int = 0, batch_size: int = 64, lr: float = 2e-3
) -> tuple[DigitsClassifier, dict]:
    """Train a :class:`DigitsClassifier` on the digits train split.

    Args:
        epochs: Passes over the 1617 training images.
        seed: Seed of initialisation, shuffling and augmentation.
        batch_size: Minibatch size.
        lr: Peak Adam learning rate (cosine-decayed to zero).

    Returns:
        The trained model (eval mode) and ``{"train_acc", "test_acc"}``.
    """
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    images, labels = load_digits_tensors(INPUT_SIZE)  # (1797, 1, 32, 32) in [-1, 1], (1797,)
    train_idx, _, test_idx = split_indices(labels, val_fraction=0.0, seed=0)
    x_tr, x_te, y_tr, y_te = images[train_idx], images[test_idx], labels[train_idx], labels[test_idx]
    model = DigitsClassifier()
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    steps = epochs * math.ceil(len(x_tr) / batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps)
    for epoch in range(epochs):
        model.train()
        perm = torch.randperm(len(x_tr), generator=gen)
        for i in range(0, len(x_tr), batch_size):
            idx = perm[i : i + batch_size]
            loss = F.cross_entropy(model(augment(x_tr[idx], gen)), y_tr[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
        if (epoch + 1) % 5 == 0 or epoch + 1 == epochs:
            print(
                f"epoch {epoch + 1:3d}  loss {loss.item():.4f}  held-out acc {accuracy(model, x_te, y_te):.4f}"
            )
    stats = {"train_acc": accuracy(model, x_tr, y_tr), "test_acc": accuracy(model, x_te, y_te)}
    return model, stats


def main(argv: list[str] | None = None) -> None:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_WEIGHTS, help="where to save the state_dict")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    model, stats = train(epochs=args.epochs, seed=args.seed)
    print(f"train accuracy {stats['train_acc']:.4f}  held-out accuracy {stats['test_acc']:.4f} (180 images)")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), args.out)
    print(f"saved {args.out} ({args.out.stat().st_size / 1024:.0f} KiB)")


if __name__ == "__main__":
    main()
