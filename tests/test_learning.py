"""A real learning check: configs/toy_fast.yaml learns the 25 Gaussians and its Wasserstein estimate falls.

The recipe's robustness over seeds is measured by ``python -m bench.time_to_quality toy_fast --seeds 5``
(BENCHMARKS.md); this test runs one seed of the very config users run, through the CLI.
"""

from __future__ import annotations

from pathlib import Path

import lightning.pytorch as pl
import pytest
import torch

from src.cli import build_cli
from src.data.toy import sample_toy, toy_mode_centers, toy_mode_std
from src.metrics.toy import mode_coverage


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
def test_the_fast_toy_config_covers_the_25_gaussians(tmp_path: Path) -> None:
    cli = build_cli(
        [
            "--config=configs/toy_fast.yaml",
            "--seed_everything=0",
            "--quality=null",  # the test measures at the end; ToyMetrics' exact W1 would only cost time
            "--best=null",
            "--samples.every_n_epochs=1000",
            "--trainer.enable_progress_bar=false",
            f"--trainer.logger.init_args.save_dir={tmp_path}",
        ]
    )
    probe = WassersteinProbe()
    cli.trainer.callbacks.append(probe)
    cli.trainer.fit(cli.model, datamodule=cli.datamodule)
    model = cli.model
    assert model.generator_steps == model.max_generator_steps == 6500

    samples = model.sample(
        noise=torch.randn(2500, model.latent_dim, generator=torch.Generator().manual_seed(1))
    )
    coverage = mode_coverage(samples, toy_mode_centers("25gaussians"), toy_mode_std("25gaussians"))
    # 25/25 modes and 91-95% high-quality samples on each of 5 seeds (BENCHMARKS.md); 3-6 modes with the paper's lr.
    assert coverage["modes_covered"] >= 20 and coverage["high_quality_fraction"] >= 0.75, coverage
    peak = max(probe.estimates)
    assert probe.estimates[-1] < 0.5 * peak, probe.estimates
