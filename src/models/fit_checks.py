"""Checks run when a fit starts: configurations that would train silently wrong fail or warn here."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from lightning.pytorch.utilities import rank_zero_warn
from torch import nn

from src.regularizers import CriticRegularizer


def check_conditional_data(num_classes: int, datamodule: Any) -> None:
    """Fail early when conditional networks meet data with a different number of classes.

    Args:
        num_classes: Classes the networks are conditioned on (0: unconditional, nothing to check).
        datamodule: The trainer's datamodule; its ``num_classes`` (if any) is compared.

    Raises:
        ValueError: When the data carry no labels or a different number of classes.
    """
    data_classes = getattr(datamodule, "num_classes", None)
    if not num_classes or data_classes is None or int(data_classes) == num_classes:
        return
    if int(data_classes) == 0:
        raise ValueError(
            f"the networks are conditioned on num_classes={num_classes} but the data carry no labels "
            f"(num_classes=0); use a labelled datamodule (digits, MNIST, CIFAR-10) or unconditional networks"
        )
    raise ValueError(
        f"the networks are conditioned on num_classes={num_classes} but the data has "
        f"num_classes={data_classes}; set model.generator.init_args.num_classes and "
        f"model.critic.init_args.num_classes to {data_classes}"
    )


def warn_unconstrained_critic(active: Sequence[CriticRegularizer]) -> None:
    """Warn when no active regularizer constrains the critic of a WGAN."""
    if not active:
        rank_zero_warn(
            "No active critic regularizer is configured: the critic is unconstrained and the Wasserstein "
            "estimate is meaningless. Add one, e.g. `--regularizer=src.regularizers.GradientPenalty`."
        )


def warn_batchnorm_in_critic(critic: nn.Module, active: Sequence[CriticRegularizer]) -> None:
    """Warn when the critic has BatchNorm while a per-sample penalty is active.

    BatchNorm couples the samples of a batch, so the per-sample gradient the penalty constrains is not the
    critic's (Gulrajani et al. 2017, section 4).
    """
    if not any(r.per_sample for r in active):
        return
    batchnorms = [
        name for name, m in critic.named_modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)
    ]
    if batchnorms:
        rank_zero_warn(
            f"The critic contains BatchNorm ({', '.join(batchnorms)}) while a per-sample penalty "
            f"({', '.join(type(r).__name__ for r in active)}) is active. BatchNorm couples the samples "
            "of a batch and invalidates the penalty (Gulrajani et al. 2017, section 4); use no "
            "normalization or LayerNorm in the critic (e.g. --model.critic.init_args.norm=layer)."
        )


def warn_compiled_penalties(compiled: bool, active: Sequence[CriticRegularizer]) -> None:
    """Warn that the penalties run the critic eagerly when the networks are compiled."""
    if compiled and active:
        rank_zero_warn(
            "model.compile=true: the generator and the critic are compiled, but the critic runs eagerly "
            f"inside the penalties ({', '.join(type(r).__name__ for r in active)}): torch.compile cannot "
            "take their double backward (autograd.grad with create_graph=True)."
        )
