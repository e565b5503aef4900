"""The WGAN-GP LightningModule: manual optimization alternating critic and generator steps."""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterable
from typing import Any

import lightning.pytorch as pl
import torch
from lightning.pytorch.cli import LRSchedulerCallable, OptimizerCallable
from lightning.pytorch.utilities import rank_zero_warn
from torch import Tensor, nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from typing_extensions import override

from src.callbacks.regularizer import CriticRegularizer
from src.models.conditional import as_labels, class_rows, num_classes_of
from src.utils.checkpoint import check_checkpoint_fits
from src.utils.divergence import assert_finite_parameters, check_finite
from src.utils.rng import collect_rng_states, restore_rng_states, seed_rank

# Builds one optimizer over both players from (generator parameters, critic parameters), e.g. src.optim.CGD.
CompetitiveOptimizerCallable = Callable[[Iterable, Iterable], torch.optim.Optimizer]


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

    Class-conditional networks (``num_classes > 0`` on both, e.g. :class:`~src.nets.ConditionalDCGANGenerator`
    and :class:`~src.nets.ProjectionDCGANCritic`) take labels as a second argument: real batches are
    ``(x, y)``, the critic step generates its fake batch with the real labels (so a penalty's interpolates
    share one label), the generator step draws labels uniformly.

    Args:
        generator: Maps noise (B, generator.latent_dim) to samples (B, *data_shape); a conditional one maps
            ``(noise, labels)``.
        critic: Maps samples (B, *data_shape) to scores (B,) or (B, 1); a conditional one maps ``(x, labels)``.
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
        ema_decay: Keep an exponential moving average of the generator's weights and buffers with this decay
            (e.g. 0.999), updated after every generator step; :meth:`sample` and evaluation then use it. It is
            part of the state dict, so checkpoints save and restore it. ``None``: no average.
        competitive_optimizer: Train both players *simultaneously* with one optimizer over
            ``(generator parameters, critic parameters)``, e.g. ``src.optim.CGD`` (competitive gradient
            descent) on ``f = E[D(real)] - E[D(G(z))] - penalties``, instead of alternating critic and generator
            steps. Needs ``n_critic=1``; ``generator_optimizer``/``critic_optimizer`` are then unused and
            ``generator_scheduler`` schedules both players. With it the run does not warn about a missing
            penalty: CGD's implicit competitive regularization is the point (Schäfer et al. 2020).
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
        ema_decay: float | None = None,
        competitive_optimizer: CompetitiveOptimizerCallable | None = None,
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
        self.num_classes = num_classes_of(generator, critic)  # 0: unconditional
        if self.num_classes:  # the sample grid shows one row per class
            self.register_buffer("fixed_labels", class_rows(num_fixed_samples, self.num_classes))
        self.generator_ema = _ema(generator, ema_decay)
        self._competitive_factory = competitive_optimizer
        if competitive_optimizer is not None and (self.n_critic != 1 or critic_scheduler is not None):
            raise ValueError(
                f"model.competitive_optimizer updates both players together: it needs model.n_critic=1 (got "
                f"{self.n_critic}) and no model.critic_scheduler (model.generator_scheduler schedules both)"
            )
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
        if self.num_classes:
            labels = as_labels(labels, noise.shape[0], self.num_classes, self.device)
        else:
            labels = None
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

    # ----------------------------------------------------------------------------------------- training
    @staticmethod
    def _real(batch: Any) -> Tensor:
        """The real samples of a batch: a tensor, or the first element of ``(x, y)``."""
        return batch[0] if isinstance(batch, (tuple, list)) else batch

    def _labels(self, batch: Any) -> Tensor | None:
        """The labels (B,) of an ``(x, y)`` batch for a conditional model; ``None`` when unconditional."""
        if not self.num_classes:
            return None
        if not isinstance(batch, (tuple, list)) or len(batch) < 2:
            raise ValueError(
                f"the networks are conditioned on {self.num_classes} classes but the data's batches carry no "
                "labels; use a labelled datamodule (digits, MNIST, CIFAR-10) or unconditional networks"
            )
        return batch[1]

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
        self._check_conditional_data()
        if self._competitive_factory is not None:
            _check_competitive(self.trainer)
        active = [r for r in self.regularizers if r.active]
        if not active and self._competitive_factory is None:
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
        if self.compile_networks and active:
            rank_zero_warn(
                "model.compile=true: the generator and the critic are compiled, but the critic runs eagerly "
                f"inside the penalties ({', '.join(type(r).__name__ for r in active)}): torch.compile cannot "
                "take their double backward (autograd.grad with create_graph=True)."
            )

    @override
    def training_step(self, batch: Any, batch_idx: int) -> None:
        if self._competitive_factory is not None:
            return self._competitive_step(batch)
        real, labels = self._real(batch), self._labels(batch)  # (B, ...), (B,) or None
        critic = self._critic_fn(labels)  # x -> scores (B,), given the batch's labels
        g_opt, c_opt = self.optimizers()
        log = self._should_log()

        # Critic step: one real batch, one fresh fake batch (with the real labels when conditional).
        with torch.no_grad():
            fake = self.generate(self.noise(real.shape[0]), labels)
        critic_real = critic(real).mean()
        critic_fake = critic(fake).mean()
        wasserstein = critic_real - critic_fake
        critic_loss = -wasserstein
        terms: dict[str, Tensor] = {}
        with self._eager_penalty():
            for reg in self.regularizers:
                term = reg.penalty(critic, real, fake)
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
            labels = self.random_labels(batch_size)  # (B,) uniform classes, or None
            gen_loss = -self.score(self.generate(self.noise(batch_size), labels), labels).mean()
            where = f"generator step {self.generator_steps + 1} (after critic step {self.critic_steps})"
            self._guard_finite(log, where, gen_loss=gen_loss)
            g_opt.zero_grad(set_to_none=True)
            self.manual_backward(gen_loss)
            if log:
                gen_grad_norm = _grad_norm(self.generator)
            g_opt.step()
        finally:
            self.critic.requires_grad_(True)
        self._after_generator_step()
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
        self._log_progress()

    def _after_generator_step(self) -> None:
        """Count the step, update the EMA generator and step the learning-rate schedules."""
        self.generator_steps += 1
        if self.generator_ema is not None:
            self.generator_ema.update_parameters(self.generator)
        for scheduler in self._schedulers():
            scheduler.step()

    def _log_progress(self) -> None:
        self.log("gen_step", float(self.generator_steps), prog_bar=True, logger=False)
        if self.max_generator_steps is not None and self.generator_steps >= self.max_generator_steps:
            self.trainer.should_stop = True

    def _competitive_step(self, batch: Any) -> None:
        """One simultaneous update of both players by ``model.competitive_optimizer`` (e.g. CGD).

        The objective is ``f = E[D(real)] - E[D(G(z))] - penalties``: the critic ascends it, the generator
        descends it. Penalties see the fake batch detached, as in the alternating critic step.
        """
        real, labels = self._real(batch), self._labels(batch)
        critic = self._critic_fn(labels)
        log = self._should_log()
        values: dict[str, Tensor] = {}

        def objective() -> Tensor:
            fake = self.generate(self.noise(real.shape[0]), labels)  # keeps its graph to the generator
            critic_fake = critic(fake).mean()
            wasserstein = critic(real).mean() - critic_fake
            f = wasserstein
            with self._eager_penalty():
                for reg in self.regularizers:
                    term = reg.penalty(critic, real, fake.detach())
                    if term is not None:
                        values[reg.name] = term.detach()
                        f = f - term
            values.update(wasserstein=wasserstein.detach(), gen_loss=-critic_fake.detach())
            where = f"competitive step {self.generator_steps + 1}"
            self._guard_finite(log, where, objective=f)
            return f

        self.optimizers().step(closure=objective)
        for reg in self.regularizers:
            reg.after_critic_step(self.critic)
        self.critic_steps += 1
        self._after_generator_step()
        if log:
            groups = self.optimizers().param_groups
            self.log_dict({f"train/{k}": v for k, v in values.items()}, sync_dist=True)
            self.log_dict({"train/lr_generator": groups[0]["lr"], "train/lr_critic": groups[-1]["lr"]})
            for reg in self.regularizers:
                for key, value in reg.stats.items():
                    self.log(f"train/{reg.name}_{key}", value, sync_dist=True)
        self._log_progress()

    def _check_conditional_data(self) -> None:
        """Fail early when conditional networks meet data with a different number of classes."""
        data_classes = getattr(self.trainer.datamodule, "num_classes", None) if self._trainer else None
        if not self.num_classes or data_classes is None or int(data_classes) == self.num_classes:
            return
        if int(data_classes) == 0:
            raise ValueError(
                f"the networks are conditioned on num_classes={self.num_classes} but the data carry no labels "
                f"(num_classes=0); use a labelled datamodule (digits, MNIST, CIFAR-10) or unconditional networks"
            )
        raise ValueError(
            f"the networks are conditioned on num_classes={self.num_classes} but the data has "
            f"num_classes={data_classes}; set model.generator.init_args.num_classes and "
            f"model.critic.init_args.num_classes to {data_classes}"
        )

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
        real, labels = self._real(batch), self._labels(batch)
        fake = self.sample(real.shape[0], labels=labels)
        wasserstein = self.score(real, labels).mean() - self.score(fake, labels).mean()
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
        if self._competitive_factory is not None:  # one optimizer over both players
            opt = self._competitive_factory(self.generator.parameters(), self.critic.parameters())
            schedule = self._scheduler_factories[0]
            return opt if schedule is None else ([opt], [schedule(opt)])
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


def _ema(generator: nn.Module, decay: float | None) -> AveragedModel | None:
    """An exponential moving average of the generator's weights and buffers (``None`` without a decay)."""
    if decay is None:
        return None
    if not 0.0 < decay < 1.0:
        raise ValueError(
            f"model.ema_decay must be in (0, 1) or null, got ema_decay={decay}; 0.999 is typical"
        )
    ema = AveragedModel(generator, multi_avg_fn=get_ema_multi_avg_fn(decay), use_buffers=True)
    return ema.requires_grad_(False)  # never trained, so DDP does not wait for its gradients


def _check_competitive(trainer: pl.Trainer) -> None:
    """Simultaneous (CGD) training runs in full precision on one device."""
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


def _grad_norm(module: nn.Module) -> Tensor:
    """Total L2 norm of a module's parameter gradients (0 when none)."""
    grads = [p.grad for p in module.parameters() if p.grad is not None]
    if not grads:
        return torch.zeros(())
    return torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads]))
