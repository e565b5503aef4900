"""What real data scores: the same metrics, real images against real images, at the same sample sizes.

FID (and, less, precision and recall) depends on both sample counts, so a generator's FID is only comparable with
a "floor" measured at its own sizes: ``num_generated`` real images against ``num_real`` other real images. Each
draw is a random partition of all the real images the datamodule has (every split), disjoint when the pool holds
``num_real + num_generated`` images; when it does not, the generated side is drawn with replacement from the
images left over (and said so), which lowers recall and raises FID (duplicates), so such a floor is loose.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from lightning.pytorch.utilities import rank_zero_info
from torch import Tensor

from src.evaluation.feature_metrics import FeatureMetrics

FLOOR_METRICS = ("fid", "kid", "precision", "recall")


def floor_partition(pool: int, num_real: int, num_generated: int, seed: int) -> tuple[Tensor, Tensor, bool]:
    """Indices of one draw: a real reference and a stand-in for the generated images, from a pool of real images.

    Args:
        pool: How many real images there are.
        num_real: Reference images (capped to ``pool - 1``).
        num_generated: Stand-ins for the generated images.
        seed: Seed of the draw.

    Returns:
        ``(reference, generated, with_replacement)``: index tensors into the pool, and whether the generated side
        had to be drawn with replacement (the pool is smaller than ``num_real + num_generated``).
    """
    if pool < 2:
        raise ValueError(f"a real-against-real floor needs at least 2 real images, got {pool}")
    g = torch.Generator().manual_seed(seed)
    perm = torch.randperm(pool, generator=g)
    num_real = min(num_real, pool - 1)
    reference, rest = perm[:num_real], perm[num_real:]
    if len(rest) >= num_generated:
        return reference, rest[:num_generated], False
    return reference, rest[torch.randint(len(rest), (num_generated,), generator=g)], True


def real_floor(
    features: Tensor,
    num_real: int,
    num_generated: int,
    draws: int,
    seed: int,
    **metric_options: Any,
) -> dict[str, float]:
    """Mean and std over ``draws`` of FID, KID, precision and recall of real features against real features.

    Args:
        features: Features (P, D) of every real image of the pool.
        num_real: Reference images of the measurement the floor stands beside.
        num_generated: Generated images of that measurement.
        draws: How many random partitions to average (the std is over them, ``ddof=1``).
        seed: Seed of the first draw; draw ``i`` uses ``seed + i``.
        **metric_options: Which metrics and their settings (``fid``, ``kid``, ``precision_recall``,
            ``kid_subsets``, ``kid_subset_size``, ``prc_from``), as the measurement's own
            :class:`~src.evaluation.feature_metrics.FeatureMetrics`.

    Returns:
        ``{"fid_floor": ..., "fid_floor_std": ..., ...}`` for the metrics asked for.
    """
    per_metric: dict[str, list[float]] = {}
    replaced = False
    for i in range(draws):
        reference, generated, with_replacement = floor_partition(
            len(features), num_real, num_generated, seed + i
        )
        replaced |= with_replacement
        split = metric_options.get("prc_from")
        metrics = FeatureMetrics(
            features.shape[1] if split is None else split,
            0,
            inception_score=False,
            seed=seed + i,
            sync=False,
            **metric_options,
        )
        metrics.update(features[reference], None, real=True)
        metrics.update(features[generated], None, real=False)
        values = metrics.compute(len(reference), len(generated))
        for name in FLOOR_METRICS:
            if name in values:
                per_metric.setdefault(name, []).append(values[name])
    out: dict[str, float] = {}
    for name, values in per_metric.items():
        t = torch.tensor(values, dtype=torch.float64)
        out[f"{name}_floor"] = float(t.mean())
        out[f"{name}_floor_std"] = float(t.std()) if len(values) > 1 else math.nan
    if replaced:
        rank_zero_info(
            f"The real-against-real floor: {len(features)} real images cannot give {num_real} reference and "
            f"{num_generated} generated stand-ins without overlap; the generated side is drawn with replacement "
            "(a loose floor: duplicates lower recall and raise FID)"
        )
    return out
