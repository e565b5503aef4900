"""Stop a diverged run early and never write a checkpoint with NaN or Inf weights."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

RESUME_HINT = (
    "Lower the learning rates (--model.critic_optimizer.init_args.lr, --model.generator_optimizer.init_args.lr), "
    "check the data and the networks, then resume from the last good checkpoint with --ckpt_path."
)


class TrainingDivergedError(FloatingPointError):
    """A loss or a parameter became NaN or Inf."""


def check_finite(
    losses: dict[str, Tensor], strategy: Any, where: str, last_checkpoint: str | None = None
) -> None:
    """Raise :class:`TrainingDivergedError` when any loss is NaN or Inf on any rank.

    On an accelerator this costs one device sync (and under DDP one all-reduce of a flag, so that every rank
    stops at the same step and none waits forever in the next collective); callers choose how often to run it.

    Args:
        losses: Scalar losses by name, e.g. ``{"critic_loss": loss}``.
        strategy: The trainer's strategy (``None``: this process only).
        where: The step, for the message, e.g. ``"generator step 12 (critic step 60)"``.
        last_checkpoint: Path of the last good checkpoint, for the message.
    """
    flags = torch.stack([torch.isfinite(v.detach()).all() for v in losses.values()])  # (L,)
    finite = bool(flags.all())
    if strategy is not None and getattr(strategy, "world_size", 1) > 1:
        finite = strategy.reduce_boolean_decision(finite, all=True)
    if finite:
        return
    bad = [
        f"{name} = {value.detach().float().item()}" for name, value in losses.items() if not flags_ok(value)
    ]
    found = ", ".join(bad) if bad else "a loss on another rank is not finite"
    kept = f" The last good checkpoint is {last_checkpoint}." if last_checkpoint else ""
    raise TrainingDivergedError(
        f"Training diverged at {where}: {found}. The optimizer step was not taken and no checkpoint was "
        f"written with these values.{kept} {RESUME_HINT}"
    )


def check_step_losses(trainer: Any, losses: dict[str, Tensor], where: str) -> None:
    """:func:`check_finite` for a training step, with the strategy and last checkpoint taken from ``trainer``.

    Under fp16 the scaled penalty gradient may overflow to inf; the GradScaler then skips the step and lowers
    its scale, so with an enabled scaler ``critic_loss`` is not checked (only the critic's scores are).
    """
    scaler = getattr(trainer.precision_plugin, "scaler", None)
    if scaler is not None and scaler.is_enabled() and len(losses) > 1:
        losses = {name: value for name, value in losses.items() if name != "critic_loss"}
    checkpoint = trainer.checkpoint_callback
    last = getattr(checkpoint, "last_model_path", "") or getattr(checkpoint, "best_model_path", "")
    check_finite(losses, trainer.strategy, where, last or None)


def flags_ok(value: Tensor) -> bool:
    """Whether every element of ``value`` is finite."""
    return bool(torch.isfinite(value.detach()).all())


def assert_finite_parameters(module: nn.Module, where: str) -> None:
    """Raise :class:`TrainingDivergedError` (and so refuse to save) when a parameter holds NaN or Inf.

    One fused check and a single device sync; meant for ``on_save_checkpoint``.
    """
    named = [(name, p) for name, p in module.named_parameters()]
    if not named:
        return
    flags = torch.stack([torch.isfinite(p.detach()).all() for _, p in named])  # (P,)
    if bool(flags.all()):
        return
    bad = [name for (name, _), ok in zip(named, flags.tolist()) if not ok]
    listed = ", ".join(bad[:5]) + (f" and {len(bad) - 5} more" if len(bad) > 5 else "")
    raise TrainingDivergedError(
        f"Refusing to write a checkpoint at {where}: parameters {listed} contain NaN or Inf. {RESUME_HINT}"
    )
