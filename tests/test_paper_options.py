"""The paper's options: generator batch multiple, dequantisation, BatchNorm at sampling, global batch, AC-GAN."""

from __future__ import annotations

import copy
import logging
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
import yaml
from torch.utils.data import DataLoader, TensorDataset

from src.cli import build_cli
from src.data import DigitsDataModule
from src.data.global_batch import per_device_batch_size
from src.data.transforms import dequantize
from src.evaluation import ImageQuality
from src.metrics.image_features import to_uint8
from src.models import WGANGP
from src.nets import ACGANResNetCritic, ConditionalResNetGenerator, DCGANCritic, DCGANGenerator
from src.train import main
from tests.fakedata import skip_md5, write_cifar10
from tests.helpers import toy_data, toy_model, trainer


# ------------------------------------------------------------------------------------- generator batch
def test_generator_step_draws_the_multiple_of_the_critic_batch(tmp_path: Path) -> None:
    model = toy_model(n_critic=2, hidden=8, generator_batch_multiple=2, max_generator_steps=3)
    seen: list[tuple[int, bool]] = []  # (batch, grad enabled): the generator step is the one with grad
    model.generator.register_forward_hook(
        lambda m, i, o: seen.append((i[0].shape[0], torch.is_grad_enabled()))
    )
    trainer(tmp_path).fit(model, toy_data(batch_size=16))
    assert {b for b, grad in seen if grad} == {32} and sum(grad for _, grad in seen) == 3
    assert {b for b, grad in seen if not grad} == {16}  # the critic step's fakes: one critic batch


def test_generator_batch_multiple_must_be_a_positive_integer() -> None:
    for bad in (0, 1.5):
        with pytest.raises(ValueError, match="model.generator_batch_multiple"):
            toy_model(generator_batch_multiple=bad)


# ------------------------------------------------------------------------------------- dequantisation
def test_dequantize_fills_each_pixel_values_bin_uniformly() -> None:
    x = torch.arange(256, dtype=torch.uint8).repeat(400).view(400, 1, 16, 16)  # every value 400 times
    y = dequantize(x)
    assert y.dtype == torch.float32 and y.min() >= -1 and y.max() <= 1
    low = x.float() / 128 - 1  # 2 * (x / 256 - 0.5)
    offset = y - low
    assert offset.min() >= 0 and offset.max() < 1 / 128 + 1e-7  # U[0, 1/128) above the bin's floor
    u = offset * 128  # ~ U[0, 1)
    assert u.mean().item() == pytest.approx(0.5, abs=0.01)
    assert u.var().item() == pytest.approx(1 / 12, rel=0.03)
    assert y.unique().numel() > 0.9 * y.numel()  # a density, no longer 256 atoms


@pytest.mark.parametrize("in_memory", [True, False])
def test_only_training_batches_are_dequantised(in_memory: bool) -> None:
    plain = DigitsDataModule(batch_size=64, in_memory=in_memory)
    dm = DigitsDataModule(batch_size=64, in_memory=in_memory, dequantize=True)
    dm.setup("fit")
    plain.setup("fit")
    train, _ = next(iter(dm.train_dataloader()))
    grid = (train + 1) * 127.5  # to_signed_unit's grid: integers
    assert (grid - grid.round()).abs().max() > 0.05 and train.min() >= -1 and train.max() <= 1
    for loader in (dm.val_dataloader, dm.test_dataloader):
        images, _ = next(iter(loader()))
        torch.testing.assert_close((images + 1) * 127.5, ((images + 1) * 127.5).round(), atol=1e-4, rtol=0)
    assert torch.equal(dm.reference_images("train", 50), plain.reference_images("train", 50))


