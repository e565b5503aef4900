"""The adversarial losses of the critic and the generator, chosen by ``model.loss``.

Each function maps per-sample critic scores (B,) to a scalar loss that the optimizer minimizes.

- ``wasserstein`` (Arjovsky et al. 2017; Gulrajani et al. 2017): critic ``E[D(fake)] - E[D(real)]``, generator
  ``-E[D(fake)]``. It is unbounded, so the critic needs a global Lipschitz constraint: a gradient penalty,
  weight clipping or spectral normalisation.
- ``non_saturating`` (Goodfellow et al. 2014, ``D`` a logit, ``softplus(-t) = -log sigmoid(t)``): critic
  ``E[softplus(-D(real))] + E[softplus(D(fake))]``, generator ``E[softplus(-D(fake))]``. R1/R2 (Mescheder et
  al. 2018) and DRAGAN (Kodali et al. 2017) are used with it in their papers.
- ``hinge`` (SN-GAN, Miyato et al. 2018; BigGAN, Brock et al. 2019): critic
  ``E[relu(1 - D(real))] + E[relu(1 + D(fake))]``, generator ``-E[D(fake)]``.
"""

from __future__ import annotations

from typing import Literal, get_args

import torch.nn.functional as F
from torch import Tensor

Loss = Literal["wasserstein", "non_saturating", "hinge"]
LOSSES: tuple[str, ...] = get_args(Loss)


def check_loss(loss: str) -> str:
    """Return ``loss`` when it names a known loss.

    Raises:
        ValueError: For any other name.
    """
    if loss not in LOSSES:
        raise ValueError(f"model.loss must be one of {', '.join(LOSSES)}; got {loss!r}")
    return loss


def critic_loss(loss: Loss, real_scores: Tensor, fake_scores: Tensor) -> Tensor:
    """The critic's loss, to minimize.

    Args:
        loss: ``"wasserstein"``, ``"non_saturating"`` or ``"hinge"``.
        real_scores: ``D(real)``, shape (B,).
        fake_scores: ``D(fake)``, shape (B',).

    Returns:
        A scalar tensor.
    """
    if check_loss(loss) == "wasserstein":
        return fake_scores.mean() - real_scores.mean()
    if loss == "non_saturating":
        return F.softplus(-real_scores).mean() + F.softplus(fake_scores).mean()
    return F.relu(1 - real_scores).mean() + F.relu(1 + fake_scores).mean()  # hinge


def generator_loss(loss: Loss, fake_scores: Tensor) -> Tensor:
    """The generator's loss, to minimize.

    Args:
        loss: ``"wasserstein"``, ``"non_saturating"`` or ``"hinge"``.
        fake_scores: ``D(G(z))``, shape (B,).

    Returns:
        A scalar tensor.
    """
    if check_loss(loss) == "non_saturating":
        return F.softplus(-fake_scores).mean()
    return -fake_scores.mean()  # wasserstein and hinge
