"""Metrics for the paper's 2-D toy datasets: mode coverage, exact W1 and sliced Wasserstein.

Pure functions of point sets: the mode centres and widths are arguments (for the paper's mixtures,
:func:`src.data.toy.toy_mode_centers` and :func:`src.data.toy.toy_mode_std`).
"""

from __future__ import annotations

import torch
from scipy.optimize import linear_sum_assignment
from scipy.spatial.distance import cdist
from torch import Tensor

PACGAN_MIN_SHARE = 20 / 2500  # PacGAN's rule: a mode counts with 20 of 2,500 samples (0.8%)


def mode_coverage(
    samples: Tensor, centers: Tensor, std: float, min_count: float | None = None, n_std: float = 3.0
) -> dict:
    """Count the modes a generator covers and the share of high-quality samples.

    A sample is *high quality* when it lies within ``n_std * std`` (Euclidean) of its nearest
    centre; a mode is *covered* when at least ``min_count`` high-quality samples are assigned to it.

    Args:
        samples: Generated points, shape (N, 2).
        centers: Mode centres, shape (K, 2).
        std: Per-coordinate std of each mode (e.g. :func:`src.data.toy.toy_mode_std`).
        min_count: High-quality samples a mode needs to count as covered; ``None``: PacGAN's 20 of 2,500
            scaled to the sample count (``0.008 * N``, at least 1), so a perfect generator covers every mode at any N
            (a fixed 20 of 1,000 points misses one of 25 modes in about 1 run in 200).
        n_std: Radius of a mode, in multiples of ``std``.

    Returns:
        Dict with ``modes_covered`` (int), ``high_quality_fraction`` (float in [0, 1]),
        ``counts`` (list of K ints: high-quality samples per mode) and ``min_count`` (the threshold used).
    """
    if samples.ndim != 2 or centers.ndim != 2 or samples.shape[1] != centers.shape[1]:
        raise ValueError(f"expected samples (N, d) and centers (K, d), got {samples.shape}, {centers.shape}")
    samples = samples.detach().double().cpu()
    centers = centers.detach().double().cpu()
    dist = torch.cdist(samples, centers)  # (N, K)
    nearest_dist, nearest = dist.min(dim=1)  # (N,), (N,)
    close = nearest_dist <= n_std * std  # (N,)
    counts = torch.bincount(nearest[close], minlength=centers.shape[0])  # (K,)
    n = samples.shape[0]
    threshold = max(PACGAN_MIN_SHARE * n, 1.0) if min_count is None else min_count
    return {
        "modes_covered": int((counts >= threshold).sum()),
        "high_quality_fraction": float(close.sum()) / n if n else 0.0,
        "counts": counts.tolist(),
        "min_count": threshold,
    }


def _check_pair(x: Tensor, y: Tensor) -> None:
    if x.ndim != 2 or y.ndim != 2:
        raise ValueError(f"expected 2-D tensors (N, d), got shapes {tuple(x.shape)} and {tuple(y.shape)}")
    if x.shape != y.shape:
        raise ValueError(
            f"need equal-size samples with the same dimension, got {tuple(x.shape)} and {tuple(y.shape)}"
        )


def _sorted_wp_p(px: Tensor, py: Tensor, p: int) -> Tensor:
    """Per-column 1-D W_p^p between equal-size samples (N, P) and (N, P); returns (P,)."""
    px = torch.sort(px, dim=0).values  # (N, P)
    py = torch.sort(py, dim=0).values  # (N, P)
    return (px - py).abs().pow(p).mean(dim=0)  # (P,)


def _sorted_wp(x: Tensor, y: Tensor, p: int) -> Tensor:
    """1-D W_p between samples of shape (N, 1); returns a 0-d tensor."""
    return _sorted_wp_p(x, y, p)[0].pow(1.0 / p)


def exact_w1(x: Tensor, y: Tensor) -> float:
    """Exact Wasserstein-1 distance between two equal-size empirical distributions.

    With uniform weights on N points each, the optimal plan is a permutation, so W1 is the
    mean cost of the optimal assignment (Hungarian method, O(N^3): keep N in the low thousands).

    Args:
        x: Samples of shape (N, d).
        y: Samples of shape (N, d).

    Returns:
        W1 under the Euclidean ground metric.

    Raises:
        ValueError: If the inputs are not 2-D or their shapes differ.
    """
    _check_pair(x, y)
    if x.shape[1] == 1:  # 1-D: the sorted matching is optimal, no assignment problem needed
        return _sorted_wp(x.detach().double().cpu(), y.detach().double().cpu(), p=1).item()
    a = x.detach().cpu().double().numpy()
    b = y.detach().cpu().double().numpy()
    cost = cdist(a, b)  # (N, N)
    rows, cols = linear_sum_assignment(cost)
    return float(cost[rows, cols].mean()) if len(rows) else 0.0


def sliced_wasserstein(
    x: Tensor,
    y: Tensor,
    num_projections: int = 128,
    p: int = 1,
    generator: torch.Generator | None = None,
) -> float:
    """Sliced Wasserstein distance between two equal-size empirical distributions.

    Projects both sets on random unit directions and averages the 1-D W_p^p between the
    sorted projections, then takes the p-th root: ``(E_theta W_p^p(theta^T x, theta^T y))^(1/p)``.
    For d = 1 the only direction is used, so the result equals :func:`exact_w1` when p = 1.
    For p = 1 and any d it is a lower bound on W1 (projections are 1-Lipschitz).

    Args:
        x: Samples of shape (N, d).
        y: Samples of shape (N, d).
        num_projections: Number of random directions (ignored when d = 1).
        p: Order of the Wasserstein distance (>= 1).
        generator: Optional RNG for the directions, for reproducibility.

    Returns:
        The sliced W_p distance.

    Raises:
        ValueError: If the inputs are not 2-D, their shapes differ, or p < 1.
    """
    _check_pair(x, y)
    if p < 1:
        raise ValueError(f"p must be >= 1, got {p}")
    x, y = x.detach().double().cpu(), y.detach().double().cpu()
    d = x.shape[1]
    if d == 1:  # the only unit direction (up to sign, which does not change W_p)
        return _sorted_wp(x, y, p).item()
    theta = torch.randn(d, num_projections, generator=generator, dtype=torch.float64)  # (d, P)
    theta = theta / theta.norm(dim=0, keepdim=True)
    return float(_sorted_wp_p(x @ theta, y @ theta, p).mean().pow(1.0 / p))


__all__ = ["exact_w1", "mode_coverage", "sliced_wasserstein"]
