"""Base class for critic regularizers: callbacks that add a term to the critic loss."""

from __future__ import annotations

from collections.abc import Callable

import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import Callback
from torch import Tensor

Critic = Callable[[Tensor], Tensor]


class CriticRegularizer(Callback):
    """A callback whose :meth:`penalty` the :class:`~src.models.WGANGP` adds to the critic loss.

    The module collects every ``CriticRegularizer`` in ``trainer.callbacks``, adds their terms to the critic
    loss and runs one ``manual_backward`` (DDP and AMP stay correct). Subclasses implement :meth:`penalty`,
    and may override :meth:`after_critic_step` (e.g. weight clipping). Statistics put in ``self.stats`` are
    logged under ``train/<name>_<key>``.

    Attributes:
        name: Log key of the term, e.g. ``"gp"`` logs ``train/gp``.
        per_sample: Whether the term is computed per sample, so that BatchNorm in the critic breaks it.
        constrains_wasserstein_critic: Whether it bounds the critic's slope everywhere between the data and the
            fakes (a gradient penalty on interpolates, weight clipping), which the unbounded Wasserstein loss
            needs. Penalties at the data only (R1, R2, DRAGAN) do not: with ``model.loss=wasserstein`` and only
            those, the run warns that the critic is unconstrained.
    """

    name: str = "reg"
    per_sample: bool = True
    constrains_wasserstein_critic: bool = True

    def __init__(self) -> None:
        super().__init__()
        self.stats: dict[str, Tensor] = {}
        self._scaler: torch.amp.GradScaler | None = None

    @property
    def active(self) -> bool:
        """Whether this regularizer constrains the critic (a zero weight does not)."""
        return True

    def penalty(self, critic: Critic, real: Tensor, fake: Tensor) -> Tensor | None:
        """Return the weighted term to add to the critic loss, or ``None`` for no term.

        Args:
            critic: Maps a batch of samples to scores of shape (B,).
            real: Real batch (B, ...).
            fake: Generated batch (B, ...), detached from the generator.
        """
        return None

    def after_critic_step(self, critic: torch.nn.Module) -> None:
        """Hook run right after each critic optimizer step (weight clipping uses it)."""

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        """Find the precision plugin's grad scaler so input gradients can be unscaled under fp16."""
        scaler = getattr(trainer.precision_plugin, "scaler", None)
        self._scaler = scaler if scaler is not None and scaler.is_enabled() else None

    def input_gradient(self, critic: Critic, x: Tensor) -> tuple[Tensor, Tensor]:
        """Gradient of the critic with respect to its input, kept in the graph for a double backward.

        Under fp16 the output is scaled before ``autograd.grad`` and the gradient unscaled afterwards, the
        PyTorch AMP "gradient penalty" recipe; otherwise small gradients underflow to zero.

        Args:
            critic: Maps (B, ...) to scores (B,).
            x: Points at which to take the gradient (B, ...); ``requires_grad`` is set here.

        Returns:
            ``(scores, grad)`` with scores (B,) and grad shaped like ``x``.
        """
        x = x.requires_grad_(True)
        scores = critic(x)
        out = scores.sum()
        if self._scaler is not None:
            scale = self._scaler.get_scale()
            (grad,) = torch.autograd.grad(out * scale, x, create_graph=True)
            grad = grad / scale
        else:
            (grad,) = torch.autograd.grad(out, x, create_graph=True)
        return scores, grad


def gradient_norm(grad: Tensor, p: float = 2.0) -> Tensor:
    """Per-sample norm over all non-batch dimensions: (B, ...) -> (B,).

    Taking the norm along a single dimension (a common bug) gives a different, wrong penalty for images.
    """
    flat = grad.flatten(1)
    if flat.dtype in (torch.float16, torch.bfloat16):
        flat = flat.float()  # half-precision norms overflow and lose digits
    return flat.norm(p=p, dim=1)
