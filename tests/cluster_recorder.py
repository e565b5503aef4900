"""A callback for the multi-node tests: what each rank saw, and a SIGUSR1 at a chosen step (SLURM's warning)."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import lightning.pytorch as pl
import torch

from tests.ddp_worker import FIRST_SEED


class ClusterRecorder(pl.Callback):
    """Writes ``<out>/rank<r>.json`` (rank, world size, cluster environment) and ``rank<r>.pt`` (the first
    real batch and the critic gradients of the first critic step, drawn after reseeding with ``FIRST_SEED + rank``,
    as tests/ddp_worker.py does). With ``sigusr1_at`` every rank sends itself SIGUSR1 after that generator step,
    as ``#SBATCH --signal=SIGUSR1@90`` does to every task of the job.
    """

    def __init__(self, out: str, sigusr1_at: int | None = None) -> None:
        self.out, self.sigusr1_at = Path(out), sigusr1_at
        self.record: dict = {}
        self.signalled = False

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        env = getattr(trainer.strategy, "cluster_environment", None)  # a single device has none
        info = {
            "rank": trainer.global_rank,
            "world_size": trainer.world_size,
            "node_rank": trainer.node_rank,
            "local_rank": trainer.local_rank,
            "environment": type(env).__name__,
            "generator_steps_at_start": pl_module.generator_steps,
        }
        self.out.mkdir(parents=True, exist_ok=True)
        (self.out / f"rank{trainer.global_rank}.json").write_text(json.dumps(info))
        self.record["initial_state"] = {k: v.clone() for k, v in pl_module.state_dict().items()}

    def on_train_batch_start(self, trainer: pl.Trainer, pl_module, batch, batch_idx: int) -> None:
        if pl_module.critic_steps == 0:
            self.record["first_batch"] = (batch[0] if isinstance(batch, (list, tuple)) else batch).clone()
            torch.manual_seed(FIRST_SEED + trainer.global_rank)

    def on_before_optimizer_step(self, trainer: pl.Trainer, pl_module, optimizer) -> None:
        critic_ids = {id(p) for p in pl_module.critic.parameters()}
        is_critic = all(id(p) in critic_ids for g in optimizer.param_groups for p in g["params"])
        if is_critic and pl_module.critic_steps == 0:
            self.record["critic_grads"] = {n: p.grad.clone() for n, p in pl_module.critic.named_parameters()}

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module, outputs, batch, batch_idx: int) -> None:
        if (
            self.sigusr1_at is not None
            and not self.signalled
            and pl_module.generator_steps >= self.sigusr1_at
        ):
            self.signalled = True
            os.kill(os.getpid(), signal.SIGUSR1)

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if "critic_grads" in self.record:
            torch.save(self.record, self.out / f"rank{trainer.global_rank}.pt")
