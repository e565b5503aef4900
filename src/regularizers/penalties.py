"""Variants of the gradient penalty and the drift term, as critic regularizers.

Each is a :class:`~src.regularizers.CriticRegularizer`, selected with ``--regularizer=CLASS`` or added to
``trainer.callbacks``. The zero-centred penalty on interpolates of Thanh-Tung et al. (2019) needs no class of
its own: it is :class:`~src.regularizers.GradientPenalty` with ``target=0``; the L∞ gradient-norm penalty of
Jolicoeur-Martineau & Mitliagkas (2019) is ``GradientPenalty(norm=inf)`` (or ``OneSidedPenalty(norm=inf)``).
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import torch
from lightning.pytorch.utilities import rank_zero_warn
from torch import Tensor

from src.regularizers.base import Critic, CriticRegularizer
from src.regularizers.gradient_penalty import GradientPenalty


class OneSidedPenalty(GradientPenalty):
    """The Lipschitz penalty of Petzka et al. (2018): ``weight * E[max(0, ||∇D(x̂)|| - target)²]``.

    Same points as :class:`GradientPenalty` (random interpolates, one ε per sample), but only gradient norms
    above ``target`` (1) are penalized: the critic must be 1-Lipschitz, not have unit gradient everywhere.

    Args:
        weight: The penalty coefficient (10, as for the two-sided penalty).
        target: The Lipschitz bound.
        norm: The ``p`` of the gradient norm; see :class:`GradientPenalty`.
    """

    name = "lp"

    def per_sample_penalty(self, norms: Tensor) -> Tensor:
        """``max(0, ||∇|| - target)²`` per sample, (B,) -> (B,)."""
        return torch.relu(norms - self.target).pow(2)


class DRAGANPenalty(GradientPenalty):
    """DRAGAN's penalty around the real data (Kodali et al. 2017): ``weight * E[(||∇D(x̂)|| - 1)²]``.

    The points are ``x̂ = x + α·δ`` with ``δ = perturb_scale * std(x) * U[0, 1]`` drawn per element,
    ``std(x)`` the standard deviation of the whole real batch and ``α ~ U[0, 1]`` one per sample: a random
    point between each real sample and its perturbed copy, as in the authors' code. Fake samples are not used.

    It bounds the critic only near the real data, so the paper uses it with the non-saturating GAN loss
    (``configs/penalties/dragan.yaml``), not the Wasserstein loss (``constrains_wasserstein_critic`` is false).

    Args:
        weight: λ (10 in the paper).
        target: The gradient norm the penalty pulls towards (1).
        norm: The ``p`` of the gradient norm; see :class:`GradientPenalty`.
        perturb_scale: ``C`` of the perturbation ``C * std(x) * U[0, 1]`` (0.5 in the paper).
    """

    name = "dragan"
    constrains_wasserstein_critic = False

    def __init__(
        self, weight: float = 10.0, target: float = 1.0, norm: float = 2.0, perturb_scale: float = 0.5
    ) -> None:
        super().__init__(weight=weight, target=target, norm=norm)
        if not 0 < perturb_scale < float("inf"):  # NaN fails too
            raise ValueError(
                f"DRAGANPenalty perturb_scale must be a finite number > 0, got perturb_scale={perturb_scale}"
            )
        self.perturb_scale = float(perturb_scale)

    def perturb(self, real: Tensor) -> Tensor:
        """``x + perturb_scale * std(x) * U[0, 1]``, noise drawn per element (B, ...)."""
        real = real.detach()
        return real + self.perturb_scale * real.std() * torch.rand_like(real)

    def points(self, real: Tensor, fake: Tensor) -> Tensor:
        """Random points between each real sample and its perturbed copy."""
        return self.interpolate(real, self.perturb(real))

    def state_dict(self) -> dict:
        """Hyperparameters, saved in checkpoints as a record of the run."""
        return {**super().state_dict(), "perturb_scale": self.perturb_scale}


class _SquaredGradientNorm(CriticRegularizer, ABC):
    """``weight / 2 * E[||∇D(x)||²]`` at the points chosen by :meth:`points`.

    It flattens the critic only at those points, so it does not bound a Wasserstein critic between real and
    generated data (``constrains_wasserstein_critic`` is false): Mescheder et al. (2018) use it with the
    non-saturating GAN loss (``configs/penalties/r1.yaml``).
    """

    constrains_wasserstein_critic = False

    def __init__(self, weight: float = 10.0) -> None:
        super().__init__()
        if not 0 <= weight < float("inf"):  # NaN fails too
            raise ValueError(
                f"{type(self).__name__} weight must be a finite number >= 0, got weight={weight}; use e.g. 10.0"
            )
        self.weight = float(weight)

    @property
    def active(self) -> bool:
        """A zero weight switches the penalty off."""
        return self.weight > 0

    @abstractmethod
    def points(self, real: Tensor, fake: Tensor) -> Tensor:
        """Where the gradient is penalized: real data for R1, generated data for R2."""

    def penalty(self, critic: Critic, real: Tensor, fake: Tensor) -> Tensor | None:
        """Return ``weight / 2 * mean(||∇D||²)`` over the batch."""
        if not self.active:
            return None
        _, grad = self.input_gradient(critic, self.points(real, fake).detach())
        squared = grad.flatten(1).pow(2).sum(1)  # (B,); no square root, so no kink at a zero gradient
        self.stats = {"grad_norm": squared.detach().sqrt().mean()}
        return 0.5 * self.weight * squared.mean()

    def state_dict(self) -> dict:
        """Hyperparameters, saved in checkpoints as a record of the run."""
        return {"weight": self.weight}

    def load_state_dict(self, state_dict: dict) -> None:
        """Keep the configured hyperparameters, but say so when they differ from the checkpoint's."""
        if state_dict and state_dict != self.state_dict():
            rank_zero_warn(
                f"{type(self).__name__}: resuming with {self.state_dict()}; checkpoint had {state_dict}"
            )


