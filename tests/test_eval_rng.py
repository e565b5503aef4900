"""Training randomness does not depend on when, or whether, evaluations run.

The validation loop draws from torch's global RNG in several places (a shuffled val DataLoader's iterator, a
fork's metric callback); ``WGANGP`` restores the training RNG after every validation inside ``fit``, its own
``val/wasserstein`` noise comes from a seeded generator, and a checkpoint written during a validation keeps the
state training resumes from.
"""

from __future__ import annotations

from pathlib import Path

import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from torch.utils.data import DataLoader, TensorDataset

from src.regularizers import GradientPenalty
from tests.helpers import toy_model, trainer

DATA = torch.randn(256, 2, generator=torch.Generator().manual_seed(0)) * 2


class DrawsInValidation(pl.Callback):
    """A metric that draws from the global RNG at the end of each validation, as a fork's might."""

    def on_validation_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        torch.randn(1000)


def fit(tmp_path: Path, every: int | None, **kwargs) -> tuple[dict, pl.Trainer]:
    """Four epochs of 8 steps from seed 0, validating every ``every`` epochs (``None``: never)."""
    pl.seed_everything(0)
    model = toy_model(n_critic=2, hidden=16)
    loaders = {"train_dataloaders": DataLoader(TensorDataset(DATA), batch_size=32, shuffle=True)}
    callbacks = [GradientPenalty(), *kwargs.pop("callbacks", [])]
    options = {"max_epochs": 4, "limit_val_batches": 0, "num_sanity_val_steps": 0}
    if every is not None:  # a shuffled val loader: its iterator draws a seed from the global RNG
        loaders["val_dataloaders"] = DataLoader(TensorDataset(DATA[:64]), batch_size=32, shuffle=True)
        callbacks.append(DrawsInValidation())
        options.update(limit_val_batches=2, num_sanity_val_steps=1, check_val_every_n_epoch=every)
    t = trainer(tmp_path, callbacks, **(options | kwargs))
    t.fit(model, **loaders)
    return {k: v.clone() for k, v in model.state_dict().items()}, t


def test_the_trajectory_is_the_same_with_evaluation_on_off_or_at_another_frequency(tmp_path: Path) -> None:
    without, _ = fit(tmp_path / "off", None)
    for every in (1, 2):
        with_eval, t = fit(tmp_path / f"every{every}", every)
        assert "val/wasserstein" in t.callback_metrics
        assert without.keys() == with_eval.keys()
        for key, value in without.items():
            torch.testing.assert_close(with_eval[key], value, rtol=0, atol=0, msg=f"{key} (every {every})")


def test_val_wasserstein_uses_the_same_noise_at_every_evaluation(tmp_path: Path) -> None:
    pl.seed_everything(0)
    model = toy_model(hidden=16)
    seen = []
    sample = model.sample
    model.sample = lambda *a, noise=None, **kw: seen.append(noise.clone()) or sample(*a, noise=noise, **kw)
    val = DataLoader(TensorDataset(DATA[:32]), batch_size=32)
    t = trainer(tmp_path, [], limit_val_batches=1)
    t.validate(model, val, verbose=False)
    torch.randn(10)  # the global RNG moves on
    t.validate(model, val, verbose=False)
    assert len(seen) == 2 and torch.equal(seen[0], seen[1])


class RecordsRNG(pl.Callback):
    """The CPU RNG state after each epoch's last training step and when each validation ends."""

    def __init__(self) -> None:
        self.after_step: dict[int, torch.Tensor] = {}
        self.val_end: dict[int, torch.Tensor] = {}

    def on_train_batch_end(self, trainer: pl.Trainer, *args: object) -> None:
        self.after_step[trainer.current_epoch] = torch.get_rng_state()

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.val_end[trainer.current_epoch] = torch.get_rng_state()


def test_a_checkpoint_saved_during_validation_keeps_the_state_training_resumes_from(tmp_path: Path) -> None:
    ckpt = ModelCheckpoint(
        dirpath=tmp_path / "ckpt", save_top_k=-1, save_on_train_epoch_end=False
    )  # in validation
    record = RecordsRNG()
    fit(tmp_path, 1, callbacks=[record, ckpt], enable_checkpointing=True, max_epochs=2)
    for epoch in (0, 1):
        (path,) = (tmp_path / "ckpt").glob(f"epoch={epoch}-*.ckpt")
        saved = torch.load(path, weights_only=True)["wgan_gp"]["rng"]["torch"][0]
        assert torch.equal(saved, record.after_step[epoch])  # not the state the evaluation left
        assert not torch.equal(saved, record.val_end[epoch])
