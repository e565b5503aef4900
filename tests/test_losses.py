"""The loss option (model.loss): each loss against its formula, the unconstrained-critic warning, and a
25-Gaussians run with the non-saturating loss and R1 that learns."""

from __future__ import annotations

import math
import warnings
from functools import partial
from pathlib import Path

import lightning.pytorch as pl
import pytest
import torch

from src.data.toy import toy_mode_centers, toy_mode_std
from src.metrics.toy import mode_coverage
from src.models import WGANGP
from src.models.fit_checks import warn_unconstrained_critic
from src.models.losses import critic_loss, generator_loss
from src.nets import MLPCritic, MLPGenerator
from src.regularizers import DRAGANPenalty, GradientPenalty, R1Penalty, R2Penalty, WeightClipping
from tests.helpers import toy_data, toy_model, trainer

REAL = [2.0, -0.5, 0.3, 1.0]
FAKE = [-1.5, 0.7, 0.0]


def _sigmoid(t: float) -> float:
    return 1.0 / (1.0 + math.exp(-t))


def _mean(values: list[float]) -> float:
    return sum(values) / len(values)


# Written out from the papers, one sample at a time: Goodfellow et al. (2014) with D the logit, SN-GAN's hinge.
CRITIC_FORMULAS = {
    "wasserstein": _mean(FAKE) - _mean(REAL),
    "non_saturating": _mean([-math.log(_sigmoid(r)) for r in REAL])
    + _mean([-math.log(1 - _sigmoid(f)) for f in FAKE]),
    "hinge": _mean([max(0.0, 1 - r) for r in REAL]) + _mean([max(0.0, 1 + f) for f in FAKE]),
}
GENERATOR_FORMULAS = {
    "wasserstein": -_mean(FAKE),
    "non_saturating": _mean([-math.log(_sigmoid(f)) for f in FAKE]),
    "hinge": -_mean(FAKE),
}


@pytest.mark.parametrize("loss", list(CRITIC_FORMULAS))
def test_losses_match_their_formulas(loss: str) -> None:
    real, fake = torch.tensor(REAL, dtype=torch.float64), torch.tensor(FAKE, dtype=torch.float64)
    assert critic_loss(loss, real, fake).item() == pytest.approx(CRITIC_FORMULAS[loss], rel=1e-12)
    assert generator_loss(loss, fake).item() == pytest.approx(GENERATOR_FORMULAS[loss], rel=1e-12)


def test_non_saturating_loss_is_stable_for_large_scores() -> None:
    big = torch.tensor([200.0, -200.0])
    assert torch.isfinite(critic_loss("non_saturating", big, big)) and torch.isfinite(
        generator_loss("non_saturating", big)
    )


def test_unknown_loss_and_competitive_non_wasserstein_are_rejected() -> None:
    with pytest.raises(ValueError, match="model.loss must be one of wasserstein, non_saturating, hinge"):
        toy_model(loss="least_squares")
    from src.models import CompetitiveWGAN

    with pytest.raises(ValueError, match="needs model.loss=wasserstein"):
        CompetitiveWGAN(MLPGenerator(hidden_dim=8), MLPCritic(hidden_dim=8), lambda g, c: None, loss="hinge")


def _warnings(active: list, loss: str = "wasserstein", critic: torch.nn.Module | None = None) -> list[str]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        warn_unconstrained_critic(active, loss, critic)
    return [str(w.message) for w in caught]


@pytest.mark.parametrize("local", [R1Penalty, R2Penalty, DRAGANPenalty])
def test_local_penalties_leave_a_wasserstein_critic_unconstrained(local: type) -> None:
    (message,) = _warnings([local()])
    assert "unconstrained" in message and local.__name__ in message and "non_saturating" in message
    assert not _warnings([local(), GradientPenalty()])  # a global constraint next to it
    assert not _warnings([local()], loss="non_saturating")  # as their papers use them
    assert not _warnings([local()], loss="hinge")


def test_global_constraints_silence_the_warning() -> None:
    assert not _warnings([GradientPenalty()]) and not _warnings([WeightClipping()])
    assert _warnings([], critic=MLPCritic(hidden_dim=8))
    assert not _warnings([], critic=MLPCritic(hidden_dim=8, norm="spectral"))  # SN bounds the critic


@pytest.mark.parametrize("loss", ["hinge", "non_saturating"])
def test_a_bounded_loss_without_penalty_or_spectral_norm_warns(loss: str) -> None:
    (message,) = _warnings([], loss=loss, critic=MLPCritic(hidden_dim=8))
    assert "unconstrained" in message and f"model.loss={loss}" in message and "norm=spectral" in message
    assert not _warnings([], loss=loss, critic=MLPCritic(hidden_dim=8, norm="spectral"))
    assert not _warnings([R1Penalty()], loss=loss) and not _warnings([WeightClipping()], loss=loss)


def test_fit_warns_for_r1_with_the_wasserstein_loss(tmp_path: Path) -> None:
    with pytest.warns(UserWarning, match="R1Penalty bounds the critic only near the data"):
        trainer(tmp_path, callbacks=[R1Penalty()], max_steps=1).fit(toy_model(), toy_data(2))


@pytest.mark.slow
def test_non_saturating_loss_with_r1_learns_the_25_gaussians(tmp_path: Path) -> None:
    """About a minute on a quiet CPU; modes covered and the high-quality share rise from ~0 (gamma 0.1 suits the
    toy's scale, as lambda 0.1 does for its gradient penalty)."""
    pl.seed_everything(0)
    adam = partial(torch.optim.Adam, lr=1e-3, betas=(0.5, 0.9))
    model = WGANGP(
        MLPGenerator(latent_dim=2, hidden_dim=128),
        MLPCritic(hidden_dim=128),
        n_critic=2,
        generator_optimizer=adam,
        critic_optimizer=adam,
        max_generator_steps=1500,
        loss="non_saturating",
    )
    centres, std = toy_mode_centers("25gaussians"), toy_mode_std("25gaussians")
    before = mode_coverage(model.sample(2500), centres, std)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny matrices: one thread is faster (5x on a busy machine) and reproducible
    try:
        trainer(tmp_path, callbacks=[R1Penalty(0.1)], max_epochs=1000).fit(model, toy_data(500, 256))
    finally:
        torch.set_num_threads(threads)
    after = mode_coverage(model.sample(2500), centres, std)
    assert before["modes_covered"] <= 2 and after["modes_covered"] >= 8, (before, after)
    assert after["high_quality_fraction"] > before["high_quality_fraction"] + 0.15, (before, after)