class R1Penalty(_SquaredGradientNorm):
    """R1 of Mescheder et al. (2018): ``weight / 2 * E_real[||∇D(x)||²]``, zero-centred on the real data.

    Args:
        weight: γ (10 in the paper's experiments).
    """

    name = "r1"

    def points(self, real: Tensor, fake: Tensor) -> Tensor:
        """The real batch."""
        return real


class R2Penalty(_SquaredGradientNorm):
    """R2 of Mescheder et al. (2018): ``weight / 2 * E_fake[||∇D(x̃)||²]``, zero-centred on generated data.

    Args:
        weight: γ.
    """

    name = "r2"

    def points(self, real: Tensor, fake: Tensor) -> Tensor:
        """The generated batch (detached from the generator)."""
        return fake


class DriftPenalty(CriticRegularizer):
    """The drift term of Karras et al. (2018, ProGAN): ``epsilon * E_real[D(x)²]``.

    It keeps the critic's scores near zero so they do not drift away; it does not bound the critic's slope.
    So it is not :attr:`active` as a constraint (the run still warns when nothing else constrains the critic):
    use it next to a gradient penalty, e.g. ``--trainer.callbacks+=src.regularizers.DriftPenalty``.
    It needs no input gradients and BatchNorm does not break it (``per_sample`` is false).

    Args:
        epsilon: The coefficient (0.001 in the paper).
    """

    name = "drift"
    per_sample = False
    constrains_wasserstein_critic = False

    def __init__(self, epsilon: float = 0.001) -> None:
        super().__init__()
        if not 0 <= epsilon < float("inf"):  # NaN fails too
            raise ValueError(
                f"DriftPenalty epsilon must be a finite number >= 0, got epsilon={epsilon}; the paper uses 0.001"
            )
        self.epsilon = float(epsilon)

    @property
    def active(self) -> bool:
        """False: the drift term does not constrain the critic's Lipschitz constant."""
        return False

    def penalty(self, critic: Critic, real: Tensor, fake: Tensor) -> Tensor | None:
        """Return ``epsilon * mean(D(real)²)``."""
        if self.epsilon == 0:
            return None
        scores = critic(real.detach())  # (B,)
        if scores.dtype in (torch.float16, torch.bfloat16):
            scores = scores.float()  # squares of half-precision scores overflow
        return self.epsilon * scores.pow(2).mean()

    def state_dict(self) -> dict:
        """Hyperparameters, saved in checkpoints as a record of the run."""
        return {"epsilon": self.epsilon}


__all__ = ["DRAGANPenalty", "DriftPenalty", "OneSidedPenalty", "R1Penalty", "R2Penalty"]
