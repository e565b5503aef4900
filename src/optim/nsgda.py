"""Normalized SGD (Jelassi et al. 2022, "Dissecting adaptive methods in GANs"): steps of fixed length ``lr``."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, Literal

import torch
from torch import Tensor


class NormalizedSGD(torch.optim.Optimizer):
    """SGD whose step is the gradient divided by its norm, so every step has length ``lr``.

    Jelassi et al. (2022) separate Adam's update into a magnitude and a direction and find the magnitude is
    what GAN training needs: with both players on normalized SGD (nSGDA), the generator and the critic move
    at the same pace and the generator covers all modes where plain SGDA collapses.

    - ``normalize="layer"``: each parameter tensor moves by ``lr * g / ||g||`` (length ``lr`` per tensor);
    - ``normalize="global"``: all tensors of a parameter group move by ``lr * g / ||g_all||``, where
      ``||g_all||`` is the norm over all of the group's gradients (length ``lr`` for the whole group).

    Args:
        params: Parameters or parameter groups.
        lr: Length of each (per-tensor or per-group) step.
        normalize: ``"layer"`` or ``"global"``.
        eps: Norms below ``eps`` are replaced by ``eps``, so a zero gradient makes no step.
    """

    def __init__(
        self,
        params: Iterable[Tensor] | Iterable[dict[str, Any]],
        lr: float = 1e-3,
        normalize: Literal["layer", "global"] = "layer",
        eps: float = 1e-12,
    ) -> None:
        if lr < 0:
            raise ValueError(f"NormalizedSGD lr must be >= 0, got lr={lr}")
        if normalize not in ("layer", "global"):
            raise ValueError(
                f"NormalizedSGD normalize must be 'layer' or 'global', got normalize={normalize!r}"
            )
        if eps <= 0:
            raise ValueError(f"NormalizedSGD eps must be > 0, got eps={eps}")
        super().__init__(params, {"lr": lr, "normalize": normalize, "eps": eps})

    @torch.no_grad()
    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """Move every parameter against its normalized gradient; returns the closure's loss, if any."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            params = [p for p in group["params"] if p.grad is not None]
            if not params:
                continue
            if any(p.grad.is_sparse for p in params):
                raise RuntimeError("NormalizedSGD does not support sparse gradients")
            grads = [p.grad for p in params]
            norms = [torch.linalg.vector_norm(g) for g in grads]  # one 0-d tensor per parameter tensor
            if group["normalize"] == "global":
                total = torch.linalg.vector_norm(torch.stack(norms))
                norms = [total] * len(grads)
            for p, g, n in zip(params, grads, norms):
                p.sub_(g * (group["lr"] / n.clamp_min(group["eps"])))  # no host sync
        return loss
