"""The WGAN-GP LightningModule: manual optimization alternating critic and generator steps."""

from __future__ import annotations

import contextlib
from typing import Any

import lightning.pytorch as pl
import torch
from lightning.pytorch.cli import LRSchedulerCallable, OptimizerCallable
from lightning.pytorch.utilities import rank_zero_warn
from torch import Tensor, nn
from typing_extensions import override

from src.callbacks.regularizer import CriticRegularizer
from src.utils.checkpoint import check_checkpoint_fits
from src.utils.divergence import assert_finite_parameters, check_finite
from src.utils.rng import collect_rng_states, restore_rng_states, seed_rank


def _adam_paper(params: Any) -> torch.optim.Optimizer:
    """Adam with the paper's Algorithm 1 defaults: lr 1e-4, betas (0.0, 0.9)."""
    return torch.optim.Adam(params, lr=1e-4, betas=(0.0, 0.9))


class WGANGP(pl.LightningModule):
    """Wasserstein GAN trained with manual optimization (Gulrajani et al. 2017, Algorithm 1).

    Every ``training_step`` takes one real batch and makes one critic update; every ``n_critic``-th step also
    makes one generator update. The critic loss is ``E[D(fake)] - E[D(real)]`` plus the terms of every
    :class:`~src.callbacks.CriticRegularizer` in ``trainer.callbacks``, all in a single ``manual_backward``.

    ``trainer.global_step`` counts the steps of both optimizers, so the module keeps its own counters,
    :attr:`critic_steps` and :attr:`generator_steps`, saved in checkpoints.

    Args:
        generator: Maps noise (B, generator.latent_dim) to samples (B, *data_shape).
        critic: Maps samples (B, *data_shape) to scores (B,) or (B, 1).
        n_critic: Critic updates per generator update (5 in the paper).
        generator_optimizer: Builds the generator's optimizer; default Adam(lr=1e-4, betas=(0.0, 0.9)).
        critic_optimizer: Builds the critic's optimizer; default Adam(lr=1e-4, betas=(0.0, 0.9)).
        generator_scheduler: Optional learning-rate schedule, stepped once per generator step.
        critic_scheduler: Optional learning-rate schedule, stepped once per generator step.
        max_generator_steps: Stop training after this many generator updates (``None``: no limit).
        num_fixed_samples: Size of the fixed noise batch used for sample grids (a buffer, so it is saved).
        compile: ``torch.compile`` the generator and the critic (in place, so checkpoints keep their keys).
            The regularizers' penalties still run the critic eagerly: torch.compile cannot differentiate
            twice, and the gradient penalty needs a double backward.
    """

    def __init__(
        self,
        generator: nn.Module,
        critic: nn.Module,
        n_critic: int = 5,
        generator_optimizer: OptimizerCallable | None = None,
        critic_optimizer: OptimizerCallable | None = None,
        generator_scheduler: LRSchedulerCallable | None = None,
        critic_scheduler: LRSchedulerCallable | None = None,
        max_generator_steps: int | None = None,
        num_fixed_samples: int = 64,
        compile: bool = False,
    ) -> None:
        super().__init__()
        if int(n_critic) != n_critic or n_critic < 1:
            raise ValueError(
                f"model.n_critic must be an integer >= 1, got n_critic={n_critic}; the paper uses 5"
            )
        if max_generator_steps is not None and max_generator_steps < 1:
            raise ValueError(
                f"model.max_generator_steps must be >= 1 or null, got max_generator_steps={max_generator_steps}"
            )
        if num_fixed_samples < 1:
            raise ValueError(f"model.num_fixed_samples must be >= 1, got {num_fixed_samples}")
        if not hasattr(generator, "latent_dim"):
            raise ValueError(
                f"the generator {type(generator).__name__} must have an integer attribute `latent_dim`"
            )
        self.save_hyperparameters(ignore=["generator", "critic"])
        self.automatic_optimization = False
        self.generator = generator
        self.critic = critic
        self.n_critic = int(n_critic)
        self.max_generator_steps = max_generator_steps
        self._optimizer_factories = (generator_optimizer or _adam_paper, critic_optimizer or _adam_paper)
        self._scheduler_factories = (generator_scheduler, critic_scheduler)
        self.critic_steps = 0
        self.generator_steps = 0
        self.register_buffer("fixed_noise", torch.randn(num_fixed_samples, self.latent_dim))
        self._regularizers: list[CriticRegularizer] | None = None
        self.compile_networks = bool(compile)
        if self.compile_networks:
            if not hasattr(torch.compiler, "set_stance"):
                raise ValueError(f"model.compile=true needs torch >= 2.6 (this is {torch.__version__})")
            self.generator.compile()
            self.critic.compile()

    @property
    def latent_dim(self) -> int:
        """Size of the generator's noise vector."""
        return int(self.generator.latent_dim)

    # ----------------------------------------------------------------------------------------- sampling
    def noise(self, n: int) -> Tensor:
        """Standard normal noise (n, latent_dim) on the module's device."""
        return torch.randn(n, self.latent_dim, device=self.device)

    @torch.no_grad()
    def sample(self, n: int | None = None, noise: Tensor | None = None) -> Tensor:
        """Generate samples in data space (images in [-1, 1]) without grad, with the generator in eval mode.

        Args:
            n: Number of samples; ignored when ``noise`` is given.
            noise: Optional noise (n, latent_dim); defaults to fresh standard normal noise.

        Returns:
            Samples (n, *data_shape) on the module's device.
        """
        if noise is None:
            if n is None:
                raise ValueError("sample() needs n or noise")
            noise = self.noise(n)
        was_training = self.generator.training
        self.generator.eval()
        try:
            return self.generator(noise.to(self.device))
        finally:
            self.generator.train(was_training)

    def score(self, x: Tensor) -> Tensor:
        """Critic scores as a flat vector (B,)."""
        return self.critic(x).reshape(x.shape[0])

    # ----------------------------------------------------------------------------------------- training
    @staticmethod
    def _real(batch: Any) -> Tensor:
        """The real samples of a batch: a tensor, or the first element of ``(x, y)``."""
        return batch[0] if isinstance(batch, (tuple, list)) else batch

    @property
    def regularizers(self) -> list[CriticRegularizer]:
        """The regularizer callbacks whose terms enter the critic loss."""
        if self._regularizers is None:
            callbacks = self.trainer.callbacks if self._trainer is not None else []
            self._regularizers = [cb for cb in callbacks if isinstance(cb, CriticRegularizer)]
        return self._regularizers

    def _should_log(self) -> bool:
        connector = getattr(self.trainer, "_logger_connector", None)
        return bool(getattr(connector, "should_update_logs", True))

    @override
    def setup(self, stage: str) -> None:
        if stage == "fit":  # each DDP rank draws its own noise and interpolation ε (see src/utils/rng.py)
            seed_rank(self.trainer.global_rank, self.trainer.world_size)

    @override
    def on_fit_start(self) -> None:
        self._regularizers = None
        active = [r for r in self.regularizers if r.active]
        if not active:
            rank_zero_warn(
                "No active critic regularizer is configured: the critic is unconstrained and the Wasserstein "
                "estimate is meaningless. Add one, e.g. `--regularizer=src.callbacks.GradientPenalty`."
            )
        if any(r.per_sample for r in active):
            batchnorms = [
                name
                for name, m in self.critic.named_modules()
                if isinstance(m, nn.modules.batchnorm._BatchNorm)
            ]
            if batchnorms:
                rank_zero_warn(
                    f"The critic contains BatchNorm ({', '.join(batchnorms)}) while a per-sample penalty "
                    f"({', '.join(type(r).__name__ for r in active)}) is active. BatchNorm couples the samples "
                    "of a batch and invalidates the penalty (Gulrajani et al. 2017, section 4); use no "
                    "normalization or LayerNorm in the critic (e.g. --model.critic.init_args.norm=layer)."
                )

    @override
    def training_step(self, batch: Any, batch_idx: int) -> None:
        real = self._real(batch)  # (B, ...)
        g_opt, c_opt = self.optimizers()
        log = self._should_log()

        # Critic step: one real batch, one fresh fake batch.
        with torch.no_grad():
            fake = self.generator(self.noise(real.shape[0]))
        critic_real = self.score(real).mean()
        critic_fake = self.score(fake).mean()
        wasserstein = critic_real - critic_fake
        critic_loss = -wasserstein
        terms: dict[str, Tensor] = {}
        with self._eager_penalty():
            for reg in self.regularizers:
                term = reg.penalty(self.score, real, fake)
                if term is not None:
                    terms[reg.name] = term
                    critic_loss = critic_loss + term
        where = f"critic step {self.critic_steps + 1} (after generator step {self.generator_steps})"
        self._guard_finite(log, where, critic_loss=critic_loss, wasserstein=wasserstein)
        c_opt.zero_grad(set_to_none=True)
        self.manual_backward(critic_loss)
        if log:
            critic_grad_norm = _grad_norm(self.critic)
        c_opt.step()
        for reg in self.regularizers:
            reg.after_critic_step(self.critic)
        self.critic_steps += 1

        if log:
            self.log_dict(
                {
                    "train/critic_loss": critic_loss.detach(),
                    "train/wasserstein": wasserstein.detach(),
                    "train/critic_real": critic_real.detach(),
                    "train/critic_fake": critic_fake.detach(),
                    "train/critic_grad_norm": critic_grad_norm,
                },
                prog_bar=False,
                sync_dist=True,  # the mean over ranks: the estimate on the global batch
            )
            for name, term in terms.items():
                self.log(f"train/{name}", term.detach(), sync_dist=True)
            for reg in self.regularizers:
                for key, value in reg.stats.items():
                    self.log(f"train/{reg.name}_{key}", value, sync_dist=True)

        if self.critic_steps % self.n_critic == 0:
            self._generator_step(real.shape[0], g_opt, log)

    def _generator_step(self, batch_size: int, g_opt: Any, log: bool) -> None:
        self.critic.requires_grad_(False)  # the critic is frozen during the generator step
        try:
            gen_loss = -self.score(self.generator(self.noise(batch_size))).mean()
            where = f"generator step {self.generator_steps + 1} (after critic step {self.critic_steps})"
            self._guard_finite(log, where, gen_loss=gen_loss)
            g_opt.zero_grad(set_to_none=True)
            self.manual_backward(gen_loss)
            if log:
                gen_grad_norm = _grad_norm(self.generator)
            g_opt.step()
        finally:
            self.critic.requires_grad_(True)
        self.generator_steps += 1
        for scheduler in self._schedulers():
            scheduler.step()
        if log:
            g_lr = g_opt.param_groups[0]["lr"] if hasattr(g_opt, "param_groups") else float("nan")
            self.log_dict(
                {
                    "train/gen_loss": gen_loss.detach(),
                    "train/gen_grad_norm": gen_grad_norm,
                    "train/lr_generator": g_lr,
                    "train/lr_critic": self.optimizers()[1].param_groups[0]["lr"],
                    "train/generator_steps": float(self.generator_steps),
                },
                prog_bar=False,
                sync_dist=True,
            )
        self.log("gen_step", float(self.generator_steps), prog_bar=True, logger=False)
        if self.max_generator_steps is not None and self.generator_steps >= self.max_generator_steps:
            self.trainer.should_stop = True

    def _eager_penalty(self) -> contextlib.AbstractContextManager:
        """Run the penalties eagerly when the networks are compiled (torch.compile has no double backward)."""
        return torch.compiler.set_stance("force_eager") if self.compile_networks else contextlib.nullcontext()

    def _guard_finite(self, log: bool, where: str, **losses: Tensor) -> None:
        """Stop with ``TrainingDivergedError`` before the optimizer step when a loss is NaN or Inf.

        Checked every step on the CPU, where it is free, and at logging steps on accelerators, where it costs
        a device sync; ``on_save_checkpoint`` checks the weights before every save in any case.
        """
        if self.device.type != "cpu" and not log:
            return
        scaler = getattr(self.trainer.precision_plugin, "scaler", None)
        if scaler is not None and scaler.is_enabled() and len(losses) > 1:
            # fp16: the scaled penalty gradient may overflow to inf; the GradScaler then skips the step and
            # lowers its scale, so only the critic's scores are checked.
            losses.pop("critic_loss", None)
        checkpoint = self.trainer.checkpoint_callback
        last = getattr(checkpoint, "last_model_path", "") or getattr(checkpoint, "best_model_path", "")
        check_finite(losses, self.trainer.strategy, where, last or None)

    def _schedulers(self) -> list[Any]:
        schedulers = self.lr_schedulers()
        if schedulers is None:
            return []
        return schedulers if isinstance(schedulers, list) else [schedulers]

    # --------------------------------------------------------------------------------------- evaluation
    def _evaluate(self, batch: Any, prefix: str) -> None:
        real = self._real(batch)
        wasserstein = self.score(real).mean() - self.score(self.sample(real.shape[0])).mean()
        self.log(f"{prefix}/wasserstein", wasserstein, sync_dist=True)

    @override
    def validation_step(self, batch: Any, batch_idx: int) -> None:
        self._evaluate(batch, "val")

    @override
    def test_step(self, batch: Any, batch_idx: int) -> None:
        self._evaluate(batch, "test")

    # ----------------------------------------------------------------------------------- optimizers/ckpt
    @override
    def configure_optimizers(self) -> Any:
        make_g, make_c = self._optimizer_factories
        g_opt, c_opt = make_g(self.generator.parameters()), make_c(self.critic.parameters())
        schedulers = []
        for factory, opt in zip(self._scheduler_factories, (g_opt, c_opt)):
            if factory is not None:
                schedulers.append(factory(opt))
        if not schedulers:
            return [g_opt, c_opt]
        return [g_opt, c_opt], schedulers

    @override
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        where = f"generator step {self.generator_steps} (critic step {self.critic_steps})"
        assert_finite_parameters(self, where)  # never write NaN weights
        strategy = self.trainer.strategy if self._trainer is not None else None
        checkpoint["wgan_gp"] = {
            "critic_steps": self.critic_steps,
            "generator_steps": self.generator_steps,
            # every rank's noise stream, so a resumed run matches a straight one (a collective under DDP)
            "rng": collect_rng_states(strategy),
        }

    @override
    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        if self.strict_loading:
            check_checkpoint_fits(self, checkpoint, self.trainer.ckpt_path if self._trainer is not None else None)
        counters = checkpoint.get("wgan_gp", {})
        self.critic_steps = int(counters.get("critic_steps", 0))
        self.generator_steps = int(counters.get("generator_steps", 0))
        if self._trainer is None or self.trainer.state.fn != "fit":
            return  # loading to evaluate or sample leaves the process's RNG alone
        if "rng" in counters:
            restore_rng_states(counters["rng"], self.trainer.global_rank)
        elif "torch_rng_state" in counters:
            torch.set_rng_state(counters["torch_rng_state"].cpu())


def _grad_norm(module: nn.Module) -> Tensor:
    """Total L2 norm of a module's parameter gradients (0 when none)."""
    grads = [p.grad for p in module.parameters() if p.grad is not None]
    if not grads:
        return torch.zeros(())
    return torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads]))
