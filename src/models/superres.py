"""Super-resolution with WGAN-GP: the same alternating loop, conditioned on the low-resolution image of each HR one."""

from __future__ import annotations

from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from typing_extensions import override

from src.models.wgan_gp import WGANGP
from src.utils.degradation import bicubic_downsample

ContentLoss = Literal["l1", "mse"]


class SuperResolutionWGAN(WGANGP):
    """WGAN-GP for super-resolution (Chen & Tong 2017, "Face Super-Resolution Through Wasserstein GANs").

    The training loop, regularizers, EMA, checkpoints, DDP and NaN guard are :class:`~src.models.WGANGP`'s; only
    what the networks are conditioned on changes (:meth:`condition`):

    - a batch of HR images ``x`` (B, C, H, W), or ``(x, y)`` with class labels, is paired with its LR image by
      the degradation of :func:`~src.utils.degradation.bicubic_downsample` (antialiased bicubic, 8-bit LR);
      a batch ``(hr, lr)`` whose second element is an image batch is used as given (real LR photos);
    - the critic step scores the real HR images against the generator's output for the same LR images, so the
      penalty's interpolates lie between the real and the generated HR image of one LR image; a critic with
      ``condition=True`` also sees the (upsampled) LR image;
    - the generator step uses the same pairs: its loss is ``adversarial_weight · adversarial loss +
      content_weight · content loss (L1 or MSE to the HR image)``.

    ``adversarial_weight=0`` trains the content-only baseline (SRResNet-style): no critic step at all, one
    generator step per batch, and the critic's weights stay as initialised. ``content_weight=0`` is purely
    adversarial.

    Args:
        generator: Maps LR images (B, C, h, w) to HR ones (B, C, s·h, s·w), with an integer ``scale`` attribute
            (:class:`~src.nets.SRResNetGenerator`).
        critic: Maps HR images (B, C, H, W) (and, when its ``condition`` attribute is true, the LR images) to
            scores (B,) (:class:`~src.nets.PatchCritic`).
        content_loss: ``"l1"`` or ``"mse"``, on images in [-1, 1].
        content_weight: Weight of the content loss (>= 0).
        adversarial_weight: Weight of the adversarial loss in the generator's loss (>= 0; 0: content only).
        **kwargs: The options of :class:`~src.models.WGANGP` (``n_critic``, optimizers, ``ema_decay``, ``loss``, ...);
            ``generator_batch_multiple`` must be 1 (the generator step uses the batch's pairs).
    """

    #: The picture of an evaluation (LR | bicubic | SR | HR) replaces the noise sample grid.
    samples_from_noise = False

    def __init__(
        self,
        generator: nn.Module,
        critic: nn.Module,
        content_loss: ContentLoss = "l1",
        content_weight: float = 1.0,
        adversarial_weight: float = 1e-3,
        **kwargs: Any,
    ) -> None:
        if content_loss not in ("l1", "mse"):
            raise ValueError(f"model.content_loss must be 'l1' or 'mse', got content_loss={content_loss!r}")
        for name, value in (("content_weight", content_weight), ("adversarial_weight", adversarial_weight)):
            if not value >= 0:
                raise ValueError(f"model.{name} must be >= 0, got {name}={value}")
        if content_weight == 0 and adversarial_weight == 0:
            raise ValueError("model.content_weight and model.adversarial_weight are both 0: nothing to train")
        if kwargs.get("generator_batch_multiple", 1) != 1:
            raise ValueError(
                "model.generator_batch_multiple must be 1 for super-resolution: the generator step uses the "
                f"batch's (LR, HR) pairs, got generator_batch_multiple={kwargs['generator_batch_multiple']}"
            )
        scale = getattr(generator, "scale", None)
        if not isinstance(scale, int) or scale < 2:
            raise ValueError(
                f"the generator {type(generator).__name__} must have an integer attribute `scale` >= 2 "
                "(the upscaling factor), e.g. src.nets.SRResNetGenerator"
            )
        super().__init__(generator, critic, **kwargs)
        self.scale = scale
        self.content_loss, self.content_weight = content_loss, float(content_weight)
        self.adversarial_weight = float(adversarial_weight)
        self.needs_regularizer = self.adversarial_weight > 0
        self.critic_conditioned = bool(getattr(critic, "condition", False))

    # ------------------------------------------------------------------------------------- conditioning
    @override
    def condition(self, batch: Any) -> tuple[Tensor, Tensor]:
        """The HR images (B, C, H, W) of a batch and their LR images (B, C, H/s, W/s)."""
        if isinstance(batch, (tuple, list)):
            hr = batch[0]
            if len(batch) > 1 and isinstance(batch[1], Tensor) and batch[1].dim() == 4:
                return hr, batch[1]  # (HR, LR) pairs as given
        else:
            hr = batch
        return hr, self.degrade(hr)

    def degrade(self, hr: Tensor) -> Tensor:
        """The LR images (B, C, H/s, W/s) of HR images: antialiased bicubic downsampling, rounded to 8 bits."""
        return bicubic_downsample(hr, self.scale)

    @override
    def generator_condition(self, condition: Tensor | None, batch_size: int) -> Tensor | None:
        return condition  # the batch's own LR images

    @override
    def generate(
        self, noise: Tensor, labels: Tensor | None = None, generator: nn.Module | None = None
    ) -> Tensor:
        """The generator's HR images for the LR images ``labels`` (B, C, h, w); ``noise`` (B, 0) is unused."""
        if labels is None:
            raise ValueError("a super-resolution generator needs the LR images to upscale")
        return (self.generator if generator is None else generator)(labels)

    @override
    def critic_outputs(self, x: Tensor, labels: Tensor | None = None) -> tuple[Tensor, Tensor | None]:
        return super().critic_outputs(x, labels if self.critic_conditioned else None)

    @torch.no_grad()
    def upscale(self, lr: Tensor) -> Tensor:
        """Upscale LR images (B, C, h, w) in [-1, 1] with the sampling generator (the EMA copy when kept), in eval mode.

        Returns:
            HR images (B, C, s·h, s·w), clamped to [-1, 1].
        """
        generator = self.sampling_generator
        was_training = generator.training
        generator.eval()
        try:
            return generator(lr.to(self.device)).clamp(-1, 1)
        finally:
            generator.train(was_training)

    # ----------------------------------------------------------------------------------------- training
    def content(self, sr: Tensor, hr: Tensor) -> Tensor:
        """The content loss of SR images against HR images (a scalar)."""
        return F.l1_loss(sr, hr) if self.content_loss == "l1" else F.mse_loss(sr, hr)

    @override
    def generator_losses(
        self, fake: Tensor, real: Tensor, condition: Tensor | None
    ) -> tuple[Tensor, dict[str, Tensor]]:
        content = self.content(fake, real)
        extra = {"content_loss": content}
        loss = self.content_weight * content
        if self.adversarial_weight > 0:
            adversarial, _ = super().generator_losses(fake, real, condition)
            loss = loss + self.adversarial_weight * adversarial
            extra["gen_adversarial"] = adversarial
        return loss, extra

    @override
    def on_fit_start(self) -> None:
        if self.adversarial_weight > 0:
            super().on_fit_start()
        else:
            self._regularizers = []  # content only: no critic step, so no penalty either

    @override
    def training_step(self, batch: Any, batch_idx: int) -> None:
        if self.adversarial_weight > 0:
            super().training_step(batch, batch_idx)
            return
        hr, lr = self.condition(batch)
        g_opt, _ = self.optimizers()
        self._generator_step(hr.shape[0], g_opt, self._should_log(), hr, lr)

    # --------------------------------------------------------------------------------------- evaluation
    @override
    def _evaluate(self, batch: Any, prefix: str) -> None:
        hr, lr = self.condition(batch)
        sr = self.upscale(lr)
        self.log(f"{prefix}/content_loss", self.content(sr, hr), sync_dist=True)
        if self.adversarial_weight > 0:
            self.log(
                f"{prefix}/wasserstein", (self.score(hr, lr) - self.score(sr, lr)).mean(), sync_dist=True
            )
