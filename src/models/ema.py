"""The exponential moving average of the generator's weights, used for samples and evaluation.

BatchNorm: ``AveragedModel(use_buffers=True)`` averages the training generator's running statistics too, but
those are the statistics of the training weights, not of the averaged ones. Before the EMA copy samples with
running statistics, :func:`standing_statistics` recomputes them from the EMA copy itself (BigGAN's "standing
statistics"); with ``sample_bn: batch`` it normalizes with each batch's own statistics and needs none.
"""

from __future__ import annotations

from collections.abc import Callable

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


#: Noise batches (and their size) of the standing statistics: 2,048 samples, drawn from a fixed seed.
STANDING_BATCHES, STANDING_BATCH_SIZE, STANDING_SEED = 16, 128, 0


@torch.no_grad()
def standing_statistics(
    net: nn.Module,
    inputs: Callable[[int, torch.Generator], tuple[Tensor, ...]],
    num_batches: int = STANDING_BATCHES,
    batch_size: int = STANDING_BATCH_SIZE,
    seed: int = STANDING_SEED,
) -> bool:
    """Recompute the running statistics of every BatchNorm in ``net`` from ``net``'s own outputs.

    Each BatchNorm's running mean and variance are reset and become the plain average over ``num_batches``
    forward passes (``momentum=None``) of ``batch_size`` inputs drawn by ``inputs(batch_size, generator)``
    from a generator seeded with ``seed``, so every call (and every rank) gives the same statistics and the
    global RNG is untouched. Only the BatchNorms run in training mode; the rest of ``net`` keeps its mode.

    Args:
        net: The network, e.g. the EMA generator.
        inputs: Draws one batch of inputs (noise, and labels for a conditional generator).
        num_batches: Forward passes averaged.
        batch_size: Inputs per pass.
        seed: Seed of the inputs.

    Returns:
        Whether ``net`` has a BatchNorm (nothing is done otherwise).
    """
    norms = [
        m for m in net.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats
    ]
    if not norms:
        return False
    saved = [(m.training, m.momentum) for m in norms]
    g = torch.Generator().manual_seed(seed)
    try:
        for m in norms:
            m.reset_running_stats()
            m.train()
            m.momentum = None  # cumulative average over the passes
        for _ in range(num_batches):
            net(*inputs(batch_size, g))
    finally:
        for m, (training, momentum) in zip(norms, saved):
            m.train(training)
            m.momentum = momentum
    return True
