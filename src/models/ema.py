"""The exponential moving average of the generator's weights, used for samples and evaluation."""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn


def warmed_up_decay(decay: float, num_averaged: int) -> float:
    """The decay used at the update after ``num_averaged`` earlier ones: ``min(decay, (1 + n) / (10 + n))``.

    A fixed decay of 0.999 keeps 0.999^300 ≈ 74% of the initial weights after 300 generator steps; the ramp
    (as in TensorFlow's ``ExponentialMovingAverage(num_updates=...)``) lets a short run's average follow
    the generator and reaches ``decay`` after about ``9 / (1 - decay)`` steps.
    """
    return min(decay, (1.0 + num_averaged) / (10.0 + num_averaged))


def _warmed_up_ema(decay: float):  # noqa: ANN202 - torch's multi_avg_fn signature
    @torch.no_grad()
    def update(averaged: list[Tensor], current: list[Tensor], num_averaged: Tensor) -> None:
        get_ema_multi_avg_fn(warmed_up_decay(decay, int(num_averaged)))(averaged, current, num_averaged)

    return update


def generator_ema(generator: nn.Module, decay: float | None) -> AveragedModel | None:
    """An exponential moving average of the generator's weights and buffers (``None`` without a decay).

    The decay warms up (:func:`warmed_up_decay`), so the average is useful from the first steps on.

    Args:
        generator: The network to average; a deep copy starts from its current weights.
        decay: The weight of the old average at each update, in (0, 1), e.g. 0.999.

    Raises:
        ValueError: For a decay outside (0, 1).
    """
    if decay is None:
        return None
    if not 0.0 < decay < 1.0:
        raise ValueError(
            f"model.ema_decay must be in (0, 1) or null, got ema_decay={decay}; 0.999 is typical"
        )
    ema = AveragedModel(generator, multi_avg_fn=_warmed_up_ema(decay), use_buffers=True)
    return ema.requires_grad_(False)  # never trained, so DDP does not wait for its gradients
