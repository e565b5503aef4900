"""Spectral normalisation of a critic's layers (Miyato et al. 2018), the critics' ``norm="spectral"``.

Each weight ``W`` is divided by an estimate of its largest singular value ``σ(W)``, refined by one power
iteration per training forward (``torch.nn.utils.parametrizations.spectral_norm``). Every layer is then
1-Lipschitz (for a convolution, up to a constant of its kernel size), and so is the critic with 1-Lipschitz
activations: a global constraint that costs no double backward, unlike a gradient penalty.
"""

from __future__ import annotations

from torch import nn
from torch.nn.utils import parametrize
from torch.nn.utils.parametrizations import spectral_norm

#: Layers whose weight is a linear map of the input, and so is normalised.
LINEAR_LAYERS: tuple[type[nn.Module], ...] = (nn.Linear, nn.modules.conv._ConvNd, nn.Embedding)


def _linear_layers(module: nn.Module) -> list[nn.Module]:
    return [m for m in module.modules() if isinstance(m, LINEAR_LAYERS)]


def has_spectral_norm(layer: nn.Module) -> bool:
    """Whether ``layer.weight`` is spectrally normalised, by the parametrization or the older hook.

    Args:
        layer: A module with a ``weight``.
    """
    if parametrize.is_parametrized(layer, "weight"):
        return any(type(p).__name__ == "_SpectralNorm" for p in layer.parametrizations["weight"])
    return hasattr(layer, "weight_orig") and hasattr(layer, "weight_u")  # torch.nn.utils.spectral_norm


def spectral_normalize(module: nn.Module, n_power_iterations: int = 1) -> nn.Module:
    """Spectrally normalise the weight of every linear, convolutional and embedding layer, in place.

    Layers already normalised are left alone, so calling it twice changes nothing. Initialise the weights
    before calling it: afterwards ``layer.weight`` is computed from ``layer.parametrizations.weight.original``.

    Args:
        module: The critic (or any part of it).
        n_power_iterations: Power iterations per training forward (1 in the paper).

    Returns:
        ``module``, for chaining.
    """
    for layer in _linear_layers(module):
        if not has_spectral_norm(layer):
            spectral_norm(layer, n_power_iterations=n_power_iterations)
    return module


def is_spectrally_normalized(module: nn.Module) -> bool:
    """Whether ``module`` has linear layers and every one of them is spectrally normalised.

    The run uses this to know that a critic is globally Lipschitz without a penalty.

    Args:
        module: The critic.
    """
    layers = _linear_layers(module)
    return bool(layers) and all(has_spectral_norm(layer) for layer in layers)
