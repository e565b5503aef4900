"""Generating and scoring with a GAN module: noise, labels, the generator (or its EMA copy) and the critic."""

from __future__ import annotations

import functools
from collections.abc import Callable

import torch
from torch import Tensor, nn
from torch.optim.swa_utils import AveragedModel

from src.nets.labels import as_labels


class SamplingMixin:
    """The sampling API of :class:`~src.models.WGANGP`: :meth:`sample`, :meth:`generate`, :meth:`score`.

    Mixed into a LightningModule that sets ``generator`` (with an integer ``latent_dim``), ``critic``,
    ``generator_ema`` (``None`` without an average) and ``num_classes`` (0: unconditional).
    """

    generator: nn.Module
    critic: nn.Module
    generator_ema: AveragedModel | None
    num_classes: int
    device: torch.device

    @property
    def latent_dim(self) -> int:
        """Size of the generator's noise vector."""
        return int(self.generator.latent_dim)

    # ----------------------------------------------------------------------------------------- sampling
    def noise(self, n: int) -> Tensor:
        """Standard normal noise (n, latent_dim) on the module's device."""
        return torch.randn(n, self.latent_dim, device=self.device)

    def random_labels(self, n: int) -> Tensor | None:
        """Uniform class labels (n,) for a conditional model; ``None`` for an unconditional one."""
        return torch.randint(self.num_classes, (n,), device=self.device) if self.num_classes else None

    def generate(
        self, noise: Tensor, labels: Tensor | None = None, generator: nn.Module | None = None
    ) -> Tensor:
        """Run the (given or training) generator on noise (B, latent_dim) and, when conditional, labels (B,)."""
        generator = self.generator if generator is None else generator
        return generator(noise) if labels is None else generator(noise, labels)

    @property
    def sampling_generator(self) -> nn.Module:
        """The generator used for samples and evaluation: the EMA copy when ``ema_decay`` is set."""
        return self.generator if self.generator_ema is None else self.generator_ema.module

    @torch.no_grad()
    def sample(
        self,
        n: int | None = None,
        noise: Tensor | None = None,
        labels: Tensor | int | list[int] | None = None,
    ) -> Tensor:
        """Generate samples in data space (images in [-1, 1]) without grad, with the generator in eval mode.

        Uses the EMA generator when ``ema_decay`` is set.

        Args:
            n: Number of samples; ignored when ``noise`` is given.
            noise: Optional noise (n, latent_dim); defaults to fresh standard normal noise.
            labels: Classes for a conditional model: a tensor or list of n labels, one int for all, or
                ``None`` for uniformly drawn classes. Ignored by an unconditional model.

        Returns:
            Samples (n, *data_shape) on the module's device.
        """
        if noise is None:
            if n is None:
                raise ValueError("sample() needs n or noise")
            noise = self.noise(n)
        labels = (
            as_labels(labels, noise.shape[0], self.num_classes, self.device) if self.num_classes else None
        )
        generator = self.sampling_generator
        was_training = generator.training
        generator.eval()
        try:
            return self.generate(noise.to(self.device), labels, generator)
        finally:
            generator.train(was_training)

    def score(self, x: Tensor, labels: Tensor | None = None) -> Tensor:
        """Critic scores as a flat vector (B,); a conditional critic also takes the labels (B,)."""
        scores = self.critic(x) if labels is None else self.critic(x, labels)
        return scores.reshape(x.shape[0])

    def _critic_fn(self, labels: Tensor | None) -> Callable[[Tensor], Tensor]:
        """The critic as regularizers see it, ``x -> scores (B,)``, closed over the batch's labels."""
        return self.score if labels is None else functools.partial(self.score, labels=labels)