def test_dequantised_samples_convert_back_to_their_pixel_values() -> None:
    x = torch.arange(256, dtype=torch.uint8).repeat(400).view(400, 1, 16, 16)
    y = dequantize(x)  # what a perfect generator of dequantised data draws
    exact = (to_uint8(y, dequantized=True) == x).float().mean()
    rounded = (to_uint8(y) == x).float().mean()
    assert exact > 0.99 and rounded < 0.8  # round() moves part of each bin by a level (measured 0.995, 0.75)
    want = ((y + 1) * (255.99 / 2)).numpy().astype("int32")  # gan_cifar_resnet.py, to the letter
    assert torch.equal(to_uint8(y, dequantized=True), torch.from_numpy(want).clamp(0, 255).to(torch.uint8))


def test_image_quality_inverts_the_dequantisation_of_the_data(tmp_path: Path) -> None:
    from tests.test_image_quality import Replay, logged, quiet_trainer

    dm = DigitsDataModule(dequantize=True)
    real = dm.reference_images("train", 400, seed=0)  # the callback's real subset, uint8
    torch.manual_seed(0)
    fid = {}
    for flag in (True, False):
        callback = ImageQuality(
            feature_extractor="digits", num_samples=400, num_real=400, kid=False, inception_score=False,
            precision_recall=False, class_coverage=False, cache_real_features=False,
        )  # fmt: skip
        trainer = quiet_trainer(tmp_path, [callback])
        trainer.validate(
            Replay(dequantize(real)), datamodule=DigitsDataModule(dequantize=flag), verbose=False
        )
        fid[flag] = logged(trainer)["val/fid"]
    assert abs(fid[True]) < 1e-2 < fid[False]  # the same images, once their bins are read back


# ------------------------------------------------------------------------------------- BatchNorm at sampling
def _dcgan(sample_bn: str) -> WGANGP:
    torch.manual_seed(0)
    model = WGANGP(
        DCGANGenerator((1, 16, 16), latent_dim=8, dim=8), DCGANCritic((1, 16, 16), dim=8), sample_bn=sample_bn
    )
    with torch.no_grad():  # running statistics far from any batch's
        for _ in range(20):
            model.generator(torch.randn(32, 8) * 3 + 2)
    return model


def test_sample_bn_batch_uses_the_batch_statistics_and_leaves_the_running_ones() -> None:
    running, batch = _dcgan("running"), _dcgan("batch")
    noise = torch.randn(16, 8)
    buffers = copy.deepcopy(dict(batch.generator.named_buffers()))
    with torch.no_grad():
        expected_batch = copy.deepcopy(batch.generator).train()(noise)  # batch statistics
        expected_running = copy.deepcopy(batch.generator).eval()(noise)  # running statistics
    torch.testing.assert_close(batch.sample(noise=noise), expected_batch)
    torch.testing.assert_close(running.sample(noise=noise), expected_running)
    assert not torch.allclose(expected_batch, expected_running, atol=1e-3)
    # Batch statistics: a sample depends on the batch it is drawn with.
    assert not torch.allclose(batch.sample(noise=noise[:4]), batch.sample(noise=noise)[:4], atol=1e-4)
    for name, value in batch.generator.named_buffers():  # nothing learnt from sampling, counts included
        assert torch.equal(value, buffers[name]), name
    assert batch.generator.training  # the mode is restored


def test_sample_bn_is_checked() -> None:
    with pytest.raises(ValueError, match="model.sample_bn"):
        _dcgan("moving")


# ------------------------------------------------------------------------------------- global batch
def test_global_batch_is_split_across_ranks_or_refused() -> None:
    assert per_device_batch_size(64, None, 4) == 64  # per device, as before
    assert per_device_batch_size(64, 64, 4) == 16
    assert per_device_batch_size(8, 64, 1) == 64
    with pytest.raises(ValueError, match="data.global_batch_size=64 does not split evenly across 3 devices"):
        per_device_batch_size(64, 64, 3)
    with pytest.raises(ValueError, match="data.global_batch_size must be >= 1"):
        DigitsDataModule(global_batch_size=0)


def _on_ranks(dm: DigitsDataModule, world: int) -> DigitsDataModule:
    dm.trainer = SimpleNamespace(  # type: ignore[assignment]
        global_rank=0,
        world_size=world,
        num_devices=world,
        strategy=SimpleNamespace(root_device=torch.device("cpu")),
    )
    return dm


