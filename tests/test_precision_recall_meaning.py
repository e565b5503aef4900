"""Precision and recall mean what they say, on cases with a known answer (digits-classifier features).

The reference is the definition (Kynkäänniemi et al. 2019), written out here with ``torch.cdist``, and the
direction of each case, not torch-fidelity's own function: a swap of its arguments would pass a parity test
against itself but fails these.
"""

from __future__ import annotations

import pytest
import torch
from torch import Tensor

from src.data.digits import load_digits_tensors, split_indices
from src.evaluation.feature_metrics import PrecisionRecall
from src.metrics.image_features import DigitsFeatures, to_uint8

K = 3  # the neighbourhood of the paper and of torch-fidelity


def inside_some_ball(points: Tensor, centres: Tensor) -> float:
    """Share of ``points`` within the k-NN radius (among ``centres``) of some centre."""
    radii = torch.cdist(centres, centres).kthvalue(K + 1, dim=1).values  # (C,): the centre itself is 0
    return float((torch.cdist(points, centres) <= radii).any(dim=1).float().mean())


@pytest.fixture(scope="module")
def digits() -> dict[str, Tensor]:
    """Two disjoint halves of the training digits (images in [-1, 1], labels) and the real half's features."""
    images, labels = load_digits_tensors(32)  # (N, 1, 32, 32), (N,)
    train = split_indices(labels, 0.1, 0)[0]
    train = train[torch.randperm(len(train), generator=torch.Generator().manual_seed(0))]
    real, other = train[: len(train) // 2], train[len(train) // 2 :]
    net = DigitsFeatures()
    return {
        "net": net,
        "real": net(to_uint8(images[real]))[0],  # (R, 128)
        "images": images[other],
        "labels": labels[other],
    }


def measure(digits: dict, generated: Tensor) -> tuple[float, float, float, float]:
    """(precision, recall) of the metric and of the definition, for generated images in [-1, 1]."""
    fake = digits["net"](to_uint8(generated))[0]  # (F, 128)
    metric = PrecisionRecall(neighborhood=K)
    metric.update(digits["real"], real=True)
    metric.update(fake, real=False)
    precision, recall = (float(v) for v in metric.compute())
    return precision, recall, inside_some_ball(fake, digits["real"]), inside_some_ball(digits["real"], fake)


def test_real_against_disjoint_real_scores_both_high(digits: dict) -> None:
    precision, recall, want_p, want_r = measure(digits, digits["images"])
    assert precision == pytest.approx(want_p) and recall == pytest.approx(want_r)
    assert precision > 0.8 and recall > 0.8  # measured 0.91 / 0.90


def test_three_of_ten_classes_scores_high_precision_low_recall(digits: dict) -> None:
    dropped = digits["images"][digits["labels"] < 3]  # real digits 0, 1, 2 only: a mode-dropping generator
    precision, recall, want_p, want_r = measure(digits, dropped)
    assert precision == pytest.approx(want_p) and recall == pytest.approx(want_r)
    assert precision > 0.8 and recall < 0.4  # measured 0.91 / 0.28
    assert precision - recall > 0.4


def test_heavy_noise_scores_low_precision_high_recall(digits: dict) -> None:
    images = digits["images"]
    g = torch.Generator().manual_seed(1)
    strength = torch.rand(len(images), 1, 1, 1, generator=g) * 2.0  # per image, sigma in [0, 2)
    noisy = (images + strength * torch.randn(images.shape, generator=g)).clamp(-1, 1)
    precision, recall, want_p, want_r = measure(digits, noisy)
    assert precision == pytest.approx(want_p) and recall == pytest.approx(want_r)
    assert precision < 0.45 and recall > 0.75  # measured 0.27 / 0.86: spread-out samples cover the reals
    assert recall - precision > 0.3
