"""The WGAN-GP LightningModule: manual optimization alternating critic and generator steps."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any, ClassVar

import lightning.pytorch as pl
import torch
from lightning.pytorch.cli import LRSchedulerCallable, OptimizerCallable
from torch import Tensor, nn
from typing_extensions import override

from src.models import aux_classifier, fit_checks, losses
from src.models.ema import generator_ema
from src.models.eval_rng import EvaluationRNGMixin
from src.models.grad_norm import grad_norm
from src.models.safe_loading import SafeLoadingMixin
from src.models.sampling import SampleBN, SamplingMixin, check_sample_bn
from src.models.training_state import load_training_state, save_training_state
from src.nets.labels import class_rows, num_classes_of, split_batch
from src.regularizers import CriticRegularizer
from src.utils.divergence import check_step_losses
from src.utils.rng import seed_rank


def _adam_paper(params: Any) -> torch.optim.Optimizer:
    """Adam with the paper's Algorithm 1 defaults: lr 1e-4, betas (0.0, 0.9)."""
    return torch.optim.Adam(params, lr=1e-4, betas=(0.0, 0.9))


class WGANGP(EvaluationRNGMixin, SamplingMixin, SafeLoadingMixin, pl.LightningModule):
    """Wasserstein GAN trained with manual optimization (Gulrajani et al. 2017, Algorithm 1).

    Every ``training_step`` takes one real batch and makes one critic update; every ``n_critic``-th step also
    makes one generator update. The critic loss is ``E[D(fake)] - E[D(real)]`` (or the ``loss`` chosen) plus the
    terms of every :class:`~src.regularizers.CriticRegularizer` in ``trainer.callbacks``, all in a single
    ``manual_backward``.

    ``trainer.global_step`` counts the steps of both optimizers, so the module keeps its own counters,
    :attr:`critic_steps` and :attr:`generator_steps`, saved in checkpoints.

    Class-conditional networks (``num_classes > 0`` on both, e.g. :class:`~src.nets.ConditionalDCGANGenerator`
    and :class:`~src.nets.ProjectionDCGANCritic`) take labels as a second argument: real batches are
    ``(x, y)``, the critic step generates its fake batch with the real labels (so a penalty's interpolates
    share one label), the generator step draws labels uniformly.

    :class:`~src.models.CompetitiveWGAN` updates both players simultaneously instead (e.g. by CGD).

    Evaluations leave training's randomness alone (:mod:`src.models.eval_rng`): training draws the same
    noise and data whether, and how often, they run.

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
        loss: The adversarial loss (:mod:`src.models.losses`): ``"wasserstein"`` (the paper), ``"non_saturating"``
            (the GAN loss R1, R2 and DRAGAN are used with) or ``"hinge"`` (SN-GAN, BigGAN). ``train/wasserstein``
            logs ``E[D(real)] - E[D(fake)]`` whatever the loss.
        generator_batch_multiple: The generator step's batch as a multiple of the critic's (2: ``gan_cifar_resnet.py``).
        sample_bn: BatchNorm statistics in :meth:`sample` (grids, evaluation): ``"running"`` or ``"batch"`` (the paper's).
    """

    #: Warn at fit start when no active regularizer constrains the critic.
    needs_regularizer: ClassVar[bool] = True
    #: Prefix of the keys logged by ``test`` (``src.train`` sets ``test_best`` to test the best checkpoint).
    test_prefix: str = "test"

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
        loss: losses.Loss = "wasserstein",
        generator_batch_multiple: int = 1,
        sample_bn: SampleBN = "running",
    ) -> None:
        super().__init__()
        self.loss = losses.check_loss(loss)
        self.sample_bn = check_sample_bn(sample_bn)
        self.n_critic = fit_checks.integer_option("n_critic", n_critic, paper=5)
        self.generator_batch_multiple = fit_checks.integer_option(
            "generator_batch_multiple", generator_batch_multiple, 2
        )
        fit_checks.check_module_options(generator, max_generator_steps, num_fixed_samples)
        self.save_hyperparameters(ignore=["generator", "critic"])
        self.automatic_optimization = False
        self.generator = generator
        self.critic = critic
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
        self.generator_ema = generator_ema(generator, ema_decay)
        self.compile_networks = bool(compile)
        if self.compile_networks:
            if not hasattr(torch.compiler, "set_stance"):
                raise ValueError(f"model.compile=true needs torch >= 2.6 (this is {torch.__version__})")
            self.generator.compile()
            self.critic.compile()

    # ----------------------------------------------------------------------------------------- training
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
        fit_checks.check_conditional_data(self.num_classes, self.trainer.datamodule)
        active = [r for r in self.regularizers if r.active]
        if self.needs_regularizer:
            fit_checks.warn_unconstrained_critic(active, self.loss, self.critic)
        fit_checks.warn_batchnorm_in_critic(self.critic, active)
        fit_checks.warn_compiled_penalties(self.compile_networks, active)

    @override
    def training_step(self, batch: Any, batch_idx: int) -> None:
        real, labels = self.condition(batch)  # (B, ...), and labels (B,), an LR image (B, C, h, w) or None
        critic = self._critic_fn(labels)  # x -> scores (B,), given the batch's labels
        g_opt, c_opt = self.optimizers()
        log = self._should_log()

        # Critic step: one real batch, one fresh fake batch (with the real labels when conditional).
        with torch.no_grad():
            fake = self.generate(self.noise(real.shape[0]), labels)
        real_scores, real_logits = self.critic_outputs(real, labels)  # (B,), AC-GAN logits (B, K) or None
        fake_scores, fake_logits = self.critic_outputs(fake, labels)  # (B,), AC-GAN logits (B, K) or None
        critic_real, critic_fake = real_scores.mean(), fake_scores.mean()
        wasserstein = critic_real - critic_fake
        critic_loss = losses.critic_loss(self.loss, real_scores, fake_scores)
        terms = self._penalties(critic, real, fake)
        terms.update(aux_classifier.terms(self.critic, real_logits, labels, "critic"))  # AC-GAN: CE on reals
        for term in terms.values():
            critic_loss = critic_loss + term
        where = f"critic step {self.critic_steps + 1} (after generator step {self.generator_steps})"
        self._guard_finite(log, where, critic_loss=critic_loss, wasserstein=wasserstein)
        c_opt.zero_grad(set_to_none=True)
        self.manual_backward(critic_loss)  # the one backward: the loss and every regularizer's term
        if log:
            critic_grad_norm = grad_norm(self.critic, self._trainer)
        c_opt.step()
        self._after_critic_step()

        if log:
            values = {"critic_loss": critic_loss, "wasserstein": wasserstein, "critic_real": critic_real}
            values.update(critic_fake=critic_fake, critic_grad_norm=critic_grad_norm, **terms)
            values.update(aux_classifier.accuracies(real_logits, fake_logits, labels))  # AC-GAN only
            self._log_train(values, regularizer_stats=True)

        if self.critic_steps % self.n_critic == 0:
            self._generator_step(real.shape[0] * self.generator_batch_multiple, g_opt, log, real, labels)

    def generator_losses(self, fake: Tensor, real: Tensor, condition: Tensor | None) -> tuple[Tensor, dict]:
        """The generator's loss on ``fake`` (adversarial, plus AC-GAN's term) and extra values to log."""
        scores, logits = self.critic_outputs(fake, condition)  # (B,)
        aux = aux_classifier.terms(self.critic, logits, condition, "generator")  # AC-GAN: CE on the fakes
        return losses.generator_loss(self.loss, scores) + sum(aux.values()), {}

    def _generator_step(
        self, batch_size: int, g_opt: Any, log: bool, real: Tensor, condition: Any = None
    ) -> None:
        self.critic.requires_grad_(False)  # the critic is frozen during the generator step
        try:
            labels = self.generator_condition(condition, batch_size)
            gen_loss, extra = self.generator_losses(
                self.generate(self.noise(batch_size), labels), real, labels
            )
            where = f"generator step {self.generator_steps + 1} (after critic step {self.critic_steps})"
            self._guard_finite(log, where, gen_loss=gen_loss)
            g_opt.zero_grad(set_to_none=True)
            self.manual_backward(gen_loss)
            if log:
                gen_grad_norm = grad_norm(self.generator, self._trainer)
            g_opt.step()
        finally:
            self.critic.requires_grad_(True)
        self._after_generator_step()
        if log:
            g_lr = g_opt.param_groups[0]["lr"] if hasattr(g_opt, "param_groups") else float("nan")
            c_lr = self.optimizers()[1].param_groups[0]["lr"]
            values = {"gen_loss": gen_loss, "gen_grad_norm": gen_grad_norm, "lr_generator": g_lr, **extra}
            self._log_train({**values, "lr_critic": c_lr, "generator_steps": float(self.generator_steps)})
        self._log_progress()

    def _penalties(self, critic: Callable[[Tensor], Tensor], real: Tensor, fake: Tensor) -> dict[str, Tensor]:
        """Every regularizer's term by name, run eagerly when the networks are compiled.

        torch.compile cannot take the double backward of a gradient penalty.
        """
        terms: dict[str, Tensor] = {}
        with torch.compiler.set_stance("force_eager") if self.compile_networks else contextlib.nullcontext():
            for reg in self.regularizers:
                term = reg.penalty(critic, real, fake)
                if term is not None:
                    terms[reg.name] = term
        return terms

    def _after_critic_step(self) -> None:
        """Run the regularizers' post-step hooks (e.g. weight clipping) and count the step."""
        for reg in self.regularizers:
            reg.after_critic_step(self.critic)
        self.critic_steps += 1

    def _after_generator_step(self) -> None:
        """Count the step, update the EMA generator and step the learning-rate schedules."""
        self.generator_steps += 1
        if self.generator_ema is not None:
            self.generator_ema.update_parameters(self.generator)
        for scheduler in self._schedulers():
            scheduler.step()

    def _log_train(self, values: dict[str, Tensor | float], regularizer_stats: bool = False) -> None:
        """Log ``values`` as ``train/<key>``, and the regularizers' stats as ``train/<name>_<key>``.

        ``sync_dist``: the mean over ranks, i.e. the estimate on the global batch.
        """
        logged = {f"train/{k}": v.detach() if isinstance(v, Tensor) else v for k, v in values.items()}
        if regularizer_stats:
            for reg in self.regularizers:
                logged.update({f"train/{reg.name}_{key}": value for key, value in reg.stats.items()})
        self.log_dict(logged, sync_dist=True)

    def _log_progress(self) -> None:
        self.log("gen_step", float(self.generator_steps), prog_bar=True, logger=False)
        if self.max_generator_steps is not None and self.generator_steps >= self.max_generator_steps:
            self.trainer.should_stop = True

    def _guard_finite(self, log: bool, where: str, **losses: Tensor) -> None:
        """Stop with ``TrainingDivergedError`` before the optimizer step when a loss is NaN or Inf.

        Checked every step on the CPU, where it is free, and at logging steps on accelerators, where it costs
        a device sync; ``on_save_checkpoint`` checks the weights before every save in any case.
        """
        if self.device.type == "cpu" or log:
            check_step_losses(self.trainer, losses, where)

    def _schedulers(self) -> list[Any]:
        schedulers = self.lr_schedulers()  # None, one, or a list
        return [] if schedulers is None else schedulers if isinstance(schedulers, list) else [schedulers]

    # --------------------------------------------------------------------------------------- evaluation
    def _evaluate(self, batch: Any, prefix: str) -> None:
        real, labels = split_batch(batch, self.num_classes)
        noise = self.eval_noise(real.shape[0], self.latent_dim)  # (B, Z): not the training RNG
        fake = self.sample(noise=noise, labels=labels)
        wasserstein = self.score(real, labels).mean() - self.score(fake, labels).mean()
        self.log(f"{prefix}/wasserstein", wasserstein, sync_dist=True)

    @override
    def validation_step(self, batch: Any, batch_idx: int) -> None:
        self._evaluate(batch, "val")

    @override
    def test_step(self, batch: Any, batch_idx: int) -> None:
        self._evaluate(batch, self.test_prefix)

    # ----------------------------------------------------------------------------------- optimizers/ckpt
    @override
    def configure_optimizers(self) -> Any:
        make_g, make_c = self._optimizer_factories
        optimizers = [make_g(self.generator.parameters()), make_c(self.critic.parameters())]
        schedulers = [
            make(opt) for make, opt in zip(self._scheduler_factories, optimizers) if make is not None
        ]
        return (optimizers, schedulers) if schedulers else optimizers

    @override
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        self.with_training_rng(  # never NaN weights; the RNG training resumes from, even mid-evaluation
            lambda: save_training_state(checkpoint, self, self.critic_steps, self.generator_steps)
        )

    @override
    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        self.critic_steps, self.generator_steps = load_training_state(checkpoint, self)
        self._ema_statistics_at = None  # new EMA weights: recompute their BatchNorm statistics
