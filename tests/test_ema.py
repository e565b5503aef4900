"""The EMA generator: the hand-computed average, used for sampling, saved and restored with checkpoints."""

from __future__ import annotations

from pathlib import Path

import lightning.pytorch as pl
import pytest
import torch
from torch import nn

from src.models import WGANGP
from src.models.ema import STANDING_BATCH_SIZE, STANDING_BATCHES, STANDING_SEED
from src.nets import MLPCritic
from tests.helpers import toy_data, trainer


class BNGenerator(nn.Module):
    """A tiny generator with BatchNorm, so the average covers buffers too."""

    def __init__(self) -> None:
        super().__init__()
        self.latent_dim, self.num_classes = 2, 0
        self.net = nn.Sequential(nn.Linear(2, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 2))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)


class Snapshots(pl.Callback):
    """Generator parameters and float buffers after every generator step (n_critic=1: every batch)."""

    def __init__(self) -> None:
        self.states: list[dict[str, torch.Tensor]] = []
        self.ema_at_start: dict[str, torch.Tensor] | None = None

    def on_train_start(self, trainer: pl.Trainer, pl_module: WGANGP) -> None:
        self.ema_at_start = _float_state(pl_module.generator_ema.module)

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: WGANGP, *args: object) -> None:
        self.states.append(_float_state(pl_module.generator))


def _float_state(module: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items() if v.is_floating_point()}


def _model(max_generator_steps: int, decay: float = 0.8) -> WGANGP:
    return WGANGP(
        BNGenerator(),
        MLPCritic(hidden_dim=8),
        n_critic=1,
        ema_decay=decay,
        max_generator_steps=max_generator_steps,
    )


def _average(
    states: list[dict[str, torch.Tensor]], decay: float, start: dict | None = None, averaged: int = 0
) -> dict:
    """W_1, then W <- d W + (1 - d) W_k with the warmed-up d = min(decay, (1 + n) / (10 + n))."""
    ema = dict(states[0]) if start is None else dict(start)
    n = 1 if start is None else averaged
    for state in states if start is not None else states[1:]:
        d = min(decay, (1 + n) / (10 + n))
        ema = {k: d * ema[k] + (1 - d) * state[k] for k in ema}
        n += 1
    return ema


def test_ema_is_the_hand_computed_average_of_weights_and_buffers(tmp_path: Path) -> None:
    model, snaps = _model(5), Snapshots()
    trainer(tmp_path, callbacks=[snaps], max_epochs=10).fit(model, toy_data(3))
    assert len(snaps.states) == 5 and int(model.generator_ema.n_averaged) == 5
    expected = _average(snaps.states, 0.8)
    actual = _float_state(model.generator_ema.module)
    assert expected.keys() == actual.keys() and any("running_mean" in k for k in actual)
    for key in expected:
        torch.testing.assert_close(actual[key], expected[key], msg=key)
    assert not any(p.requires_grad for p in model.generator_ema.parameters())


def test_sample_uses_the_ema_generator() -> None:
    model = _model(1)
    with torch.no_grad():
        for p in model.generator_ema.module.parameters():
            p.zero_()  # the EMA generator now maps everything to 0
    noise = torch.randn(4, 2)
    model.generator.eval()
    assert not torch.equal(model.generate(noise), torch.zeros(4, 2))  # the training generator does not
    assert torch.equal(model.sample(noise=noise), torch.zeros(4, 2))
    assert model.sampling_generator is model.generator_ema.module
    plain = WGANGP(BNGenerator(), MLPCritic(hidden_dim=8))  # no ema_decay: samples come from the generator
    assert plain.generator_ema is None and plain.sampling_generator is plain.generator


