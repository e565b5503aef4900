"""The technique configs (penalties, optimizers, schedules, EMA, conditional, CGD) build what they say and run."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
import yaml

from src.cli import build_cli
from src.nets import ConditionalResNetGenerator, ProjectionResNetCritic
from src.regularizers import (
    DRAGANPenalty,
    DriftPenalty,
    GradientPenalty,
    OneSidedPenalty,
    R1Penalty,
    R2Penalty,
    WeightClipping,
)
from tests.helpers import run_cli

TOY = ["--config", "configs/toy.yaml"]
TINY = [
    "--model.max_generator_steps=2",
    "--trainer.limit_val_batches=1",
    "--trainer.enable_progress_bar=false",
]
TOY_TINY = ["--data.batches_per_epoch=4", "--model.generator.init_args.hidden_dim=8",
            "--model.critic.init_args.hidden_dim=8"]  # fmt: skip


def _regularizers(cli: object) -> list[object]:
    from src.regularizers import CriticRegularizer

    return [cb for cb in cli.trainer.callbacks if isinstance(cb, CriticRegularizer)]


def _build(tmp_path: Path, *args: str) -> object:
    return build_cli([*args, "--trainer.logger=false", f"--trainer.default_root_dir={tmp_path}"])


@pytest.mark.parametrize(
    ("config", "cls", "attrs"),
    [
        ("penalties/one_sided", OneSidedPenalty, {"weight": 10.0, "target": 1.0}),
        ("penalties/zero_centred", GradientPenalty, {"target": 0.0}),
        ("penalties/r1", R1Penalty, {"weight": 10.0}),
        ("penalties/r2", R2Penalty, {"weight": 10.0}),
        ("penalties/dragan", DRAGANPenalty, {"perturb_scale": 0.5}),
        ("penalties/linf", GradientPenalty, {"norm": math.inf}),
        ("wgan_clip", WeightClipping, {"clip_value": 0.01}),
    ],
)
def test_penalty_configs_select_their_regularizer(
    tmp_path: Path, config: str, cls: type, attrs: dict
) -> None:
    (reg,) = _regularizers(_build(tmp_path, "--config", f"configs/{config}.yaml"))
    assert type(reg) is cls
    for name, value in attrs.items():
        assert getattr(reg, name) == value


@pytest.mark.parametrize("config", ["penalties/r1", "penalties/r2", "penalties/dragan"])
def test_local_penalty_configs_use_the_non_saturating_loss(tmp_path: Path, config: str) -> None:
    assert _build(tmp_path, "--config", f"configs/{config}.yaml").model.loss == "non_saturating"


@pytest.mark.parametrize("base", [[], [*TOY], ["--config", "configs/cifar10.yaml"]])
def test_spectral_config_normalises_the_critic_with_the_hinge_loss(tmp_path: Path, base: list[str]) -> None:
    from src.nets.spectral import is_spectrally_normalized

    cli = _build(tmp_path, *base, "--config", "configs/penalties/spectral.yaml")
    assert _regularizers(cli) == [] and cli.model.loss == "hinge"
    assert is_spectrally_normalized(cli.model.critic)


def test_drift_is_added_next_to_the_penalty(tmp_path: Path) -> None:
    cli = _build(tmp_path, "--config", "configs/penalties/drift.yaml")
    assert {type(r) for r in _regularizers(cli)} == {GradientPenalty, DriftPenalty}
    assert any(type(cb).__name__ == "ImageQuality" for cb in cli.trainer.callbacks)  # defaults kept


def test_wgan_clip_uses_rmsprop_at_5e_5(tmp_path: Path) -> None:
    cli = _build(tmp_path, "--config", "configs/wgan_clip.yaml")
    for opt in cli.model.configure_optimizers():
        assert isinstance(opt, torch.optim.RMSprop) and opt.param_groups[0]["lr"] == 5e-5


@pytest.mark.parametrize(
    ("config", "cls"), [("sgd", torch.optim.SGD), ("rmsprop", torch.optim.RMSprop), ("nsgda", None)]
)
def test_optimizer_configs(tmp_path: Path, config: str, cls: type | None) -> None:
    from src.optim import NormalizedSGD

    cli = _build(tmp_path, "--config", f"configs/optim/{config}.yaml")
    for opt in cli.model.configure_optimizers():
        assert isinstance(opt, cls or NormalizedSGD)


@pytest.mark.parametrize(
    ("config", "cls"),
    [
        ("sgdr", torch.optim.lr_scheduler.CosineAnnealingWarmRestarts),
        ("linear_decay", torch.optim.lr_scheduler.LinearLR),
    ],
)
def test_schedule_configs(tmp_path: Path, config: str, cls: type) -> None:
    cli = _build(tmp_path, "--config", f"configs/schedules/{config}.yaml")
    _, schedulers = cli.model.configure_optimizers()
    assert len(schedulers) == 2 and all(isinstance(s, cls) for s in schedulers)


def test_null_regularizer_and_cgd_config(tmp_path: Path) -> None:
    pytest.importorskip("CGDs")
    from src.optim import CGD

    cli = _build(tmp_path, "--config", "configs/toy_cgd.yaml")
    assert _regularizers(cli) == [] and None not in cli.trainer.callbacks
    opt = cli.model.configure_optimizers()
    assert isinstance(opt, CGD) and opt.adaptive and cli.model.n_critic == 1


def test_conditional_overlays_on_the_dataset_configs(tmp_path: Path) -> None:
    cli = _build(tmp_path, "--config", "configs/cifar10.yaml", "--config", "configs/cifar10_cond.yaml",
                 "--model.generator.init_args.dim=8", "--model.critic.init_args.dim=8")  # fmt: skip
    assert isinstance(cli.model.generator, ConditionalResNetGenerator)
    assert isinstance(cli.model.critic, ProjectionResNetCritic)
    assert cli.model.num_classes == 10 and cli.model.fixed_labels.tolist() == [i // 10 for i in range(100)]
    assert cli.model.hparams["generator"]["init_args"]["data_shape"] == (3, 32, 32)
    mnist = _build(tmp_path, "--config", "configs/mnist.yaml", "--config", "configs/mnist_cond.yaml")
    assert mnist.model.num_classes == 10 and mnist.model.generator.data_shape == (1, 28, 28)


def test_ema_config(tmp_path: Path) -> None:
    assert _build(tmp_path, "--config", "configs/ema.yaml").model.generator_ema is not None


def test_default_run_is_class_conditional_with_the_search_values(tmp_path: Path) -> None:
    cli = _build(tmp_path)
    model = cli.model
    assert model.num_classes == 10 and model.fixed_labels.tolist() == [i // 10 for i in range(100)]
    assert (model.n_critic, model.generator.latent_dim, model.hparams.ema_decay) == (2, 32, 0.99)
    assert model.max_generator_steps == 1500
    (regularizer,) = _regularizers(cli)
    assert regularizer.weight == 10.0  # the search's 9.15, rounded to the paper's
    g_opt, c_opt = model.configure_optimizers()
    assert g_opt.defaults["lr"] == pytest.approx(2.3e-3) and c_opt.defaults["lr"] == pytest.approx(5.9e-4)
    assert g_opt.defaults["betas"] == c_opt.defaults["betas"] == (0.0, 0.9)


def test_unconditional_digits_config_drops_only_the_labels(tmp_path: Path) -> None:
    model, default = _build(tmp_path, "--config", "configs/digits_uncond.yaml").model, _build(tmp_path).model
    assert model.num_classes == 0 and not hasattr(model, "fixed_labels")
    assert type(model.generator).__name__ == "DCGANGenerator" and type(model.critic).__name__ == "DCGANCritic"
    assert (model.n_critic, model.generator.latent_dim) == (default.n_critic, default.generator.latent_dim)
    assert model.generator.base_channels == default.generator.base_channels
    assert model.hparams.ema_decay == default.hparams.ema_decay


@pytest.mark.parametrize("config", ["mnist", "cifar10", "celeba", "folder"])
def test_paper_configs_state_unconditional_nets_and_the_paper_latent_size(
    config: str, capsys: pytest.CaptureFixture
) -> None:
    """The default's class-conditional nets, latent size 32 and grid of 100 reach no config of the paper's."""
    with pytest.raises(SystemExit):
        build_cli(["--config", f"configs/{config}.yaml", "--print_config"])
    model = yaml.safe_load(capsys.readouterr().out)["model"]["init_args"]
    generator, critic = model["generator"], model["critic"]
    assert "Conditional" not in generator["class_path"] and "Projection" not in critic["class_path"]
    assert "num_classes" not in generator["init_args"] and "num_classes" not in critic["init_args"]
    assert generator["init_args"]["latent_dim"] == 128 and model["num_fixed_samples"] == 64


# --------------------------------------------------------------------------- end to end, as a user runs it
@pytest.mark.slow
@pytest.mark.parametrize(
    "args",
    [
        ["--config", "configs/wgan_clip.yaml"],
        ["--config", "configs/digits_uncond.yaml", "--config", "configs/ema.yaml"],
        ["--config", "configs/penalties/drift.yaml", "--config", "configs/schedules/sgdr.yaml"],
        ["--config", "configs/optim/nsgda.yaml", "--config", "configs/schedules/linear_decay.yaml"],
        [*TOY, "--config", "configs/penalties/one_sided.yaml", *TOY_TINY],
        [*TOY, "--config", "configs/penalties/dragan.yaml", *TOY_TINY],
        [*TOY, "--config", "configs/penalties/r1.yaml", "--config", "configs/optim/sgd.yaml", *TOY_TINY],
        ["--config", "configs/penalties/spectral.yaml"],
        [
            *TOY,
            "--config",
            "configs/penalties/linf.yaml",
            "--config",
            "configs/optim/rmsprop.yaml",
            *TOY_TINY,
        ],
        ["--config", "configs/toy_cgd.yaml", *TOY_TINY],
    ],
    ids=[
        "wgan_clip",
        "digits_uncond+ema",
        "drift+sgdr",
        "nsgda+linear",
        "one_sided",
        "dragan",
        "r1+sgd",
        "spectral",
        "linf+rmsprop",
        "toy_cgd",
    ],  # fmt: skip
)
def test_technique_config_runs_end_to_end(tmp_path: Path, args: list[str]) -> None:
    if "configs/toy_cgd.yaml" in args:
        pytest.importorskip("CGDs")
    run_cli([*args, *TINY, f"--trainer.logger.init_args.save_dir={tmp_path}", "--data.batch_size=32"])
    assert list(tmp_path.rglob("last.ckpt"))
