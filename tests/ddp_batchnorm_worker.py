"""Two-process DDP run on the CPU (gloo) with a BatchNorm generator: ``python tests/ddp_batchnorm_worker.py OUT [sync]``.

For tests/test_sync_batchnorm.py. A global batch of 16 is split into 8 per rank (what ``data.global_batch_size``
does); every rank records the batch sizes its generator's BatchNorm normalized over during training and its
running statistics at the end, in ``OUT/rank<r>.pt``. With ``sync``, the Trainer gets ``sync_batchnorm=True``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import Callback
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from src.models import WGANGP  # noqa: E402
from src.nets import MLPCritic  # noqa: E402
from src.regularizers import GradientPenalty  # noqa: E402

GLOBAL_BATCH, WORLD = 16, 2


class BNGenerator(nn.Module):
    """Noise (B, 2) -> points (B, 2) through a BatchNorm."""

    def __init__(self) -> None:
        super().__init__()
        self.latent_dim = 2
        self.net = nn.Sequential(nn.Linear(2, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 2))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)


class Recorder(Callback):
    def __init__(self, out: Path) -> None:
        self.out, self.sizes = out, []

    def on_train_start(self, trainer: pl.Trainer, pl_module: WGANGP) -> None:
        def record(module: nn.Module, inputs: tuple[torch.Tensor]) -> None:
            if module.training:
                self.sizes.append(inputs[0].shape[0])

        pl_module.generator.net[1].register_forward_pre_hook(record)

    def on_train_end(self, trainer: pl.Trainer, pl_module: WGANGP) -> None:
        bn = pl_module.generator.net[1]
        record = {"sizes": self.sizes, "running_mean": bn.running_mean.clone(), "type": type(bn).__name__}
        torch.save(record, self.out / f"rank{trainer.global_rank}.pt")


def main(out: Path, sync: bool = False) -> None:
    pl.seed_everything(0)
    data = torch.randn(64, 2, generator=torch.Generator().manual_seed(0))
    loader = DataLoader(TensorDataset(data), batch_size=GLOBAL_BATCH // WORLD, shuffle=False)
    model = WGANGP(BNGenerator(), MLPCritic(hidden_dim=8), n_critic=1, max_generator_steps=2)
    trainer = pl.Trainer(
        accelerator="cpu",
        devices=WORLD,
        strategy="ddp_find_unused_parameters_true",
        max_epochs=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[GradientPenalty(), Recorder(out)],
        default_root_dir=out,
        sync_batchnorm=sync,
    )
    trainer.fit(model, train_dataloaders=loader)
    torch.distributed.destroy_process_group()  # else gloo's threads may abort the interpreter at exit


if __name__ == "__main__":
    main(Path(sys.argv[1]), sync=sys.argv[2:] == ["sync"])
