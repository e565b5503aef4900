"""ImageQuality under DDP for tests/test_image_quality_ddp.py: ``python tests/ddp_image_quality.py OUT DEVICES``.

Runs ``Trainer.validate`` with the digits ImageQuality on ``DEVICES`` CPU processes (gloo; Lightning's
subprocess launcher runs this script again for every other rank) and writes what each rank logged to
``OUT/rank<r>.json``. The model is built from a fixed seed, so every launch evaluates the same generator.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import lightning.pytorch as pl
import torch
from torch import Tensor, nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from src.data import DigitsDataModule  # noqa: E402
from src.data.transforms import to_signed_unit  # noqa: E402
from src.evaluation import ImageQuality  # noqa: E402
from src.models import WGANGP  # noqa: E402
from src.nets import DCGANCritic  # noqa: E402

NUM = 301  # odd: the ranks get uneven shares of the generated and the real images


class DigitBank(nn.Module):
    """A 'generator' that maps each noise row to one of the real digits: diverse, classifiable samples, and
    the same image for the same noise row on any rank."""

    latent_dim = 2

    def __init__(self, bank: Tensor) -> None:
        super().__init__()
        self.register_buffer("bank", bank)

    def forward(self, z: Tensor) -> Tensor:
        index = (z[:, 0].abs() * 1e4).long() % len(self.bank)  # (B,)
        return self.bank[index]


def main(out: Path, devices: int) -> None:
    torch.manual_seed(0)
    data = DigitsDataModule()
    bank = to_signed_unit(data.reference_images("val"))  # (N, 1, 32, 32): held-out digits, not the reference
    model = WGANGP(DigitBank(bank), DCGANCritic(data_shape=(1, 32, 32), dim=8))
    callback = ImageQuality(
        feature_extractor="digits",
        num_samples=NUM,
        num_real=NUM,
        kid_subsets=3,
        kid_subset_size=NUM,  # subsets of all images: KID does not depend on the order the ranks gather in
        is_splits=2,
        cache_dir=str(out / f"cache{devices}"),
    )
    trainer = pl.Trainer(
        accelerator="cpu",
        devices=devices,
        strategy="ddp" if devices > 1 else "auto",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        limit_val_batches=1,
        callbacks=[callback],
    )
    trainer.validate(model, datamodule=data, verbose=False)
    record = {
        "world_size": trainer.world_size,
        "metrics": {k: float(v) for k, v in trainer.callback_metrics.items()},
        "real_count": callback.real_count,
    }
    (out / f"devices{devices}-rank{trainer.global_rank}.json").write_text(json.dumps(record))


if __name__ == "__main__":
    main(Path(sys.argv[1]), int(sys.argv[2]))
