"""The gradient penalty of WGAN-GP (Gulrajani et al. 2017, eq. 3)."""

from __future__ import annotations

import torch
from lightning.pytorch.utilities import rank_zero_warn
from torch import Tensor

from src.regularizers.base import Critic, CriticRegularizer, gradient_norm


class GradientPenalty(CriticRegularizer):
    """``weight * E[(||∇D(x̂)|| - target)²]`` at random interpolates ``x̂ = εx + (1-ε)x̃``.

    One ε ~ U[0, 1] per sample; the norm is taken per sample over all non-batch dimensions.
    ``target=0`` gives the zero-centred penalty of Thanh-Tung et al. (2019).

    Args:
        weight: λ, the penalty coefficient (10 in the paper, 0.1 for its toy data).
        target: The gradient norm the penalty pulls towards.
        norm: The ``p`` of the per-sample gradient norm ``||∇D(x̂)||_p`` (2 in the paper). Jolicoeur-Martineau &
            Mitliagkas (2019) show that penalizing the dual norm ``||∇D||_q`` (``1/p + 1/q = 1``) maximizes an
            ``L^p`` margin: ``norm=inf`` is their "L∞ gradient-norm penalty" (the largest absolute gradient
            entry, ``max_i |∂D/∂x_i|``), which corresponds to an ``L^1`` margin; ``norm=1`` (the sum of absolute
            entries) corresponds to an ``L^∞`` margin; ``norm=2`` is self-dual. YAML writes infinity as ``.inf``.
    """

    name = "gp"

    def __init__(self, weight: float = 10.0, target: float = 1.0, norm: float = 2.0) -> None:
        super().__init__()
        # written so that NaN fails too: a NaN weight would pass `weight < 0` and switch the penalty off
        if not 0 <= weight < float("inf"):
            raise ValueError(
                f"GradientPenalty weight must be a finite number >= 0, got weight={weight}; use e.g. weight=10.0"
            )
        if not 0 <= target < float("inf"):
            raise ValueError(f"GradientPenalty target must be a finite number >= 0, got target={target}")
        if not norm >= 1:
            raise ValueError(f"GradientPenalty norm must be >= 1 (1, 2 or inf), got norm={norm}")
        self.weight = float(weight)
        self.target = float(target)
        self.norm = float(norm)

    @property
    def active(self) -> bool:
        """A zero weight switches the penalty off."""
        return self.weight > 0

    def interpolate(self, real: Tensor, fake: Tensor) -> Tensor:
        """Random points on straight lines between real and fake samples, one ε per sample."""
        eps = torch.rand(real.shape[0], *([1] * (real.dim() - 1)), device=real.device, dtype=real.dtype)
        return eps * real.detach() + (1 - eps) * fake.detach()

    def points(self, real: Tensor, fake: Tensor) -> Tensor:
        """Where the gradient is penalized: the interpolates (subclasses choose other points, e.g. DRAGAN)."""
        return self.interpolate(real, fake)

    def per_sample_penalty(self, norms: Tensor) -> Tensor:
        """Penalty of each sample's gradient norm (B,) -> (B,): ``(||∇|| - target)²`` (one-sided: overridden)."""
        return (norms - self.target).pow(2)

    def penalty(self, critic: Critic, real: Tensor, fake: Tensor) -> Tensor | None:
        """Return the weighted penalty; see the class docstring."""
        if not self.active:
            return None
        _, grad = self.input_gradient(critic, self.points(real, fake))
        norms = gradient_norm(grad, self.norm)  # (B,)
        self.stats = {
            "grad_norm": norms.detach().mean(),
            "frac_norm_gt_1": (norms.detach() > 1).float().mean(),
        }
        return self.weight * self.per_sample_penalty(norms).mean()

    def state_dict(self) -> dict:
        """Hyperparameters, saved in checkpoints as a record of the run."""
        return {"weight": self.weight, "target": self.target, "norm": self.norm}

    def load_state_dict(self, state_dict: dict) -> None:
        """Keep the configured hyperparameters, but say so when they differ from the checkpoint's."""
        if state_dict and state_dict != self.state_dict():
            rank_zero_warn(
                f"{type(self).__name__}: resuming with {self.state_dict()}; checkpoint had {state_dict}"
            )
