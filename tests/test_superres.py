"""Super-resolution: networks, degradation, the conditioned loop (penalty, content loss, content-only), data, metrics."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from src.evaluation import SuperResolutionQuality
from src.evaluation.superres_quality import mean_gradient, sr_metrics
from src.models import SuperResolutionWGAN
from src.nets import PatchCritic, SRResNetGenerator
from src.regularizers import GradientPenalty
from src.utils.degradation import bicubic_downsample, bicubic_upsample
from tests.helpers import photos, sr_model, trainer


@pytest.mark.parametrize("scale", [2, 4])
@pytest.mark.parametrize("noise_channels", [0, 2])
def test_generator_and_critic_shapes_at_odd_sizes(scale: int, noise_channels: int) -> None:
    gen = SRResNetGenerator((3, 8, 8), scale=scale, dim=8, num_blocks=2, noise_channels=noise_channels)
    lr = torch.rand(2, 3, 7, 13) * 2 - 1  # odd, non-square
    sr = gen(lr)
    assert sr.shape == (2, 3, 7 * scale, 13 * scale)
    for condition in (False, True):
        critic = PatchCritic((3, 8, 8), dim=8, num_downsamples=2, condition=condition)
        assert critic(sr, lr).shape == (2,)
    gray = SRResNetGenerator((1, 8, 8), scale=scale, dim=4, num_blocks=1)
    assert gray(torch.zeros(1, 1, 5, 3)).shape == (1, 1, 5 * scale, 3 * scale)


def test_an_untrained_residual_generator_outputs_bicubic_and_scale_must_be_a_power_of_two() -> None:
    lr = torch.rand(2, 3, 9, 11) * 2 - 1
    torch.testing.assert_close(SRResNetGenerator(scale=4, dim=8)(lr), bicubic_upsample(lr, 4))
    for scale in (3, 1, 6):
        with pytest.raises(ValueError, match=f"scale must be a power of two >= 2.*scale={scale}"):
            SRResNetGenerator(scale=scale)
    with pytest.raises(ValueError, match=r"takes low-resolution images \(B, 3, h, w\)"):
        SRResNetGenerator(scale=2)(torch.zeros(1, 4, 8, 8))


def test_paper_init_changes_the_weights_like_the_other_nets() -> None:
    torch.manual_seed(0)
    a = SRResNetGenerator(dim=16, init="torch")
    torch.manual_seed(0)
    b = SRResNetGenerator(dim=16, init="paper")
    w_a, w_b = a.head[0].weight, b.head[0].weight  # conv 3x3, 3 -> 16: tflib's He std sqrt(4 / (27 + 144))
    assert w_b.std().item() == pytest.approx((4 / (27 + 144)) ** 0.5, rel=0.15)
    assert w_a.std().item() == pytest.approx((1 / (3 * 27)) ** 0.5, rel=0.15)  # PyTorch's default
    assert PatchCritic(dim=8, init="paper").score.bias.abs().sum() == 0


def test_degradation_is_pil_bicubic_with_antialiasing_rounded_to_8_bits() -> None:
    rng = np.random.default_rng(0)
    pixels = (rng.random((48, 64, 3)) * 255).astype(
        np.uint8
    )  # noise: aliasing would show without antialiasing
    expected = np.asarray(Image.fromarray(pixels).resize((16, 12), Image.BICUBIC), dtype=np.float32)
    hr = torch.from_numpy(pixels).permute(2, 0, 1)[None].float() / 127.5 - 1
    lr = bicubic_downsample(hr, 4)  # (1, 3, 12, 16)
    ours = ((lr[0].permute(1, 2, 0) + 1) * 127.5).numpy()
    assert lr.shape == (1, 3, 12, 16)
    np.testing.assert_allclose(ours, np.round(ours), atol=1e-3)  # 8-bit levels
    assert np.abs(ours - expected).max() <= 1.0  # PIL rounds its own way: at most one level apart
    with pytest.raises(ValueError, match="not a multiple of the scale 4.*data.image_size"):
        bicubic_downsample(torch.zeros(1, 3, 30, 32), 4)


class _Spy(GradientPenalty):
    """The gradient penalty, recording what it was given."""

    def __init__(self) -> None:
        super().__init__(weight=10.0)
        self.seen: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = []

    def penalty(self, critic, real, fake):  # noqa: ANN001, ANN201
        self.seen.append((real.detach().clone(), fake.detach().clone(), critic(real).detach().clone()))
        return super().penalty(critic, real, fake)


def test_the_penalty_interpolates_real_hr_and_the_generated_hr_of_the_same_lr(tmp_path: Path) -> None:
    model = sr_model(condition=True, max_generator_steps=1)
    before = {k: v.clone() for k, v in model.generator.state_dict().items()}
    critic_before = {k: v.clone() for k, v in model.critic.state_dict().items()}
    spy = _Spy()
    trainer(tmp_path, callbacks=[spy], max_epochs=1, limit_train_batches=1).fit(model, photos())
    real, fake, scores = spy.seen[0]
    gen = SRResNetGenerator((3, 32, 32), scale=2, dim=8, num_blocks=1)
    gen.load_state_dict(before)
    lr = bicubic_downsample(real, 2)
    torch.testing.assert_close(fake, gen(lr))  # the fake HR of the real HR's own LR image
    critic = PatchCritic((3, 32, 32), dim=8, num_downsamples=2, condition=True)
    critic.load_state_dict(critic_before)
    torch.testing.assert_close(scores, critic(real, lr))  # the conditioned critic scores HR given its LR


def test_the_generator_loss_is_weighted_content_plus_adversarial(tmp_path: Path) -> None:
    model = sr_model(content_weight=2.0, adversarial_weight=0.5, max_generator_steps=1)
    t = trainer(tmp_path, max_epochs=1, limit_train_batches=1, log_every_n_steps=1)
    t.fit(model, photos())
    m = t.callback_metrics
    expected = 2.0 * m["train/content_loss"] + 0.5 * m["train/gen_adversarial"]
    torch.testing.assert_close(m["train/gen_loss"], expected)
    assert {"train/gp", "train/wasserstein", "train/critic_loss"} <= m.keys()


def test_adversarial_weight_zero_trains_content_only_with_no_critic_step(tmp_path: Path) -> None:
    model = sr_model(adversarial_weight=0.0, content_loss="mse", max_generator_steps=3)
    critic_before = {k: v.clone() for k, v in model.critic.state_dict().items()}
    gen_before = {k: v.clone() for k, v in model.generator.state_dict().items()}
    t = trainer(tmp_path, max_epochs=5, limit_train_batches=3, log_every_n_steps=1)
    t.fit(model, photos())
    assert (model.generator_steps, model.critic_steps) == (3, 0)
    assert all(torch.equal(v, model.critic.state_dict()[k]) for k, v in critic_before.items())
    assert any(not torch.equal(v, model.generator.state_dict()[k]) for k, v in gen_before.items())
    torch.testing.assert_close(t.callback_metrics["train/gen_loss"], t.callback_metrics["train/content_loss"])
    assert "train/critic_loss" not in t.callback_metrics


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"content_loss": "l2"}, "content_loss must be 'l1' or 'mse'"),
        ({"adversarial_weight": -1.0}, "adversarial_weight must be >= 0"),
        ({"content_weight": 0.0, "adversarial_weight": 0.0}, "both 0: nothing to train"),
        ({"generator_batch_multiple": 2}, "generator_batch_multiple must be 1"),
    ],
)
def test_bad_options_are_refused_naming_them(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        sr_model(**kwargs)


def test_sample_photo_splits_share_no_pixel() -> None:
    data = photos(image_size=64, stride=8)
    data.setup("fit")
    rows = {}
    for name in ("train", "val", "test"):
        boxes = data.datasets[name].dataset.boxes
        rows[name] = (min(b[1] for _, b in boxes), max(b[3] for _, b in boxes))
        assert {p for p, _ in boxes} == {0, 1}  # both photos
    assert rows["train"][1] <= rows["val"][0] < rows["val"][1] <= rows["test"][0]
    assert rows["test"][1] <= 427 and len(data.datasets["val"]) == len(data.datasets["test"]) == 20
    x, _ = next(iter(data.train_dataloader()))
    assert x.shape == (4, 3, 64, 64) and -1 <= x.min() < x.max() <= 1


def test_metrics_against_hand_computed_values() -> None:
    hr = torch.rand(3, 3, 16, 16) * 2 - 1
    noisy = (hr + 0.1 * torch.randn_like(hr)).clamp(-1, 1)
    values = sr_metrics(noisy, hr)
    mse = (((noisy + 1) / 2 - (hr + 1) / 2) ** 2).mean(dim=(1, 2, 3))
    torch.testing.assert_close(values["psnr"], 10 * torch.log10(1 / mse))
    torch.testing.assert_close(sr_metrics(hr, hr)["ssim"], torch.ones(3))
    flat = torch.zeros(1, 3, 8, 8)
    assert mean_gradient(flat).item() == 0
    ramp = torch.arange(8.0).expand(1, 3, 8, 8) / 10  # slope 0.1 per pixel along x
    torch.testing.assert_close(mean_gradient(ramp), torch.tensor([0.1]))


def test_quality_of_an_untrained_model_equals_bicubic_and_writes_the_picture(tmp_path: Path) -> None:
    model = sr_model(scale=4)  # residual generator at init: exactly bicubic
    quality = SuperResolutionQuality(num_pictures=3)
    t = trainer(tmp_path, callbacks=[quality], limit_test_batches=1)
    t.test(model, photos(), verbose=False)
    m = t.callback_metrics
    for name in ("psnr", "ssim", "sharpness"):
        torch.testing.assert_close(m[f"test/{name}"], m[f"test/{name}_bicubic"])
    assert 0.1 < m["test/sharpness_bicubic"] < 0.6  # bicubic x4 blurs
    assert 15 < m["test/psnr_bicubic"] < 40
    picture = Image.open(quality.last_picture)
    assert picture.size == (4 * 32 + 5 * 2, 3 * 32 + 4 * 2)  # 3 rows of LR | bicubic | SR | HR, 2 px padding


def test_a_resumed_run_equals_an_uninterrupted_one(tmp_path: Path) -> None:
    import lightning.pytorch as pl

    def fit(steps: int, ckpt: str | None = None) -> tuple[SuperResolutionWGAN, pl.Trainer]:
        pl.seed_everything(0)
        model = sr_model(condition=True, max_generator_steps=steps, ema_decay=0.9)
        t = trainer(
            tmp_path,
            max_epochs=10,
            limit_train_batches=2,
            enable_checkpointing=True,
            default_root_dir=tmp_path / str(steps),
        )
        t.fit(model, photos(), ckpt_path=ckpt)
        return model, t

    straight, _ = fit(4)
    _, first = fit(2)
    resumed, _ = fit(4, first.checkpoint_callback.best_model_path)
    assert (
        (resumed.generator_steps, resumed.critic_steps)
        == (straight.generator_steps, straight.critic_steps)
        == (4, 4)
    )
    for (name, value), other in zip(resumed.state_dict().items(), straight.state_dict().values()):
        torch.testing.assert_close(value, other, msg=name)  # generator, critic and the EMA generator


def test_the_picture_goes_to_a_logger_that_takes_images(tmp_path: Path) -> None:
    from lightning.pytorch.loggers import CSVLogger

    class ImageLogger(CSVLogger):  # the WandbLogger API the callback calls
        def __init__(self, save_dir: Path) -> None:
            super().__init__(save_dir)
            self.images: list[tuple[str, list, int]] = []

        def log_image(self, key: str, images: list, step: int) -> None:
            self.images.append((key, images, step))

    logger = ImageLogger(tmp_path)
    quality = SuperResolutionQuality(num_pictures=2)
    t = trainer(tmp_path, callbacks=[quality], logger=logger, limit_test_batches=1)
    t.test(sr_model(scale=4), photos(), verbose=False)
    (key, images, _), *_ = logger.images
    width, height = Image.open(quality.last_picture).size
    assert key == "test/superres" and tuple(images[0].shape) == (3, height, width)


@pytest.mark.slow  # 500 generator steps on 32 px crops
def test_content_training_beats_bicubic_on_the_held_out_test_crops(tmp_path: Path) -> None:
    from functools import partial

    torch.manual_seed(0)
    gen = SRResNetGenerator((3, 32, 32), scale=4, dim=16, num_blocks=2)
    adam = partial(torch.optim.Adam, lr=1e-3, betas=(0.5, 0.9))
    model = SuperResolutionWGAN(
        gen, PatchCritic(dim=8), adversarial_weight=0.0, generator_optimizer=adam, max_generator_steps=500
    )
    quality = SuperResolutionQuality(num_pictures=0)
    t = trainer(tmp_path, callbacks=[quality], max_epochs=100, limit_test_batches=None)
    data = photos(image_size=32, stride=8, batch_size=16, flip=True)
    t.fit(model, data)
    t.test(model, data, verbose=False)
    m = t.callback_metrics
    assert m["test/psnr"] > m["test/psnr_bicubic"] + 0.1  # dB
    assert m["test/ssim"] > m["test/ssim_bicubic"]
    assert m["test/sharpness"] > m["test/sharpness_bicubic"]
