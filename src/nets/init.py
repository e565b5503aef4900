"""Weight initialisation of the networks: PyTorch's default, or the paper's (tflib, igul222/improved_wgan_training).

tflib draws every weight from a uniform distribution with a given standard deviation (range ``±std·√3``) and
sets every bias to zero:

- ``Linear`` (``tflib/ops/linear.py``): ``initialization='he'``, used for the toy MLPs' ReLU layers, gives
  ``std = √(2 / fan_in)``; the default (``'glorot'``, used for every other linear layer: outputs, the
  generators' input projections) gives ``std = √(2 / (fan_in + fan_out))``.
- ``Conv2D`` and ``Deconv2D`` (``tflib/ops/conv2d.py``, ``deconv2d.py``): ``he_init=True``, the default, gives
  ``std = √(4 / (fan_in + fan_out))``; ``he_init=False`` (the ResNets' 1x1 shortcuts and the ResNet generator's
  output convolution) gives ``std = √(2 / (fan_in + fan_out))``. With a stride ``s``, a convolution has
  ``fan_in = C_in·k²`` and ``fan_out = C_out·k² / s²``; a transposed convolution ``fan_in = C_in·k² / s²`` and
  ``fan_out = C_out·k²``.

PyTorch's default (``kaiming_uniform_(a=√5)``) has ``std = 1/√(3·fan_in)``, about 2.45x smaller than He.
BatchNorm keeps gain 1 and bias 0 under both, as in tflib.
"""

from __future__ import annotations

import math
from collections.abc import Collection
from typing import Literal

from torch import nn

Init = Literal["paper", "torch"]
INITS: tuple[str, ...] = ("paper", "torch")

_CONV = (nn.Conv1d, nn.Conv2d, nn.Conv3d)
_DECONV = (nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)


def check_init(init: str) -> str:
    """Return ``init`` when it names a known initialisation.

    Raises:
        ValueError: For any other name.
    """
    if init not in INITS:
        raise ValueError(f"init must be 'paper' (tflib's, as the paper's code) or 'torch', got init={init!r}")
    return init


def fans(layer: nn.Module) -> tuple[float, float]:
    """The ``(fan_in, fan_out)`` tflib uses for a linear or (transposed) convolution layer, strides included."""
    if isinstance(layer, nn.Linear):
        return float(layer.in_features), float(layer.out_features)
    if isinstance(layer, _CONV + _DECONV):
        kernel = math.prod(layer.kernel_size)
        stride = math.prod(layer.stride)
        # PyTorch stores (C_out, C_in/groups, *k) for a convolution and (C_in, C_out/groups, *k) transposed.
        fan_in, fan_out = layer.in_channels * kernel, layer.out_channels * kernel
        if isinstance(layer, _DECONV):
            return fan_in / stride, float(fan_out)
        return float(fan_in), fan_out / stride
    raise TypeError(f"no tflib initialisation for {type(layer).__name__}")


def paper_std(layer: nn.Module, he: bool) -> float:
    """The standard deviation tflib gives ``layer``'s weights.

    Args:
        layer: ``nn.Linear`` or a (transposed) convolution.
        he: tflib's ``initialization='he'`` for a linear layer, ``he_init=True`` for a convolution.

    Returns:
        ``√(2/fan_in)`` (He, linear), ``√(4/(fan_in+fan_out))`` (He, convolution) or ``√(2/(fan_in+fan_out))``
        (Glorot, both).
    """
    fan_in, fan_out = fans(layer)
    if not he:
        return math.sqrt(2.0 / (fan_in + fan_out))
    return math.sqrt(2.0 / fan_in) if isinstance(layer, nn.Linear) else math.sqrt(4.0 / (fan_in + fan_out))


def paper_init_(layer: nn.Module, he: bool) -> None:
    """Initialise one layer in place as tflib does: uniform weights of :func:`paper_std`, zero bias."""
    bound = paper_std(layer, he) * math.sqrt(3.0)
    nn.init.uniform_(layer.weight, -bound, bound)
    if layer.bias is not None:
        nn.init.zeros_(layer.bias)


def init_weights(
    net: nn.Module,
    init: Init,
    he_linear: Collection[nn.Module] = (),
    glorot_conv: Collection[nn.Module] = (),
) -> None:
    """Initialise every linear and convolution layer of ``net`` (``init='torch'`` keeps PyTorch's, unchanged).

    The arguments mirror tflib's defaults: a linear layer is Glorot unless it is in ``he_linear``
    (``initialization='he'``); a convolution is He unless it is in ``glorot_conv`` (``he_init=False``).

    Args:
        net: The network; layers of other types (BatchNorm, embeddings) are left as they are.
        init: ``"paper"`` (tflib's) or ``"torch"`` (PyTorch's default, left untouched).
        he_linear: Linear layers that tflib initialises with ``'he'`` (those followed by a ReLU in the toy MLPs).
        glorot_conv: Convolutions that tflib initialises with ``he_init=False``.
    """
    if check_init(init) == "torch":
        return
    he_ids = {id(m) for m in he_linear}
    glorot_ids = {id(m) for m in glorot_conv}
    for layer in net.modules():
        if isinstance(layer, nn.Linear):
            paper_init_(layer, he=id(layer) in he_ids)
        elif isinstance(layer, _CONV + _DECONV):
            paper_init_(layer, he=id(layer) not in glorot_ids)
