"""Class-conditional WGAN-GP: networks, labels through the module and its penalty, per-class sampling."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from src.callbacks import SampleGrid
from src.data import DigitsDataModule
from src.models import WGANGP
from src.nets import (
    ConditionalDCGANGenerator,
    ConditionalResNetGenerator,
    DCGANCritic,
    ProjectionDCGANCritic,
    ProjectionResNetCritic,
)
from src.nets.labels import class_rows, grid_row_length
from src.regularizers import GradientPenalty
from tests.helpers import toy_data, trainer


@pytest.mark.parametrize(
    ("generator", "critic"),
    [
        (
            ConditionalDCGANGenerator((1, 16, 16), latent_dim=8, dim=8),
            ProjectionDCGANCritic((1, 16, 16), dim=8),
        ),
        (
            ConditionalResNetGenerator((3, 16, 16), latent_dim=8, dim=8),
            ProjectionResNetCritic((3, 16, 16), dim=8),
        ),
    ],
)
def test_conditional_networks_depend_on_the_label(generator: nn.Module, critic: nn.Module) -> None:
    assert generator.num_classes == critic.num_classes == 10 and generator.latent_dim == 8
    generator.eval()
    with torch.no_grad():  # conditional BatchNorm starts as gain 1, bias 0 for every class: make them differ
        for m in generator.modules():
            if isinstance(m, nn.Embedding):
                m.weight.add_(0.1 * torch.randn_like(m.weight))
    z = torch.randn(1, 8).expand(10, 8)  # one noise vector, every class
    images = generator(z, torch.arange(10))
    assert images.shape == (10, *generator.data_shape)
    assert (images[1:] - images[:1]).abs().flatten(1).amax(1).min() > 0  # each class changes the image
    with torch.no_grad():
        critic.embed.weight.normal_()
    x = images[:1].expand(10, *images.shape[1:])
    scores = critic(x, torch.arange(10))
    assert scores.shape == (10,) and scores.unique().numel() == 10  # the projection term depends on y


def test_projection_critic_is_head_plus_inner_product() -> None:
    critic = ProjectionDCGANCritic((1, 16, 16), dim=8)
    x, y = torch.randn(4, 1, 16, 16), torch.tensor([0, 3, 3, 9])
    h = critic.features(x).flatten(1)
    expected = critic.head(h).squeeze(1) + (critic.embed.weight[y] * h).sum(1)
    torch.testing.assert_close(critic(x, y), expected)


class Spy(nn.Module):
    """Wraps a conditional network and records the labels of every call."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net, self.calls = net, []
        self.latent_dim, self.num_classes = getattr(net, "latent_dim", None), net.num_classes

    def forward(self, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        self.calls.append(labels.clone())
        return self.net(x, labels)


def _digits_model(**kwargs: object) -> WGANGP:
    return WGANGP(
        Spy(ConditionalDCGANGenerator((1, 16, 16), latent_dim=8, dim=8)),
        Spy(ProjectionDCGANCritic((1, 16, 16), dim=8)),
        num_fixed_samples=20,
        **kwargs,
    )


def test_training_passes_the_real_labels_to_generator_critic_and_penalty(tmp_path: Path) -> None:
    model = _digits_model(n_critic=1, max_generator_steps=1)
    data = DigitsDataModule(image_size=16, batch_size=16)
    batches: list[torch.Tensor] = []

    class Record(GradientPenalty):
        def penalty(self, critic, real, fake):  # noqa: ANN001, ANN202
            batches.append(model.critic.calls[-1])  # the critic's last call was on the fake batch
            n_before = len(model.critic.calls)
            out = super().penalty(critic, real, fake)
            batches.append(model.critic.calls[n_before])  # the penalty's call on the interpolates
            return out

    trainer(tmp_path, callbacks=[Record()], max_epochs=1, limit_train_batches=1).fit(model, data)
    real_labels = model.critic.calls[0]  # the critic step scores the real batch first
    generator_calls = model.generator.calls
    torch.testing.assert_close(generator_calls[0], real_labels)  # fake batch of the critic step: real labels
    for labels in batches:
        torch.testing.assert_close(labels, real_labels)  # critic on fakes and in the penalty: the same labels
    assert len(generator_calls) >= 2  # the generator step draws its own uniform labels
    assert model.generator_steps == 1


def test_sample_returns_the_requested_classes() -> None:
    model = _digits_model()
    model.sample(6, labels=3)
    torch.testing.assert_close(model.generator.calls[-1], torch.full((6,), 3))
    model.sample(3, labels=[1, 2, 9])
    torch.testing.assert_close(model.generator.calls[-1], torch.tensor([1, 2, 9]))
    model.sample(500)
    assert set(model.generator.calls[-1].tolist()) == set(range(10))  # uniform when not given
    with pytest.raises(ValueError, match=r"labels must be in \[0, 10\)"):
        model.sample(2, labels=[0, 10])


def test_fixed_labels_give_one_row_per_class(tmp_path: Path) -> None:
    assert class_rows(100, 10).tolist() == [i // 10 for i in range(100)]
    assert class_rows(64, 10).max() == 9 and grid_row_length(64, 10) == 7
    model = _digits_model()
    torch.testing.assert_close(model.fixed_labels, class_rows(20, 10))
    assert "fixed_labels" in model.state_dict()
    grid = SampleGrid(dirpath=str(tmp_path))
    t = trainer(tmp_path, callbacks=[grid], max_epochs=1, limit_train_batches=1, max_steps=1)
    t.fit(model, DigitsDataModule(image_size=16, batch_size=16))
    torch.testing.assert_close(model.generator.calls[-1], class_rows(20, 10))  # the grid used the rows
    assert grid.last_path is not None and grid.last_path.exists()


def test_mismatched_networks_or_data_fail_with_the_fix(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="num_classes"):
        WGANGP(ConditionalDCGANGenerator((1, 16, 16), dim=8), DCGANCritic((1, 16, 16), dim=8))
    with pytest.raises(ValueError, match="num_classes >= 1"):
        ConditionalDCGANGenerator(num_classes=0)
    model = WGANGP(
        ConditionalDCGANGenerator((1, 16, 16), dim=8, num_classes=3),
        ProjectionDCGANCritic((1, 16, 16), dim=8, num_classes=3),
    )
    with pytest.raises(ValueError, match="num_classes=3 but the data has num_classes=10"):
        trainer(tmp_path, max_steps=1).fit(model, DigitsDataModule(image_size=16, batch_size=16))
    toy = WGANGP(
        ConditionalDCGANGenerator((1, 16, 16), dim=8), ProjectionDCGANCritic((1, 16, 16), dim=8), n_critic=1
    )
    with pytest.raises(ValueError, match="carry no labels"):
        trainer(tmp_path, max_steps=1).fit(toy, toy_data(2))


@pytest.mark.heavy
@pytest.mark.slow
def test_conditional_samples_are_classified_as_requested(tmp_path: Path) -> None:
    """After a short run on the digits, the offline digits classifier mostly agrees with the requested class."""
    from src.metrics import load_digits_classifier

    torch.manual_seed(0)
    model = WGANGP(
        ConditionalDCGANGenerator((1, 16, 16), latent_dim=32, dim=32),
        ProjectionDCGANCritic((1, 16, 16), dim=32),
        n_critic=2,
        generator_optimizer=lambda p: torch.optim.Adam(p, lr=1e-3, betas=(0.5, 0.9)),
        critic_optimizer=lambda p: torch.optim.Adam(p, lr=1e-3, betas=(0.5, 0.9)),
        max_generator_steps=300,
    )
    trainer(tmp_path, max_epochs=1000).fit(model, DigitsDataModule(image_size=16, batch_size=64))
    labels = torch.arange(10).repeat_interleave(50)
    predicted = load_digits_classifier()(model.sample(500, labels=labels)).argmax(1)
    agreement = (predicted == labels).float().mean().item()
    assert agreement > 0.7, f"classifier agrees with the requested class on {agreement:.0%} (chance: 10%)"