def test_datamodule_uses_its_share_of_the_global_batch_and_prints_it(
    caplog: pytest.LogCaptureFixture,
) -> None:
    dm = _on_ranks(DigitsDataModule(batch_size=64, global_batch_size=32), world=2)
    with caplog.at_level(logging.INFO):
        dm.setup("fit")
    assert dm.batch_size == 16
    images, _ = next(iter(dm.train_dataloader()))
    assert images.shape[0] == 16
    assert "global batch 32 (16 per device x 2 device(s))" in caplog.text
    with pytest.raises(ValueError, match="data.global_batch_size=32 does not split evenly across 3"):
        _on_ranks(DigitsDataModule(global_batch_size=32), world=3).setup("fit")


# ------------------------------------------------------------------------------------- AC-GAN
def _cross_entropy(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """By hand: the mean of -log softmax(logits)[label]."""
    log_p = logits - logits.exp().sum(1, keepdim=True).log()
    return -log_p[torch.arange(len(labels)), labels].mean()


def test_acgan_terms_join_both_losses_with_the_released_weights(tmp_path: Path) -> None:
    torch.manual_seed(0)
    gen = ConditionalResNetGenerator((3, 16, 16), latent_dim=8, dim=8, num_classes=4)
    critic = ACGANResNetCritic((3, 16, 16), dim=8, num_classes=4)
    assert critic.aux_weights == (1.0, 0.1)  # ACGAN_SCALE, ACGAN_SCALE_G
    model = WGANGP(gen, critic, n_critic=1, generator_batch_multiple=2, max_generator_steps=1)
    x, y = torch.rand(6, 3, 16, 16) * 2 - 1, torch.tensor([0, 1, 2, 3, 0, 1])
    noise, fake_labels = torch.randn(12, 8), torch.tensor([3, 2, 1, 0] * 3)
    model.noise = lambda n: noise[:n]  # type: ignore[method-assign]
    model.random_labels = lambda n: fake_labels[:n]  # type: ignore[method-assign]
    checked: list[str] = []
    backward = model.manual_backward

    def check_then_backward(loss: torch.Tensor) -> None:
        with torch.no_grad():  # the expected loss with the parameters the step used (before its update)
            if not checked:  # critic step: WGAN loss + 1.0 * CE on the real images only
                scores_real, logits_real = critic(x, y)
                scores_fake, _ = critic(gen(noise[:6], y), y)
                expected = scores_fake.mean() - scores_real.mean() + 1.0 * _cross_entropy(logits_real, y)
                checked.append("critic")
            else:  # generator step on twice the batch: -E[D(G(z, c))] + 0.1 * CE(logits(G(z, c)), c)
                scores, logits = critic(gen(noise, fake_labels), fake_labels)
                expected = -scores.mean() + 0.1 * _cross_entropy(logits, fake_labels)
                checked.append("generator")
        torch.testing.assert_close(loss.detach(), expected, rtol=1e-5, atol=1e-6)
        backward(loss)

    model.manual_backward = check_then_backward  # type: ignore[method-assign]
    with pytest.warns(UserWarning, match="critic"):  # no penalty in this check: the run says so
        trainer(tmp_path, callbacks=[]).fit(model, DataLoader(TensorDataset(x, y), batch_size=6))
    assert checked == ["critic", "generator"]


def test_acgan_logs_the_classifiers_accuracy_on_real_and_generated_images(tmp_path: Path) -> None:
    """As the released code's ``train acc`` and ``fake acc``: argmax of the class logits against the labels."""
    torch.manual_seed(0)
    gen = ConditionalResNetGenerator((3, 16, 16), latent_dim=8, dim=8, num_classes=4)
    critic = ACGANResNetCritic((3, 16, 16), dim=8, num_classes=4)
    model = WGANGP(gen, critic, n_critic=1, max_generator_steps=1)
    x, y = torch.rand(8, 3, 16, 16) * 2 - 1, torch.tensor([0, 1, 2, 3] * 2)
    noise = torch.randn(8, 8)
    model.noise = lambda n: noise[:n]  # type: ignore[method-assign]
    with torch.no_grad():  # the classifier before the critic step updates it
        want_real = float((critic(x, y)[1].argmax(1) == y).float().mean())
        want_fake = float((critic(gen(noise, y), y)[1].argmax(1) == y).float().mean())
    fit = trainer(tmp_path, log_every_n_steps=1)
    fit.fit(model, DataLoader(TensorDataset(x, y), batch_size=8))
    got = fit.callback_metrics
    assert float(got["train/aux_acc_real"]) == pytest.approx(want_real)
    assert float(got["train/aux_acc_fake"]) == pytest.approx(want_fake)
    unconditional = WGANGP(DCGANGenerator((1, 8, 8), latent_dim=4, dim=4), DCGANCritic((1, 8, 8), dim=4))
    plain = trainer(tmp_path, log_every_n_steps=1, max_steps=1)
    plain.fit(unconditional, DataLoader(TensorDataset(torch.rand(4, 1, 8, 8) * 2 - 1), batch_size=4))
    assert "train/aux_acc_real" not in plain.callback_metrics  # only a critic with a classifier head


def test_acgan_config_trains_with_the_gradient_penalty(tmp_path: Path) -> None:
    gen = ConditionalResNetGenerator((3, 16, 16), latent_dim=8, dim=8, num_classes=4, init="paper")
    critic = ACGANResNetCritic((3, 16, 16), dim=8, num_classes=4, init="paper")
    model = WGANGP(gen, critic, n_critic=2, max_generator_steps=2, sample_bn="batch")
    data = TensorDataset(torch.rand(16, 3, 16, 16) * 2 - 1, torch.arange(16) % 4)
    trainer(tmp_path).fit(model, DataLoader(data, batch_size=4))  # the penalty sees the scores only
    assert model.generator_steps == 2
    assert model.score(data.tensors[0][:4], data.tensors[1][:4]).shape == (4,)


def test_cifar10_acgan_config_prints_a_config_that_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture, repo_root: Path
) -> None:
    monkeypatch.chdir(repo_root)
    monkeypatch.setattr(sys, "argv", ["src.train"])
    with pytest.raises(SystemExit):
        build_cli(["--config=configs/cifar10.yaml", "--config=configs/cifar10_acgan.yaml", "--print_config"])
    printed = capsys.readouterr().out
    model = yaml.safe_load(printed)["model"]["init_args"]
    assert model["critic"]["class_path"] == "src.nets.ACGANResNetCritic"
    assert (
        model["critic"]["init_args"] | {"critic_weight": 1.0, "generator_weight": 0.1, "init": "paper"}
        == model["critic"]["init_args"]
    )
    assert model["generator"]["class_path"] == "src.nets.ConditionalResNetGenerator"
    assert (model["generator_batch_multiple"], model["sample_bn"]) == (2, "batch")
    (tmp_path / "printed.yaml").write_text(printed)
    skip_md5(monkeypatch)
    write_cifar10(tmp_path / "data", n_per_batch=8, n_test=16)
    main([
        f"--config={tmp_path / 'printed.yaml'}",
        f"--data.data_dir={tmp_path / 'data'}",
        "--data.global_batch_size=8",
        "--model.max_generator_steps=2",
        "--model.generator.init_args.dim=8",
        "--model.critic.init_args.dim=8",
        "--trainer.accelerator=cpu",
        "--trainer.devices=1",
        "--trainer.limit_val_batches=1",
        "--trainer.enable_progress_bar=false",
        f"--trainer.logger.init_args.save_dir={tmp_path / 'runs'}",
        f"--checkpoint.dirpath={tmp_path / 'ckpt'}",
        "--quality=null",
        "--best=null",
    ])  # fmt: skip
    ckpt = torch.load(tmp_path / "ckpt" / "last.ckpt", map_location="cpu", weights_only=False)
    assert ckpt["wgan_gp"]["generator_steps"] == 2 and (tmp_path / "runs" / "cifar10_acgan").is_dir()
