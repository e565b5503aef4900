"""Simultaneous training of both players by one competitive optimizer (e.g. CGD) instead of alternating."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, ClassVar, Literal

import lightning.pytorch as pl
import torch
from lightning.pytorch.cli import LRSchedulerCallable
from torch import Tensor, nn
from typing_extensions import override

from src.models.wgan_gp import WGANGP
from src.nets.labels import split_batch

# Builds one optimizer over both players from (generator parameters, critic parameters), e.g. src.optim.CGD.
CompetitiveOptimizerCallable = Callable[[Iterable, Iterable], torch.optim.Optimizer]


class CompetitiveWGAN(WGANGP):
    """A WGAN whose players update *simultaneously* with one optimizer over both, e.g. ``src.optim.CGD``.

    Competitive gradient descent (Schäfer & Anandkumar 2019) plays ``f = E[D(real)] - E[D(G(z))] - penalties``:
    the critic ascends it, the generator descends it, in one step per batch. The run does not warn about a
    missing penalty: CGD's implicit competitive regularization is the point (Schäfer et al. 2020,
    ``configs/toy_cgd.yaml``).

    The solver differentiates twice without a grad scaler and is not distributed, so the run must use one
    device and full precision.

    Args:
        generator: As for :class:`~src.models.WGANGP`.
        critic: As for :class:`~src.models.WGANGP`.
        competitive_optimizer: Builds the optimizer from ``(generator parameters, critic parameters)``.
        n_critic: Must be 1: both players update at every step. (Typed ``Literal[1]`` so that the CLI drops
            :class:`~src.models.WGANGP`'s default of 5 when ``model.class_path`` switches to this class.)
        critic_scheduler: Must be ``None``: ``generator_scheduler`` schedules both players.
        **kwargs: The other arguments of :class:`~src.models.WGANGP`. ``generator_optimizer`` and
            ``critic_optimizer`` are unused; ``loss`` must be ``"wasserstein"``, the one zero-sum loss (the
            non-saturating and hinge losses give the players different objectives, which CGD's single ``f``
            cannot express).
    """

    needs_regularizer: ClassVar[bool] = False

    def __init__(
        self,
        generator: nn.Module,
        critic: nn.Module,
        competitive_optimizer: CompetitiveOptimizerCallable,
        n_critic: Literal[1] = 1,
        critic_scheduler: LRSchedulerCallable | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(generator, critic, n_critic=n_critic, critic_scheduler=critic_scheduler, **kwargs)
        if self.n_critic != 1 or critic_scheduler is not None or self.generator_batch_multiple != 1:
            raise ValueError(
                f"model.competitive_optimizer updates both players together: it needs model.n_critic=1 (got "
                f"{self.n_critic}), model.generator_batch_multiple=1 (got {self.generator_batch_multiple}) and no "
                "model.critic_scheduler (model.generator_scheduler schedules both)"
            )
        if self.loss != "wasserstein":
            raise ValueError(
                f"model.competitive_optimizer plays the zero-sum game f = E[D(real)] - E[D(fake)]: it needs "
                f"model.loss=wasserstein, got model.loss={self.loss} (whose generator and critic objectives differ)"
            )
        self._competitive_factory = competitive_optimizer

    @override
    def on_fit_start(self) -> None:
        super().on_fit_start()
        check_competitive(self.trainer)

    @override
    def training_step(self, batch: Any, batch_idx: int) -> None:
        """One simultaneous update of both players by ``model.competitive_optimizer``.

        Penalties see the fake batch detached, as in the alternating critic step.
        """
        real, labels = split_batch(batch, self.num_classes)  # (B, ...), (B,) or None
        critic = self._critic_fn(labels)  # x -> scores (B,), given the batch's labels
        log = self._should_log()
        values: dict[str, Tensor | float] = {}

        def objective() -> Tensor:
            fake = self.generate(self.noise(real.shape[0]), labels)  # keeps its graph to the generator
            critic_fake = critic(fake).mean()
            wasserstein = critic(real).mean() - critic_fake
            f = wasserstein
            for name, term in self._penalties(critic, real, fake.detach()).items():
                values[name] = term.detach()
                f = f - term
            values.update(wasserstein=wasserstein.detach(), gen_loss=-critic_fake.detach())
            self._guard_finite(log, f"competitive step {self.generator_steps + 1}", objective=f)
            return f

        self.optimizers().step(closure=objective)
        self._after_critic_step()
        self._after_generator_step()
        if log:
            groups = self.optimizers().param_groups
            values.update(lr_generator=groups[0]["lr"], lr_critic=groups[-1]["lr"])
            self._log_train(values, regularizer_stats=True)
        self._log_progress()

    @override
    def configure_optimizers(self) -> Any:
        """One optimizer over both players, with ``generator_scheduler`` (if any) scheduling it."""
        opt = self._competitive_factory(self.generator.parameters(), self.critic.parameters())
        schedule = self._scheduler_factories[0]
        return opt if schedule is None else ([opt], [schedule(opt)])


def check_competitive(trainer: pl.Trainer) -> None:
    """Simultaneous (CGD) training runs in full precision on one device.

    Raises:
        ValueError: With several processes or a precision other than 32 or 64 bits.
    """
    if trainer.world_size > 1:
        raise ValueError(
            f"model.competitive_optimizer runs on one device, got {trainer.world_size} processes; "
            "use --trainer.devices=1"
        )
    if str(trainer.precision) not in ("32-true", "64-true"):
        raise ValueError(
            f"model.competitive_optimizer needs full precision (its solver differentiates twice without a grad "
            f"scaler), got trainer.precision={trainer.precision}; use --trainer.precision=32"
        )
