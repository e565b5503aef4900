"""Networks that fail on purpose, wired into CLI runs by ``class_path`` (tests/test_faults.py)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from src.nets import MLPCritic


class NaNAfterCritic(MLPCritic):
    """An MLP critic whose scores turn NaN after ``nan_after`` forward calls in training mode.

    Args:
        data_shape: Shape of one sample; linked from the datamodule.
        hidden_dim: Width of each hidden layer.
        depth: Number of hidden layers.
        nan_after: Training-mode calls that return finite scores before every later one returns NaN.
    """

    def __init__(
        self, data_shape: Sequence[int] = (2,), hidden_dim: int = 16, depth: int = 3, nan_after: int = 10
    ) -> None:
        super().__init__(data_shape, hidden_dim, depth)
        self.nan_after = nan_after
        self.calls = 0

    def forward(self, x: Tensor) -> Tensor:
        """Scores (B,), NaN once the budget of finite calls is spent."""
        scores = super().forward(x)
        if self.training:
            self.calls += 1
            if self.calls > self.nan_after:
                return scores * torch.tensor(float("nan"), device=x.device)
        return scores
