"""The WGANGP module: which parameters each step changes, step counts, resume, sampling, warnings."""

from __future__ import annotations

from pathlib import Path

import lightning.pytorch as pl
import pytest
import torch
from lightning.pytorch.callbacks import Callback

from src.models import WGANGP
from src.nets import DCGANCritic, DCGANGenerator
from src.regularizers import GradientPenalty
from tests.helpers import toy_data, toy_model, trainer


class StepSpy(Callback):
    """Records, for every optimizer step, which parameters it changed."""

    def __init__(self) -> None:
        self.steps: list[tuple[str, set[str]]] = []

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        for name, opt in zip(("generator", "critic"), trainer.optimizers):
            original = opt.step

            def step(*args, _original=original, _name=name, **kwargs):
                before = {n: p.detach().clone() for n, p in pl_module.named_parameters()}
                out = _original(*args, **kwargs)
                changed = {n for n, p in pl_module.named_parameters() if not torch.equal(before[n], p)}
                self.steps.append((_name, changed))
                return out

            opt.step = step


def test_ten_steps_make_ten_critic_and_two_generator_updates_on_the_right_parameters(tmp_path: Path) -> None:
    model, spy = toy_model(n_critic=5), StepSpy()
    trainer(tmp_path, callbacks=[GradientPenalty(0.1), spy], max_epochs=1).fit(model, toy_data(10))
    critic_params = {f"critic.{n}" for n, _ in model.critic.named_parameters()}
    generator_params = {f"generator.{n}" for n, _ in model.generator.named_parameters()}
    kinds = [kind for kind, _ in spy.steps]
    assert kinds == ["critic"] * 5 + ["generator"] + ["critic"] * 5 + ["generator"]
    # The critic's output bias cancels in E[D(real)] - E[D(fake)] and in the penalty, so it never moves.
    output_bias = {"critic.net.6.bias"}
    for kind, changed in spy.steps:
        assert changed == (critic_params - output_bias if kind == "critic" else generator_params)
    assert (model.critic_steps, model.generator_steps) == (10, 2)


def test_max_generator_steps_bounds_the_run(tmp_path: Path) -> None:
    model = toy_model(n_critic=2, max_generator_steps=3)
    trainer(tmp_path, max_epochs=100).fit(model, toy_data(10))
    assert (model.generator_steps, model.critic_steps) == (3, 6)


def _optimizer_states(model: WGANGP) -> list[dict]:
    return [opt.optimizer.state_dict() for opt in model.optimizers()]


def test_resume_matches_a_straight_run(tmp_path: Path) -> None:
    def fit(max_gen: int, ckpt: str | None = None) -> tuple[WGANGP, pl.Trainer]:
        pl.seed_everything(0)
        model = toy_model(n_critic=2, max_generator_steps=max_gen)
        t = trainer(
            tmp_path, max_epochs=100, enable_checkpointing=True, default_root_dir=tmp_path / str(max_gen)
        )
        t.fit(model, toy_data(4, seed=1), ckpt_path=ckpt)
        return model, t

    straight, _ = fit(4)
    first, t = fit(2)
    ckpt = t.checkpoint_callback.best_model_path
    assert ckpt and torch.load(ckpt, weights_only=True)["wgan_gp"]["generator_steps"] == 2
    resumed, _ = fit(4, ckpt)
    assert (resumed.generator_steps, resumed.critic_steps) == (
        straight.generator_steps,
        straight.critic_steps,
    )
    torch.testing.assert_close(resumed.fixed_noise, straight.fixed_noise)
    torch.testing.assert_close(resumed.fixed_noise, first.fixed_noise)
    for a, b in zip(_optimizer_states(resumed), _optimizer_states(straight)):
        assert a["state"].keys() == b["state"].keys()
        for key in a["state"]:
            for name in ("step", "exp_avg", "exp_avg_sq"):
                torch.testing.assert_close(a["state"][key][name], b["state"][key][name])
    for (name, p), q in zip(resumed.named_parameters(), straight.parameters()):
        torch.testing.assert_close(p, q, msg=name)


def test_sample_is_in_data_space_without_grad_and_keeps_train_mode() -> None:
    model = WGANGP(DCGANGenerator((3, 32, 32), dim=8), DCGANCritic((3, 32, 32), dim=8))
    model.train()
    x = model.sample(5)
    assert x.shape == (5, 3, 32, 32) and not x.requires_grad
    assert x.min() >= -1 and x.max() <= 1 and x.device == model.device
    assert model.generator.training
    torch.testing.assert_close(
        model.sample(noise=model.fixed_noise[:3]), model.sample(noise=model.fixed_noise[:3])
    )


def test_wasserstein_estimate_is_logged(tmp_path: Path) -> None:
    model = toy_model(n_critic=1)
    t = trainer(tmp_path, max_epochs=1, log_every_n_steps=1)
    t.fit(model, toy_data(3))
    for key in (
        "train/critic_loss",
        "train/gen_loss",
        "train/wasserstein",
        "train/gp",
        "train/gp_grad_norm",
        "train/critic_grad_norm",
        "train/gen_grad_norm",
        "train/lr_generator",
    ):
        assert key in t.logged_metrics, key
    logged = t.logged_metrics
    torch.testing.assert_close(logged["train/critic_loss"], -logged["train/wasserstein"] + logged["train/gp"])


def test_schedulers_step_once_per_generator_step(tmp_path: Path) -> None:
    from functools import partial

    model = toy_model(
        n_critic=2,
        max_generator_steps=3,
        generator_scheduler=partial(torch.optim.lr_scheduler.StepLR, step_size=1, gamma=0.5),
        critic_scheduler=partial(torch.optim.lr_scheduler.StepLR, step_size=1, gamma=0.5),
    )
    trainer(tmp_path, max_epochs=10).fit(model, toy_data(10))
    for opt in model.optimizers():
        assert opt.param_groups[0]["lr"] == pytest.approx(1e-4 * 0.5**3)


def test_bad_config_errors_name_the_option() -> None:
    with pytest.raises(ValueError, match="n_critic"):
        toy_model(n_critic=0)
    with pytest.raises(ValueError, match="max_generator_steps"):
        toy_model(max_generator_steps=0)
    with pytest.raises(ValueError, match="weight"):
        GradientPenalty(weight=-0.5)
    with pytest.raises(ValueError, match="data.dataset"):
        toy_data(dataset="9gaussians")
    with pytest.raises(ValueError, match="image size 30 px is not supported"):
        DCGANGenerator((1, 30, 30))
    with pytest.raises(ValueError, match="image size 48 px"):
        DCGANCritic((3, 48, 48))


def test_batchnorm_critic_and_missing_regularizer_warn(tmp_path: Path) -> None:
    from src.data import DigitsDataModule

    model = WGANGP(DCGANGenerator((1, 16, 16), dim=4), DCGANCritic((1, 16, 16), dim=4, norm="batch"))
    data = DigitsDataModule(image_size=16, batch_size=16)
    with pytest.warns(UserWarning, match=r"BatchNorm \(features\.\d+\)"):
        trainer(tmp_path, max_steps=1).fit(model, data)
    with pytest.warns(UserWarning, match="unconstrained"):
        trainer(tmp_path, callbacks=[], max_steps=1).fit(toy_model(), toy_data(2))
