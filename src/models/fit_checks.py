"""Checks of the model's options and at fit start: configurations that would train silently wrong fail or warn here."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from lightning.pytorch.utilities import rank_zero_warn
from torch import nn

from src.nets.spectral import is_spectrally_normalized
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


def warn_unconstrained_critic(
    active: Sequence[CriticRegularizer], loss: str = "wasserstein", critic: nn.Module | None = None
) -> None:
    """Warn when nothing constrains the critic.

    A spectrally normalised critic is constrained whatever the loss. Otherwise:

    - ``wasserstein``: the loss is unbounded, so the critic needs a global constraint, an active regularizer
      with ``constrains_wasserstein_critic`` (gradient penalty, weight clipping). R1, R2 and DRAGAN bound it
      only near the data, so they alone do not count.
    - ``hinge`` and ``non_saturating``: the loss is bounded below, but with neither a regularizer nor spectral
      normalisation the critic saturates and its gradients vanish or explode (SN-GAN and BigGAN pair hinge
      with spectral normalisation; R1, R2 and DRAGAN's papers pair the non-saturating loss with the penalty).
      Any active regularizer counts.

    Args:
        active: The active regularizers.
        loss: ``model.loss``.
        critic: The critic, checked for spectral normalisation (``None``: not checked).
    """
    if critic is not None and is_spectrally_normalized(critic):
        return
    if loss != "wasserstein":
        if not active:
            rank_zero_warn(
                f"The critic is unconstrained: model.loss={loss} with no active critic regularizer and no "
                "spectral normalisation lets the critic saturate, and its gradients to the generator vanish or "
                "explode. Add `--model.critic.init_args.norm=spectral` (SN-GAN, BigGAN with the hinge loss) or "
                "a penalty, e.g. `--regularizer=src.regularizers.R1Penalty` (with the non-saturating loss)."
            )
        return
    if any(r.constrains_wasserstein_critic for r in active):
        return
    fixes = (
        "Add a global constraint, e.g. `--regularizer=src.regularizers.GradientPenalty` or "
        "`--model.critic.init_args.norm=spectral`"
    )
    if active:
        names = ", ".join(type(r).__name__ for r in active)
        rank_zero_warn(
            f"The critic is unconstrained: with model.loss=wasserstein, {names} bounds the critic only near the "
            "data, so a critic steep between the data and the fakes escapes it and the loss can grow without "
            f"bound. Use --model.loss=non_saturating, as the penalty's paper does, or: {fixes}."
        )
        return
    rank_zero_warn(
        "No active critic regularizer is configured: the critic is unconstrained and the Wasserstein "
        f"estimate is meaningless. {fixes}."
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


def integer_option(option: str, value: float, paper: int) -> int:
    """``value`` as an int when it is an integer >= 1.

    Raises:
        ValueError: Naming ``model.<option>`` and the paper's value, for anything else.
    """
    if int(value) != value or value < 1:
        raise ValueError(
            f"model.{option} must be an integer >= 1, got {option}={value}; the paper uses {paper}"
        )
    return int(value)


def check_module_options(
    generator: nn.Module, max_generator_steps: int | None, num_fixed_samples: int
) -> None:
    """Refuse a run length, a sample-grid size or a generator the module cannot work with, naming the option."""
    if max_generator_steps is not None and max_generator_steps < 1:
        raise ValueError(
            f"model.max_generator_steps must be >= 1 or null, got max_generator_steps={max_generator_steps}"
        )
    if num_fixed_samples < 1:
        raise ValueError(f"model.num_fixed_samples must be >= 1, got {num_fixed_samples}")
    if not hasattr(generator, "latent_dim"):
        raise ValueError(
            f"the generator {type(generator).__name__} must have an integer attribute `latent_dim`"
        )
