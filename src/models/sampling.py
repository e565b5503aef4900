"""Generating and scoring with a GAN module: noise, labels, the generator (or its EMA copy) and the critic."""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterator
from typing import Any, Literal

import torch
from torch import Tensor, nn
from torch.optim.swa_utils import AveragedModel

from src.models.ema import standing_statistics
from src.nets.labels import as_labels, split_batch

SampleBN = Literal["running", "batch"]
SAMPLE_BN: tuple[str, ...] = ("running", "batch")


def check_sample_bn(sample_bn: str) -> str:
    """Return ``sample_bn`` when it is ``"running"`` or ``"batch"``.

    Raises:
        ValueError: For any other value.
    """
    if sample_bn not in SAMPLE_BN:
        raise ValueError(
            f"model.sample_bn must be 'running' or 'batch' (the paper's code), got sample_bn={sample_bn!r}"
        )
    return sample_bn


@contextlib.contextmanager
def batch_statistics(net: nn.Module) -> Iterator[None]:
    """Make every BatchNorm of ``net`` normalize with the statistics of the batch, leaving its running ones alone.

    The rest of ``net`` keeps its mode (``sample`` puts it in eval mode). The BatchNorms run in training mode
    with ``track_running_stats`` off, so neither their running mean and variance nor their step counts change.
    """
    norms = [m for m in net.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    saved = [(m.training, m.track_running_stats) for m in norms]
    try:
        for m in norms:
            m.training, m.track_running_stats = True, False
        yield
    finally:
        for m, (training, track) in zip(norms, saved):
            m.training, m.track_running_stats = training, track


class SamplingMixin:
    """The sampling API of :class:`~src.models.WGANGP`: :meth:`sample`, :meth:`generate`, :meth:`score`.

    Mixed into a LightningModule that sets ``generator`` (with an integer ``latent_dim``), ``critic``,
    ``generator_ema`` (``None`` without an average), ``num_classes`` (0: unconditional) and ``sample_bn``
    (``"running"`` or ``"batch"``).
    """

    generator: nn.Module
    critic: nn.Module
    generator_ema: AveragedModel | None
    num_classes: int
    sample_bn: SampleBN = "running"
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

    def condition(self, batch: Any) -> tuple[Tensor, Tensor | None]:
        """A batch's real samples (B, ...) and what the networks are conditioned on: labels (B,) or ``None``.

        :class:`~src.models.SuperResolutionWGAN` returns the LR image paired with each HR one instead.
        """
        return split_batch(batch, self.num_classes)

    def generator_condition(self, condition: Tensor | None, batch_size: int) -> Tensor | None:
        """The generator step's condition, given the batch's: fresh uniform labels (or ``None``)."""
        return self.random_labels(batch_size)

    def generate(
        self, noise: Tensor, labels: Tensor | None = None, generator: nn.Module | None = None
    ) -> Tensor:
        """Run the (given or training) generator on noise (B, latent_dim) and, when conditional, labels (B,)."""
        generator = self.generator if generator is None else generator
        return generator(noise) if labels is None else generator(noise, labels)

    _ema_statistics_at: int | None = (
        None  # the EMA's n_averaged when its BatchNorm statistics were recomputed
    )

    def refresh_ema_statistics(self) -> None:
        """Give the EMA generator's BatchNorms the standing statistics of its own weights, once per EMA update.

        Used before sampling with running statistics (``sample_bn="running"``); see
        :func:`~src.models.ema.standing_statistics`. A no-op without an EMA or without BatchNorm.
        """
        ema = self.generator_ema
        if ema is None or self.sample_bn != "running" or self._ema_statistics_at == int(ema.n_averaged):
            return
        device, classes = self.device, self.num_classes

        def inputs(n: int, g: torch.Generator) -> tuple[Tensor, ...]:
            noise = torch.randn(n, self.latent_dim, generator=g).to(device)  # (n, Z)
            return (noise,) if not classes else (noise, torch.randint(classes, (n,), generator=g).to(device))

        standing_statistics(ema.module, inputs)
        self._ema_statistics_at = int(ema.n_averaged)

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

        Uses the EMA generator when ``ema_decay`` is set. Its BatchNorms use their running statistics, or with
        ``sample_bn="batch"`` those of the batch sampled (as the paper's code does; the samples then depend on
        the batch they are drawn with, and a batch needs more than one sample). The EMA generator's running
        statistics are its own standing statistics (:meth:`refresh_ema_statistics`), not the average of the
        training generator's.

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
        self.refresh_ema_statistics()
        generator = self.sampling_generator
        was_training = generator.training
        generator.eval()
        norms = batch_statistics(generator) if self.sample_bn == "batch" else contextlib.nullcontext()
        try:
            with norms:
                return self.generate(noise.to(self.device), labels, generator)
        finally:
            generator.train(was_training)

    def critic_outputs(self, x: Tensor, labels: Tensor | None = None) -> tuple[Tensor, Tensor | None]:
        """Critic scores (B,) and, from a critic with an auxiliary classifier (AC-GAN), its logits (B, K).

        A conditional critic also takes the labels (B,). A critic returns its scores, or ``(scores, logits)``
        when it has a classifier head (:class:`~src.nets.ACGANResNetCritic`); the logits are ``None`` otherwise.
        """
        out = self.critic(x) if labels is None else self.critic(x, labels)
        scores, logits = out if isinstance(out, tuple) else (out, None)
        return scores.reshape(x.shape[0]), logits

    def score(self, x: Tensor, labels: Tensor | None = None) -> Tensor:
        """Critic scores as a flat vector (B,); a conditional critic also takes the labels (B,)."""
        return self.critic_outputs(x, labels)[0]

    def _critic_fn(self, labels: Tensor | None) -> Callable[[Tensor], Tensor]:
        """The critic as regularizers see it, ``x -> scores (B,)``, closed over the batch's labels."""
        return self.score if labels is None else functools.partial(self.score, labels=labels)
