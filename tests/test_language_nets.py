"""The paper's 1-D residual language networks: shapes, the residual block, parameter counts and initialisation."""

from __future__ import annotations

import math

import pytest
import torch

from src.nets import LanguageCritic, LanguageGenerator
from src.nets.language import ResBlock1d
from src.regularizers.base import gradient_norm


def test_shapes_and_the_softmax_over_the_vocabulary() -> None:
    gen, critic = LanguageGenerator((20, 12), latent_dim=16, dim=8), LanguageCritic((20, 12), dim=8)
    assert gen.latent_dim == 16 and gen.num_classes == 0 and critic.num_classes == 0
    fake = gen(torch.randn(3, 16))
    assert fake.shape == (3, 20, 12) and (fake >= 0).all()
    assert torch.allclose(fake.sum(dim=1), torch.ones(3, 12))
    assert critic(fake).shape == (3,)


def test_the_residual_block_adds_its_branch_scaled_by_0_3() -> None:
    block = ResBlock1d(4)
    with torch.no_grad():
        for conv in (block.conv1, block.conv2):  # identity convolutions: only the centre tap, weight 1
            conv.weight.zero_()
            conv.bias.zero_()
            conv.weight[:, :, 2] = torch.eye(4)
    x = torch.randn(2, 4, 9)
    assert torch.allclose(block(x), x + 0.3 * torch.relu(x))


def test_parameter_counts_match_the_released_code() -> None:
    vocab, seq_len, dim, latent = 30, 32, 16, 128
    blocks = 5 * 2 * (dim * dim * 5 + dim)  # five ResBlocks of two k=5 convolutions with biases
    gen = LanguageGenerator((vocab, seq_len), latent_dim=latent, dim=dim)
    critic = LanguageCritic((vocab, seq_len), dim=dim)
    assert (
        sum(p.numel() for p in gen.parameters())
        == latent * dim * seq_len + dim * seq_len + blocks + dim * vocab + vocab
    )
    assert sum(p.numel() for p in critic.parameters()) == vocab * dim + dim + blocks + dim * seq_len + 1


def test_paper_init_follows_tflib() -> None:
    torch.manual_seed(0)
    gen = LanguageGenerator((64, 32), dim=128, init="paper")
    conv = gen.blocks[0].conv1
    assert conv.weight.std().item() == pytest.approx(math.sqrt(4 / (128 * 5 + 128 * 5)), rel=0.03)
    assert gen.project.weight.std().item() == pytest.approx(math.sqrt(2 / (128 + 128 * 32)), rel=0.03)
    assert gen.project.bias.abs().max() == 0 and conv.bias.abs().max() == 0
    default = LanguageGenerator((64, 32), dim=128).blocks[0].conv1
    assert default.bias.abs().max() > 0  # PyTorch's default init


def test_a_wrong_data_shape_names_the_datamodule() -> None:
    with pytest.raises(ValueError, match="TextDataModule"):
        LanguageCritic((1, 28, 28))


def test_the_penalty_norm_is_the_released_codes_sum_over_vocabulary_and_positions() -> None:
    grad = torch.randn(5, 7, 11)  # (B, vocab, L)
    released = (
        grad.pow(2).sum(dim=(1, 2)).sqrt()
    )  # tf.sqrt(tf.reduce_sum(tf.square(g), reduction_indices=[1, 2]))
    assert torch.allclose(gradient_norm(grad), released)
