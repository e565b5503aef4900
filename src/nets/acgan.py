"""The AC-GAN critic of the paper's conditional CIFAR-10 model (``gan_cifar_resnet.py`` with ``ACGAN = True``).

The critic's score ignores the labels; a second linear head on the same features classifies the image
(Odena et al. 2017). The paper's Inception score of 8.42 was obtained with it and the conditional-BatchNorm
ResNet generator (:class:`~src.nets.ConditionalResNetGenerator`).

A critic with an auxiliary classifier returns ``(scores (B,), logits (B, num_classes))`` and has
``aux_weights = (critic weight, generator weight)``; :class:`~src.models.WGANGP` then adds
``critic weight · CE(logits(real), labels)`` to the critic's loss and ``generator weight · CE(logits(G(z, y)), y)``
to the generator's, as the released code does (``ACGAN_SCALE = 1``, ``ACGAN_SCALE_G = 0.1``). The gradient
penalty sees the scores only.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch.nn.functional as F
from torch import Tensor, nn

from src.nets.init import Init, init_weights
from src.nets.resnet import ResNetCritic


class ACGANResNetCritic(ResNetCritic):
    """The paper's ResNet critic with an auxiliary classifier: ``(images, labels)`` -> ``(scores, logits)``.

    Args:
        data_shape: ``(C, H, W)`` with ``H = 4 * 2**k``; linked from the datamodule.
        dim: Channels of every residual block (128 in the paper).
        num_classes: Number of classes (the classifier's outputs).
        critic_weight: Weight of the cross-entropy on real images in the critic's loss (``ACGAN_SCALE``, 1).
        generator_weight: Weight of the cross-entropy on generated images in the generator's loss
            (``ACGAN_SCALE_G``, 0.1).
        init: ``"torch"`` or ``"paper"``; see :class:`~src.nets.ResNetCritic` (the classifier is Glorot, as
            tflib's ``Discriminator.ACGANOutput``).
    """

    def __init__(
        self,
        data_shape: Sequence[int] = (3, 32, 32),
        dim: int = 128,
        num_classes: int = 10,
        critic_weight: float = 1.0,
        generator_weight: float = 0.1,
        init: Init = "torch",
    ) -> None:
        if num_classes < 1:
            raise ValueError(f"the AC-GAN critic needs num_classes >= 1, got num_classes={num_classes}")
        if critic_weight < 0 or generator_weight < 0:
            raise ValueError(
                f"AC-GAN weights must be >= 0, got critic_weight={critic_weight}, generator_weight={generator_weight}"
            )
        super().__init__(data_shape, dim, init=init)
        self.num_classes = num_classes
        self.aux_weights = (float(critic_weight), float(generator_weight))
        self.classifier = nn.Linear(dim, num_classes)
        init_weights(self.classifier, init)

    def forward(self, x: Tensor, labels: Tensor) -> tuple[Tensor, Tensor]:  # type: ignore[override]
        """Scores (B,), which do not depend on ``labels``, and class logits (B, num_classes)."""
        h = F.relu(self.blocks(x)).mean(dim=(2, 3))  # (B, dim)
        return self.head(h).squeeze(1), self.classifier(h)
