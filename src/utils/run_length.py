"""Whether a checkpoint has already reached the length of the run that would resume it.

Resuming a finished run with the same length would train one more step (Lightning runs a batch before the model
sees it is done), overwrite ``last.ckpt`` and test again; every ``--ckpt_path auto`` resubmission of a finished
job would add a step. ``src.train`` asks :func:`finished` first and then trains nothing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning.pytorch as pl

from src.utils.checkpoint import check_checkpoint_fits, load_checkpoint


def finished(checkpoint: dict[str, Any], model: pl.LightningModule, trainer: pl.Trainer) -> str | None:
    """Which limit of this run the checkpoint has reached, or ``None`` when there is training left.

    The limits are the model's ``max_generator_steps`` and the trainer's ``max_steps`` and ``max_epochs``.

    Args:
        checkpoint: A checkpoint written by ``src.train`` (its tensors need not be read).
        model: This run's model.
        trainer: This run's trainer.

    Returns:
        The limit reached, for a message (``"generator step 66 of model.max_generator_steps=66"``), or ``None``.
    """
    max_generator_steps = getattr(model, "max_generator_steps", None)
    generator_steps = int((checkpoint.get("wgan_gp") or {}).get("generator_steps", 0))
    if max_generator_steps is not None and generator_steps >= max_generator_steps:
        return f"generator step {generator_steps} of model.max_generator_steps={max_generator_steps}"
    global_step = int(checkpoint.get("global_step", 0))
    if trainer.max_steps is not None and trainer.max_steps >= 0 and global_step >= trainer.max_steps:
        return f"step {global_step} of trainer.max_steps={trainer.max_steps}"
    progress = (((checkpoint.get("loops") or {}).get("fit_loop") or {}).get("epoch_progress") or {}).get(
        "current"
    )
    epochs = int((progress or {}).get("processed", 0))
    max_epochs = trainer.max_epochs
    if max_epochs is not None and max_epochs >= 0 and epochs >= max_epochs and progress:
        return f"epoch {epochs} of trainer.max_epochs={max_epochs}"
    return None


def best_checkpoint(checkpoint: dict[str, Any]) -> str | None:
    """The best checkpoint on a monitored metric that the run of ``checkpoint`` kept, when it still exists."""
    for state in (checkpoint.get("callbacks") or {}).values():
        if isinstance(state, dict) and state.get("monitor") and state.get("best_model_path"):
            if Path(state["best_model_path"]).is_file():
                return str(state["best_model_path"])
    return None


def finished_checkpoint(ckpt_path: str | None, model: pl.LightningModule, trainer: pl.Trainer) -> str | None:
    """:func:`finished` for a local checkpoint file (``None`` for no file, or a remote one).

    Raises:
        CheckpointMismatchError: The checkpoint's weights do not fit ``model`` (checked first: a checkpoint of
            another model is refused, not reported as finished).
    """
    if not ckpt_path or "://" in str(ckpt_path) or not Path(ckpt_path).is_file():
        return None
    checkpoint = load_checkpoint(ckpt_path, mmap=True)
    check_checkpoint_fits(model, checkpoint, ckpt_path)
    return finished(checkpoint, model, trainer)
