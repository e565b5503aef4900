"""Evaluation that leaves training's randomness alone: its own noise stream, and the global RNG put back.

A validation inside ``fit`` draws from torch's global RNG in places the module does not own: the val
DataLoader's iterator takes a seed from it before any validation hook runs, and a fork's metric callback may
draw too. :class:`EvaluationRNGMixin` snapshots the RNG after every training step and restores it when a
validation ends, so the noise, ε and data order of training are the same whether, and how often, evaluations
run; a checkpoint written during a validation stores the restored state. ``val/wasserstein`` draws its noise
from a generator reseeded at every evaluation, so successive evaluations compare on the same noise.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from typing_extensions import override

from src.utils.rng import RNGSnapshot, rng_restore, rng_snapshot

#: Seeds of the noise of ``validation_step``/``test_step`` (``val/wasserstein``), reset at every evaluation.
EVAL_NOISE_SEEDS = {"val": 0, "test": 1000}


class EvaluationRNGMixin:
    """Lightning hooks that isolate evaluation randomness from training; mixed into a LightningModule."""

    trainer: Any
    _rng_after_step: RNGSnapshot | None = None  # the RNG after the last training step
    _rng_before_eval: RNGSnapshot | None = None  # set while a validation runs inside fit
    _eval_noise: torch.Generator | None = None

    def eval_noise(self, n: int, latent_dim: int) -> torch.Tensor:
        """Noise (n, latent_dim) on the CPU from the evaluation's own generator."""
        if self._eval_noise is None:
            self._eval_noise = torch.Generator().manual_seed(EVAL_NOISE_SEEDS["val"])
        return torch.randn(n, latent_dim, generator=self._eval_noise)

    @override
    def on_train_start(self) -> None:
        self._rng_after_step = rng_snapshot()  # a resumed run may validate before its first step

    @override
    def on_train_batch_end(self, outputs: Any, batch: Any, batch_idx: int) -> None:
        self._rng_after_step = rng_snapshot()

    @override
    def on_validation_start(self) -> None:
        trainer = self.trainer
        if trainer.state.fn == "fit" and not trainer.sanity_checking and self._rng_after_step is not None:
            self._rng_before_eval = self._rng_after_step  # Lightning isolates the sanity check's RNG itself

    @override
    def on_validation_end(self) -> None:
        if self._rng_before_eval is not None:  # after every callback's on_validation_end (checkpoints too)
            rng_restore(self._rng_before_eval)
            self._rng_before_eval = None

    @override
    def on_validation_epoch_start(self) -> None:
        self._eval_noise = torch.Generator().manual_seed(EVAL_NOISE_SEEDS["val"])

    @override
    def on_test_epoch_start(self) -> None:
        self._eval_noise = torch.Generator().manual_seed(EVAL_NOISE_SEEDS["test"])

    def with_training_rng(self, save: Callable[[], None]) -> None:
        """Run ``save`` (which stores the RNG in a checkpoint) with the state training resumes from."""
        if self._rng_before_eval is None:
            save()
            return
        now = rng_snapshot()
        rng_restore(self._rng_before_eval)
        try:
            save()
        finally:
            rng_restore(now)
