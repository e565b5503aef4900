"""Two-process DDP run on the CPU (gloo) for tests/test_ddp.py: ``python tests/ddp_worker.py OUT_DIR``.

Lightning's subprocess launcher runs this script again for rank 1. Every rank writes ``OUT_DIR/rank<r>.pt``
with what it saw: its first real batch, the critic gradients of the first critic step after DDP's all-reduce,
its final parameters, step counters and logged metrics. Before the first critic step each rank reseeds torch
with ``1000 + rank``, so the test can redraw that step's noise ``z`` and interpolation ε.
"""

from __future__ import annotations

import sys
from pathlib import Path

import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import Callback
from torch.utils.data import DataLoader, TensorDataset

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from src.models import WGANGP  # noqa: E402
from src.nets import MLPCritic, MLPGenerator  # noqa: E402
from src.regularizers import GradientPenalty  # noqa: E402

HIDDEN, BATCH, POINTS, LAMBDA, FIRST_SEED = 16, 8, 64, 10.0, 1000


def dataset() -> torch.Tensor:
    """The whole training set (POINTS, 2); the DistributedSampler gives rank r the rows r, r+2, ..."""
    return torch.arange(POINTS * 2, dtype=torch.float32).view(POINTS, 2) / POINTS - 1


def model() -> WGANGP:
    return WGANGP(
        MLPGenerator(latent_dim=2, hidden_dim=HIDDEN),
        MLPCritic(hidden_dim=HIDDEN),
        n_critic=2,
        max_generator_steps=3,
    )


class Recorder(Callback):
    def __init__(self, out: Path) -> None:
        self.out = out
        self.record: dict = {}

    def on_train_start(self, trainer: pl.Trainer, pl_module: WGANGP) -> None:
        self.record["rng_at_start"] = torch.get_rng_state()
        self.record["initial_state"] = {k: v.clone() for k, v in pl_module.state_dict().items()}

    def on_train_batch_start(self, trainer: pl.Trainer, pl_module: WGANGP, batch, batch_idx: int) -> None:
        if pl_module.critic_steps == 0:
            self.record["first_batch"] = batch[0].clone()
            torch.manual_seed(FIRST_SEED + trainer.global_rank)

    def on_before_optimizer_step(self, trainer: pl.Trainer, pl_module: WGANGP, optimizer) -> None:
        critic_ids = {id(p) for p in pl_module.critic.parameters()}
        is_critic = all(id(p) in critic_ids for g in optimizer.param_groups for p in g["params"])
        if is_critic and pl_module.critic_steps == 0:
            self.record["critic_grads"] = {n: p.grad.clone() for n, p in pl_module.critic.named_parameters()}
            self.record["generator_grads_none"] = all(
                p.grad is None for p in pl_module.generator.parameters()
            )

    def on_train_end(self, trainer: pl.Trainer, pl_module: WGANGP) -> None:
        self.record.update(
            rank=trainer.global_rank,
            world_size=trainer.world_size,
            strategy=type(trainer.strategy).__name__,
            find_unused=getattr(trainer.strategy, "_ddp_kwargs", {}).get("find_unused_parameters"),
            final_state={k: v.clone() for k, v in pl_module.state_dict().items()},
            generator_steps=pl_module.generator_steps,
            critic_steps=pl_module.critic_steps,
            metrics={k: float(v) for k, v in trainer.callback_metrics.items()},
        )
        torch.save(self.record, self.out / f"rank{trainer.global_rank}.pt")


def main(out: Path) -> None:
    pl.seed_everything(0)
    loader = DataLoader(TensorDataset(dataset()), batch_size=BATCH, shuffle=False)
    trainer = pl.Trainer(
        accelerator="cpu",
        devices=2,
        strategy="ddp_find_unused_parameters_true",
        max_epochs=10,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        log_every_n_steps=1,
        callbacks=[GradientPenalty(weight=LAMBDA), Recorder(out)],
        default_root_dir=out,
    )
    trainer.fit(model(), train_dataloaders=loader)
    torch.distributed.destroy_process_group()  # else gloo's threads may abort the interpreter at exit


if __name__ == "__main__":
    main(Path(sys.argv[1]))
