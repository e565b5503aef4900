"""The gradient norms ``train/critic_grad_norm`` and ``train/gen_grad_norm`` log, as fp32 would read them."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn


def loss_scale(trainer: Any) -> float:
    """The fp16 loss scale the gradients carry before the optimizer step unscales them (1 without one).

    Under ``16-mixed``, ``manual_backward`` scales the loss by the precision plugin's ``GradScaler``; reading
    it is a device sync, so it is done at logging steps only.
    """
    scaler = getattr(getattr(trainer, "precision_plugin", None), "scaler", None)
    return float(scaler.get_scale()) if scaler is not None and scaler.is_enabled() else 1.0


def grad_norm(module: nn.Module, trainer: Any = None) -> Tensor:
    """Total L2 norm of a module's parameter gradients (0 when none), divided by the fp16 loss scale."""
    grads = [p.grad for p in module.parameters() if p.grad is not None]
    if not grads:
        return torch.zeros(())
    norm = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads]))
    return norm / loss_scale(trainer)
