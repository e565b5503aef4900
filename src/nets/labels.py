"""Class labels for conditional GANs: label checks, batches of ``(x, y)`` and the sample-grid layout."""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor, nn


def num_classes_of(generator: nn.Module, critic: nn.Module) -> int:
    """The number of classes both networks are conditioned on (0 for unconditional networks).

    Raises:
        ValueError: When one network is conditional and the other is not, or they disagree.
    """
    g, c = int(getattr(generator, "num_classes", 0)), int(getattr(critic, "num_classes", 0))
    if g != c:
        raise ValueError(
            f"model.generator has num_classes={g} but model.critic has num_classes={c}: a class-conditional "
            "WGAN needs both conditioned on the same classes; set init_args.num_classes on both (e.g. "
            "src.nets.ConditionalDCGANGenerator with src.nets.ProjectionDCGANCritic, the default digits run)"
        )
    return g


def grid_row_length(n: int, num_classes: int) -> int:
    """Samples per row of a grid of ``n`` samples with one row per class: ``ceil(n / num_classes)``."""
    return max(1, math.ceil(n / num_classes))


def class_rows(n: int, num_classes: int, device: torch.device | str | None = None) -> Tensor:
    """Labels (n,) for a sample grid with one row per class: ``ceil(n / C)`` of class 0, then of class 1, ...

    With ``n = 100`` and 10 classes, row ``k`` of a 10-wide grid holds class ``k``. When ``n`` is not a
    multiple of ``C`` the last row is shorter.
    """
    return torch.arange(n, device=device) // grid_row_length(n, num_classes)


def as_labels(
    labels: Tensor | int | list[int] | None, n: int, num_classes: int, device: torch.device
) -> Tensor:
    """Labels (n,) on ``device``: random uniform for ``None``, all ``labels`` for an int, else as given.

    Raises:
        ValueError: For a label outside ``[0, num_classes)`` or a count that is not ``n``.
    """
    if labels is None:
        return torch.randint(num_classes, (n,), device=device)
    if isinstance(labels, int):
        labels = torch.full((n,), labels, dtype=torch.long, device=device)
    labels = torch.as_tensor(labels, device=device).long().reshape(-1)
    if labels.numel() != n:
        raise ValueError(f"got {labels.numel()} labels for {n} samples")
    if labels.numel() and (labels.min() < 0 or labels.max() >= num_classes):
        raise ValueError(f"labels must be in [0, {num_classes}), got {sorted(set(labels.tolist()))}")
    return labels


def split_batch(batch: Any, num_classes: int) -> tuple[Tensor, Tensor | None]:
    """The samples (B, ...) of a batch (a tensor or ``(x, y)``) and, when ``num_classes > 0``, its labels (B,).

    Raises:
        ValueError: When the networks are conditional but the batch carries no labels.
    """
    real = batch[0] if isinstance(batch, (tuple, list)) else batch
    if not num_classes:
        return real, None
    if not isinstance(batch, (tuple, list)) or len(batch) < 2:
        raise ValueError(
            f"the networks are conditioned on {num_classes} classes but the data's batches carry no labels; "
            "use a labelled datamodule (digits, MNIST, CIFAR-10) or unconditional networks"
        )
    return real, batch[1]
