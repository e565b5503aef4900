"""Competitive gradient descent (Schäfer & Anandkumar 2019) as a ``torch.optim.Optimizer`` for both players.

The update is computed by the ``cgds`` package (``pip install -e ".[cgd]"``), written by the authors' group:
``BCGD`` is CGD, ``ACGD`` the adaptive variant of "Implicit competitive regularization in GANs" (Schäfer et
al. 2020). This class adapts it to torch's optimizer interface, so that Lightning checkpoints its state,
learning-rate schedulers act on its two parameter groups, and ``lr`` is logged like any optimizer's.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import Tensor


def _cgds() -> Any:
    try:
        import CGDs
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError(
            "src.optim.CGD needs the `cgds` package: pip install -e '.[cgd]' (or pip install cgds)"
        ) from err
    return CGDs


class CGD(torch.optim.Optimizer):
    """Simultaneous competitive updates for the zero-sum game ``min_x max_y f(x, y)``.

    Each step solves, by conjugate gradient with Hessian-vector products (no Hessian is formed),
    ``(I + η² D²xy f D²yx f) Δx = -η (∇x f + η D²xy f ∇y f)`` for the minimizing player and the mirrored
    system for the maximizing one: each player answers the other's *anticipated* move, which damps the
    rotations that make simultaneous gradient descent-ascent diverge. In a WGAN ``x`` is the generator,
    ``y`` the critic and ``f = E[D(real)] - E[D(G(z))]`` (minus any critic penalty).

    :meth:`step` needs a closure returning ``f`` with its graph (the module passes one). Group 0 holds the
    minimizing player's parameters, group 1 the maximizing player's; their ``lr`` may be scheduled.

    Args:
        min_params: Parameters of the minimizing player (the generator).
        max_params: Parameters of the maximizing player (the critic).
        lr_min: Learning rate of the minimizing player.
        lr_max: Learning rate of the maximizing player (default: ``lr_min``).
        adaptive: Use ACGD (RMSprop-like per-coordinate learning rates, the ICR paper's choice) instead of
            plain CGD (``BCGD``).
        beta: ACGD's decay of the squared-gradient average.
        eps: ACGD's term added to the root-mean-square gradient.
        tol: Relative tolerance of the conjugate-gradient solve (on the squared residual).
        atol: Absolute tolerance of the conjugate-gradient solve.
    """

    def __init__(
        self,
        min_params: Iterable[Tensor],
        max_params: Iterable[Tensor],
        lr_min: float = 1e-4,
        lr_max: float | None = None,
        adaptive: bool = False,
        beta: float = 0.99,
        eps: float = 1e-8,
        tol: float = 1e-10,
        atol: float = 1e-16,
    ) -> None:
        lr_max = lr_min if lr_max is None else lr_max
        for name, value in (("lr_min", lr_min), ("lr_max", lr_max)):
            if value <= 0:
                raise ValueError(f"CGD {name} must be > 0, got {name}={value}")
        groups = [{"params": list(min_params), "lr": lr_min}, {"params": list(max_params), "lr": lr_max}]
        super().__init__(groups, {"lr": lr_min})
        cgds = _cgds()
        x, y = self.param_groups[0]["params"], self.param_groups[1]["params"]
        if adaptive:
            self.solver = cgds.ACGD(
                max_params=y,
                min_params=x,
                lr_max=lr_max,
                lr_min=lr_min,
                eps=eps,
                beta=beta,
                tol=tol,
                atol=atol,
            )
        else:
            self.solver = cgds.BCGD(
                max_params=y,
                min_params=x,
                lr_max=lr_max,
                lr_min=lr_min,
                tol=tol,
                atol=atol,
                collect_info=False,
            )
        self.adaptive = adaptive

    def step(self, closure: Callable[[], Any] | None = None) -> Any:  # type: ignore[override]
        """Update both players simultaneously from ``f = closure()``; returns ``f``."""
        if closure is None:
            raise ValueError(
                "CGD.step needs a closure returning the game's objective f (with its graph); under "
                "mixed precision Lightning calls step() without one: use --trainer.precision=32 with CGD"
            )
        with torch.enable_grad():
            loss = closure()
        if not isinstance(loss, Tensor) or not loss.requires_grad:
            raise ValueError("CGD.step: the closure must return the objective f as a tensor with its graph")
        self.solver.state["lr_min"] = self.param_groups[0]["lr"]
        self.solver.state["lr_max"] = self.param_groups[1]["lr"]
        self.solver.step(loss)
        for p in self.param_groups[0]["params"] + self.param_groups[1]["params"]:
            p.grad = None  # the solver leaves Hessian-vector products in .grad
        return loss

    def state_dict(self) -> dict[str, Any]:
        """Torch's optimizer state plus the solver's (step count, CG warm starts, ACGD's averages)."""
        return {**super().state_dict(), "cgds": dict(self.solver.state)}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore both; the solver's tensors move to the parameters' device."""
        state_dict = dict(state_dict)
        solver_state = state_dict.pop("cgds", {})
        super().load_state_dict(state_dict)
        device = self.param_groups[0]["params"][0].device
        self.solver.state.update(
            {k: v.to(device) if isinstance(v, Tensor) else v for k, v in solver_state.items()}
        )
