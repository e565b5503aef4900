"""The auxiliary-classifier (AC-GAN) term of both players' losses, for a critic with a classifier head.

A critic that returns ``(scores, logits)`` (:class:`~src.nets.ACGANResNetCritic`) classifies its input; as in
the paper's ``gan_cifar_resnet.py``, the critic's loss gains ``w_critic · CE(logits(real), labels)`` (real
images only) and the generator's ``w_generator · CE(logits(G(z, y)), y)``. The weights are the critic's
``aux_weights`` (1 and 0.1 in the paper's code; 1 and 1 when a critic does not say). :func:`accuracies` gives
the classifier's accuracy on the real and on the generated batch of a critic step, which the released code
logs as ``train acc`` and ``fake acc``.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

_PLAYERS = {"critic": 0, "generator": 1}


def terms(
    critic: nn.Module, logits: Tensor | None, labels: Tensor | None, player: Literal["critic", "generator"]
) -> dict[str, Tensor]:
    """``{"aux_ce": weighted cross-entropy of the critic's class logits}``; empty when the critic has no classifier.

    Args:
        critic: The critic; its ``aux_weights`` are ``(critic weight, generator weight)``.
        logits: Class logits (B, K) from :meth:`~src.models.WGANGP.critic_outputs`, or ``None``.
        labels: The classes (B,) of the scored images.
        player: Whose loss the term joins: ``"critic"`` or ``"generator"``.

    Raises:
        ValueError: When the critic classifies but the batch has no labels.
    """
    if logits is None:
        return {}
    if labels is None:
        raise ValueError(
            f"the critic {type(critic).__name__} has a classifier head (AC-GAN) but the batch has no labels: "
            "set its num_classes and use a labelled datamodule with a conditional generator"
        )
    weight = tuple(getattr(critic, "aux_weights", (1.0, 1.0)))[_PLAYERS[player]]
    return {"aux_ce": weight * F.cross_entropy(logits.float(), labels)}


def accuracies(
    real_logits: Tensor | None, fake_logits: Tensor | None, labels: Tensor | None
) -> dict[str, Tensor]:
    """``{"aux_acc_real", "aux_acc_fake"}``: the share of real and of generated images classified as their label.

    The generated images of a critic step are drawn with the real batch's labels, so both use ``labels``
    (B,). Empty when the critic has no classifier head.
    """
    if real_logits is None or fake_logits is None or labels is None:
        return {}
    with torch.no_grad():
        return {
            "aux_acc_real": (real_logits.argmax(1) == labels).float().mean(),
            "aux_acc_fake": (fake_logits.argmax(1) == labels).float().mean(),
        }
