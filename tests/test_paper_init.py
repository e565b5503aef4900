"""``init="paper"``: every layer's weights have tflib's standard deviation (igul222/improved_wgan_training).

The expected values are written out here from tflib's formulas, independently of ``src/nets/init.py``:
uniform weights in ``±std·√3``, zero biases;
- ``Linear``: ``initialization='he'`` -> ``√(2/fan_in)``, default (Glorot) -> ``√(2/(fan_in+fan_out))``;
- ``Conv2D``/``Deconv2D``: ``he_init=True`` -> ``√(4/(fan_in+fan_out))``, ``False`` -> ``√(2/(fan_in+fan_out))``,
  with ``fan_in = C_in·k²``, ``fan_out = C_out·k²/s²`` (a transposed convolution divides ``fan_in`` by ``s²``).
"""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from src.nets import (
    ACGANResNetCritic,
    ConditionalDCGANGenerator,
    ConditionalResNetGenerator,
    DCGANCritic,
    DCGANGenerator,
    MLPCritic,
    MLPGenerator,
    ProjectionDCGANCritic,
    ProjectionResNetCritic,
    ResNetCritic,
    ResNetGenerator,
)

SQRT3 = math.sqrt(3.0)


def _glorot(fan_in: float, fan_out: float) -> float:
    return math.sqrt(2.0 / (fan_in + fan_out))


def _he_conv(fan_in: float, fan_out: float) -> float:
    return math.sqrt(4.0 / (fan_in + fan_out))


def _check(layer: nn.Module, std: float) -> None:
    """Uniform in ±std·√3 with that std (within sampling error), zero bias."""
    w = layer.weight.detach().flatten().double()
    bound = std * SQRT3
    assert w.abs().max() <= bound * (1 + 1e-6), f"{layer}: a weight beyond the uniform bound {bound}"
    tol = 5 * math.sqrt(0.2 / w.numel()) + 0.01  # the std of a uniform sample's std is about sqrt(0.2/n)
    assert w.std().item() == pytest.approx(std, rel=tol), layer
    assert layer.bias is None or torch.all(layer.bias == 0), f"{layer}: non-zero bias"


def _layers(net: nn.Module) -> list[nn.Module]:
    return [m for m in net.modules() if isinstance(m, (nn.Linear, nn.Conv2d, nn.ConvTranspose2d))]


def test_mlp_is_he_for_relu_layers_and_glorot_for_the_output() -> None:
    for net, fan0 in ((MLPGenerator(latent_dim=2, hidden_dim=256, init="paper"), 2),
                      (MLPCritic(hidden_dim=256, init="paper"), 2)):  # fmt: skip
        linears = _layers(net)
        assert len(linears) == 4
        _check(linears[0], math.sqrt(2.0 / fan0))
        for hidden in linears[1:3]:
            _check(hidden, math.sqrt(2.0 / 256))
        _check(linears[3], _glorot(256, linears[3].out_features))


def test_dcgan_convolutions_are_he_init_with_strided_fans_and_linears_glorot() -> None:
    gen = DCGANGenerator((1, 32, 32), latent_dim=64, dim=16, init="paper")
    critic = DCGANCritic((1, 32, 32), dim=16, init="paper")
    for net in (gen, critic):
        for layer in _layers(net):
            if isinstance(layer, nn.Linear):
                _check(layer, _glorot(layer.in_features, layer.out_features))
            elif isinstance(layer, nn.ConvTranspose2d):  # k=4, stride 2: fan_in / 4
                _check(layer, _he_conv(layer.in_channels * 16 / 4, layer.out_channels * 16))
            else:  # Conv2d, k=4, stride 2: fan_out / 4
                _check(layer, _he_conv(layer.in_channels * 16, layer.out_channels * 16 / 4))


def test_resnet_3x3_convs_are_he_init_and_shortcuts_output_and_linears_glorot() -> None:
    gen = ResNetGenerator((3, 32, 32), latent_dim=64, dim=32, init="paper")
    critic = ResNetCritic((3, 32, 32), dim=32, init="paper")
    for net in (gen, critic):
        shortcuts = {id(b.shortcut) for b in net.blocks if b.shortcut is not None}
        output = {id(gen.out[2])}
        checked = 0
        for layer in _layers(net):
            fan_in = layer.in_features if isinstance(layer, nn.Linear) else layer.in_channels * 9
            if isinstance(layer, nn.Linear):
                _check(layer, _glorot(layer.in_features, layer.out_features))
            elif id(layer) in shortcuts:  # 1x1, he_init=False
                _check(layer, _glorot(layer.in_channels, layer.out_channels))
            elif id(layer) in output:  # Generator.Output: 3x3, he_init=False
                _check(layer, _glorot(fan_in, layer.out_channels * 9))
            else:  # 3x3, stride 1 (the pooling and upsampling are separate ops)
                _check(layer, _he_conv(fan_in, layer.out_channels * 9))
            checked += 1
        assert checked == len(_layers(net)) > 5


@pytest.mark.parametrize(
    "net",
    [
        lambda init: ConditionalDCGANGenerator((1, 16, 16), latent_dim=32, dim=16, init=init),
        lambda init: ProjectionDCGANCritic((1, 16, 16), dim=16, init=init),
        lambda init: ConditionalResNetGenerator((3, 16, 16), latent_dim=32, dim=32, init=init),
        lambda init: ProjectionResNetCritic((3, 16, 16), dim=32, init=init),
        lambda init: ACGANResNetCritic((3, 16, 16), dim=32, init=init),
    ],
    ids=["cond-dcgan-g", "proj-dcgan-c", "cond-resnet-g", "proj-resnet-c", "acgan-resnet-c"],
)
def test_conditional_networks_are_initialised_like_their_bases(net) -> None:  # noqa: ANN001
    torch.manual_seed(0)
    paper = net("paper")
    torch.manual_seed(0)
    default = net("torch")
    for layer, torch_layer in zip(_layers(paper), _layers(default), strict=True):  # every layer is re-drawn
        assert torch.all(layer.bias == 0) and not torch.equal(layer.weight, torch_layer.weight), layer
    if isinstance(paper, ConditionalResNetGenerator):  # its blocks are built after the base's init
        for block in paper.blocks:
            _check(block.conv1, _he_conv(32 * 9, 32 * 9))
            _check(block.shortcut, _glorot(32, 32))
    if isinstance(paper, ACGANResNetCritic):
        _check(paper.classifier, _glorot(32, 10))


def test_torch_init_is_pytorchs_default_and_paper_he_is_sqrt6_larger() -> None:
    torch.manual_seed(0)
    default = MLPCritic(hidden_dim=512)
    torch.manual_seed(0)
    explicit = MLPCritic(hidden_dim=512, init="torch")
    pairs = zip(default.state_dict().values(), explicit.state_dict().values())
    assert all(torch.equal(a, b) for a, b in pairs)
    paper = MLPCritic(hidden_dim=512, init="paper")
    ratio = paper.net[2].weight.std() / default.net[2].weight.std()  # 1/sqrt(3 fan_in) -> sqrt(2/fan_in)
    assert ratio.item() == pytest.approx(math.sqrt(6), rel=0.02)


def test_unknown_init_is_refused() -> None:
    with pytest.raises(ValueError, match="init must be 'paper'"):
        MLPGenerator(init="xavier")  # type: ignore[arg-type]
