"""Weight clipping, the Lipschitz constraint of the original WGAN (Arjovsky et al. 2017, Algorithm 1)."""

from __future__ import annotations

import torch
from lightning.pytorch.utilities import rank_zero_warn
from torch import Tensor, nn

from src.regularizers.base import CriticRegularizer


class WeightClipping(CriticRegularizer):
    """Clamp every critic parameter to ``[-clip_value, clip_value]`` after each critic step.

    It adds nothing to the loss; it acts in :meth:`after_critic_step`. It is not a per-sample penalty, so
    BatchNorm in the critic is allowed (the original WGAN had it). The paper pairs it with RMSprop at
    lr 5e-5 and ``n_critic=5`` (``configs/wgan_clip.yaml``); Gulrajani et al. (2017) show why the gradient
    penalty replaced it: clipping biases the critic towards simple functions and makes training sensitive to
    ``clip_value``.

    Args:
        clip_value: ``c`` of the paper (0.01).
        clip_buffers: Also clamp floating-point buffers (e.g. BatchNorm running statistics); the paper clips
            parameters only.
    """

    name = "clip"
    per_sample = False

    def __init__(self, clip_value: float = 0.01, clip_buffers: bool = False) -> None:
        super().__init__()
        if not 0 < clip_value < float("inf"):  # NaN fails too
            raise ValueError(
                f"WeightClipping clip_value must be a finite number > 0, got clip_value={clip_value}; the paper "
                "uses 0.01"
            )
        self.clip_value = float(clip_value)
        self.clip_buffers = bool(clip_buffers)

    @torch.no_grad()
    def after_critic_step(self, critic: nn.Module) -> None:
        """Clamp the critic's parameters in place; log the share that was outside the bound."""
        tensors: list[Tensor] = list(critic.parameters())
        if self.clip_buffers:
            tensors += [b for b in critic.buffers() if b.is_floating_point()]
        if not tensors:
            return
        clipped = torch.stack([(t.abs() > self.clip_value).sum() for t in tensors]).sum()  # no host sync
        for t in tensors:
            t.clamp_(-self.clip_value, self.clip_value)
        self.stats = {"frac_clipped": clipped.float() / sum(t.numel() for t in tensors)}

    def state_dict(self) -> dict:
        """Hyperparameters, saved in checkpoints as a record of the run."""
        return {"clip_value": self.clip_value, "clip_buffers": self.clip_buffers}

    def load_state_dict(self, state_dict: dict) -> None:
        """Keep the configured hyperparameters, but say so when they differ from the checkpoint's."""
        if state_dict and state_dict != self.state_dict():
            rank_zero_warn(f"WeightClipping: resuming with {self.state_dict()}; checkpoint had {state_dict}")
