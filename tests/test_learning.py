"""A real learning check: WGAN-GP learns the 25 Gaussians and its Wasserstein estimate falls."""

from __future__ import annotations

from functools import partial
from pathlib import Path

import lightning.pytorch as pl
import pytest
import torch

from src.data.toy import sample_toy, toy_mode_centers, toy_mode_std
from src.metrics.toy import mode_coverage
from src.models import WGANGP
from src.nets import MLPCritic, MLPGenerator
from src.regularizers import GradientPenalty
from tests.helpers import toy_data, trainer


class WassersteinProbe(pl.Callback):
    """Every ``every`` generator steps: the critic's estimate E[D(real)] - E[D(fake)] on 2,500 fresh points."""

    def __init__(self, every: int = 250) -> None:
        self.every, self.estimates = every, []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if pl_module.critic_steps % (self.every * pl_module.n_critic) == 0:
            g = torch.Generator().manual_seed(len(self.estimates))  # leaves the training RNG untouched
            real = sample_toy("25gaussians", 2500, g)
            fake = pl_module.sample(noise=torch.randn(2500, pl_module.latent_dim, generator=g))
            with torch.no_grad():
                estimate = pl_module.score(real).mean() - pl_module.score(fake).mean()
            self.estimates.append(float(estimate))


@pytest.mark.slow
def test_wgan_gp_covers_the_25_gaussians(tmp_path: Path) -> None:
    pl.seed_everything(0)
    adam = partial(torch.optim.Adam, lr=1e-3, betas=(0.5, 0.9))
    model = WGANGP(
        MLPGenerator(latent_dim=2, hidden_dim=128),
        MLPCritic(hidden_dim=128),
        generator_optimizer=adam,
        critic_optimizer=adam,
        max_generator_steps=3000,
    )
    probe = WassersteinProbe()
    trainer(tmp_path, callbacks=[GradientPenalty(0.1), probe], max_epochs=1000).fit(model, toy_data(500, 256))

    coverage = mode_coverage(model.sample(2500), toy_mode_centers("25gaussians"), toy_mode_std("25gaussians"))
    assert coverage["modes_covered"] >= 20, coverage
    peak = max(probe.estimates)
    assert probe.estimates[-1] < 0.5 * peak, probe.estimates