def test_ema_survives_resume_and_keeps_averaging(tmp_path: Path) -> None:
    first = _model(3)
    t = trainer(tmp_path, max_epochs=10, enable_checkpointing=True, default_root_dir=tmp_path / "a")
    t.fit(first, toy_data(3, seed=1))
    ckpt = t.checkpoint_callback.best_model_path
    saved = torch.load(ckpt, weights_only=True)["state_dict"]
    assert "generator_ema.n_averaged" in saved and int(saved["generator_ema.n_averaged"]) == 3

    resumed, snaps = _model(6), Snapshots()
    trainer(tmp_path, callbacks=[snaps], max_epochs=10, default_root_dir=tmp_path / "b").fit(
        resumed, toy_data(3, seed=1), ckpt_path=ckpt
    )
    for key, value in _float_state(first.generator_ema.module).items():
        torch.testing.assert_close(snaps.ema_at_start[key], value, msg=key)  # restored exactly
    assert len(snaps.states) == 3 and int(resumed.generator_ema.n_averaged) == 6
    expected = _average(snaps.states, 0.8, start=snaps.ema_at_start, averaged=3)
    for key, value in _float_state(resumed.generator_ema.module).items():
        torch.testing.assert_close(value, expected[key], msg=key)


def test_a_short_run_averages_the_trained_generator_not_the_initial_one(tmp_path: Path) -> None:
    # A fixed decay of 0.999 would still hold 0.999^40 = 96% of the initial weights after 40 steps.
    model = _model(40, decay=0.999)
    initial = _float_state(model.generator)
    trainer(tmp_path, max_epochs=100).fit(model, toy_data(4))
    final, ema = _float_state(model.generator), _float_state(model.generator_ema.module)
    key = "net.0.weight"
    assert (ema[key] - final[key]).norm() < 0.5 * (ema[key] - initial[key]).norm()


@pytest.mark.parametrize("decay", [0.0, 1.0, -0.5])
def test_bad_decay_names_the_option(decay: float) -> None:
    with pytest.raises(ValueError, match="ema_decay"):
        _model(1, decay=decay)


def test_the_ema_generator_samples_with_the_standing_statistics_of_its_own_weights(tmp_path: Path) -> None:
    """BigGAN's standing statistics: the averaged running stats belong to the training weights, not the EMA's."""
    model = _model(20, decay=0.8)
    trainer(tmp_path, max_epochs=100).fit(model, toy_data(4))
    ema = model.generator_ema.module
    training_stats = model.generator.net[1].running_mean.clone()
    out = model.sample(noise=torch.randn(16, 2))
    g = torch.Generator().manual_seed(STANDING_SEED)  # the standing noise, drawn again
    with torch.no_grad():
        pre_bn = [
            ema.net[0](torch.randn(STANDING_BATCH_SIZE, 2, generator=g)) for _ in range(STANDING_BATCHES)
        ]
    want_mean = torch.stack([x.mean(0) for x in pre_bn]).mean(0)  # the average of the batches' statistics
    want_var = torch.stack([x.var(0) for x in pre_bn]).mean(0)  # (unbiased, as BatchNorm's running_var)
    standing_mean, standing_var = ema.net[1].running_mean, ema.net[1].running_var
    torch.testing.assert_close(standing_mean, want_mean, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(standing_var, want_var, rtol=1e-5, atol=1e-6)
    assert int(ema.net[1].num_batches_tracked) == STANDING_BATCHES
    assert torch.equal(
        model.generator.net[1].running_mean, training_stats
    )  # the training generator: untouched
    # recomputed once per EMA update, from a fixed seed: sampling again changes nothing
    again = model.sample(noise=torch.randn(16, 2))
    assert torch.equal(ema.net[1].running_mean, standing_mean) and out.shape == again.shape


def test_batch_statistics_sampling_leaves_the_averaged_buffers(tmp_path: Path) -> None:
    model = WGANGP(BNGenerator(), MLPCritic(hidden_dim=8), n_critic=1, ema_decay=0.8, max_generator_steps=3)
    model.sample_bn = "batch"
    trainer(tmp_path, max_epochs=10).fit(model, toy_data(3))
    before = model.generator_ema.module.net[1].running_mean.clone()
    model.sample(noise=torch.randn(16, 2))
    assert torch.equal(model.generator_ema.module.net[1].running_mean, before)
