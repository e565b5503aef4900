"""The module's training state in checkpoints: step counters and every rank's RNG streams."""

from __future__ import annotations

from typing import Any

import lightning.pytorch as pl
import torch

from src.utils.checkpoint import check_checkpoint_fits
from src.utils.divergence import assert_finite_parameters
from src.utils.rng import collect_rng_states, restore_rng_states

STATE_KEY = "wgan_gp"  # the checkpoint entry; older checkpoints use the same key


def save_training_state(
    checkpoint: dict[str, Any], module: pl.LightningModule, critic_steps: int, generator_steps: int
) -> None:
    """Refuse to save NaN weights, then store the counters and the RNG states under ``checkpoint["wgan_gp"]``.

    Lightning's ``global_step`` counts the steps of both optimizers, so the module's own counters are saved.
    The RNG states of every rank are gathered (a collective under DDP), so a resumed run draws the same
    noise as a straight one.

    Raises:
        TrainingDivergedError: When a parameter holds NaN or Inf.
    """
    assert_finite_parameters(module, f"generator step {generator_steps} (critic step {critic_steps})")
    trainer = module._trainer  # None when saved outside a fit
    checkpoint[STATE_KEY] = {
        "critic_steps": critic_steps,
        "generator_steps": generator_steps,
        "rng": collect_rng_states(trainer.strategy if trainer is not None else None),
    }


def load_training_state(checkpoint: dict[str, Any], module: pl.LightningModule) -> tuple[int, int]:
    """Check that the checkpoint fits the module and return its ``(critic_steps, generator_steps)``.

    When fitting, this rank's RNG states are restored too; loading to evaluate or sample leaves the
    process's RNG alone.

    Raises:
        CheckpointMismatchError: When ``module.strict_loading`` is set and the weights do not fit.
    """
    trainer = module._trainer
    if module.strict_loading:
        check_checkpoint_fits(module, checkpoint, trainer.ckpt_path if trainer is not None else None)
    state = checkpoint.get(STATE_KEY, {})
    counters = int(state.get("critic_steps", 0)), int(state.get("generator_steps", 0))
    if trainer is None or trainer.state.fn != "fit":
        return counters
    if "rng" in state:
        restore_rng_states(state["rng"], trainer.global_rank)
    elif "torch_rng_state" in state:  # checkpoints written before every rank's states were kept
        torch.set_rng_state(state["torch_rng_state"].cpu())
    return counters
