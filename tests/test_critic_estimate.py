"""The critic's Wasserstein estimate checked against the truth.

With the "generator" fixed to the real distribution shifted by a vector v, W1(real, fake) = ||v|| exactly
(the optimal plan moves every point by v). A critic trained to convergence with the project's WGANGP
module and GradientPenalty must then estimate E[D(real)] - E[D(fake)] ≈ ||v||. (Its optimum under the
penalty is a slope of 1 + ||v|| / (2λ) along v, so the estimate may exceed ||v|| by ||v||² / (2λ) = 5% here.)
"""

from __future__ import annotations

from pathlib import Path

import lightning.pytorch as pl
import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader, TensorDataset

from src.models import WGANGP
from src.nets import MLPCritic
from src.regularizers import GradientPenalty

V = torch.tensor([0.6, 0.8])  # ||v|| = 1
LAMBDA = 10.0


class Shift(nn.Module):
    """fake = z + v with z ~ N(0, I): exactly the real distribution N(0, I) moved by v."""

    latent_dim = 2

    def __init__(self, v: Tensor) -> None:
        super().__init__()
        self.register_buffer("v", v)
        self.anchor = nn.Parameter(
            torch.zeros(())
        )  # the generator optimizer needs a parameter; it gets no gradient

    def forward(self, z: Tensor) -> Tensor:
        return z + self.v + 0 * self.anchor


def test_critic_estimates_the_exact_w1_of_a_shift(tmp_path: Path) -> None:
    torch.manual_seed(0)
    real = torch.randn(256 * 40, 2)
    loader = DataLoader(TensorDataset(real), batch_size=256, shuffle=True, drop_last=True)
    model = WGANGP(
        Shift(V),
        MLPCritic(data_shape=(2,), hidden_dim=64, depth=2),
        n_critic=5,
        critic_optimizer=lambda params: torch.optim.Adam(params, lr=1e-3, betas=(0.5, 0.9)),
        max_generator_steps=100,  # 500 critic steps: it settles after about 200
    )
    trainer = pl.Trainer(
        accelerator="cpu",
        devices=1,
        max_epochs=-1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        limit_val_batches=0,
        default_root_dir=tmp_path,
        callbacks=[GradientPenalty(weight=LAMBDA)],
    )
    trainer.fit(model, train_dataloaders=loader)
    assert model.critic_steps == 500

    with torch.no_grad():
        x = torch.randn(50_000, 2, generator=torch.Generator().manual_seed(1))
        estimate = (model.score(x).mean() - model.score(x + V).mean()).item()
    truth = V.norm().item()
    assert abs(estimate - truth) < 0.1 * truth, f"estimate {estimate:.4f} vs W1 {truth:.4f}"
