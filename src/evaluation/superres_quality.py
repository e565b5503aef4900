"""Super-resolution quality on held-out crops: PSNR, SSIM and sharpness of SR and of bicubic, and a picture.

PSNR and SSIM (torchmetrics) are computed per image on RGB in [0, 1] (no border crop, no Y channel) and averaged
over the crops. Sharpness is the ratio of mean gradient magnitudes (the "average gradient" sharpness measure):
``mean |∇ SR| / mean |∇ HR|`` over the split, with forward differences. 1 is as sharp as HR; bicubic upsampling
(about 0.25 at x4 on the sample photos) and an L1/MSE-trained generator fall below 1, blurring the edges they are
unsure of. (A squared Laplacian weighs the frequencies near Nyquist so much that bicubic x4 scores 0.004.)
LPIPS (torchmetrics, lower is closer), when ``lpips_net`` is set, on the same crops clamped to [-1, 1],
grayscale replicated to RGB.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch
import torch.nn.functional as F
from torch import Tensor
from torchmetrics.functional.image import peak_signal_noise_ratio, structural_similarity_index_measure
from torchvision.utils import make_grid, save_image
from typing_extensions import override

from src.evaluation.schedule import ScheduledEvaluation
from src.metrics.lpips import build_lpips, lpips_sum
from src.utils.degradation import bicubic_upsample


def mean_gradient(images: Tensor) -> Tensor:
    """Mean gradient magnitude of each image (B,): forward differences, over channels and pixels."""
    images = images.float()
    dx = images.diff(dim=-1)[..., :-1, :]  # (B, C, H-1, W-1)
    dy = images.diff(dim=-2)[..., :, :-1]
    return (dx.pow(2) + dy.pow(2)).sqrt().mean(dim=(1, 2, 3))


def sr_metrics(upscaled: Tensor, hr: Tensor) -> dict[str, Tensor]:
    """Per-image PSNR (dB), SSIM and mean gradient magnitudes (B,) of upscaled images against HR, both in [-1, 1]."""
    up, ref = ((upscaled.float() + 1) / 2).clamp(0, 1), ((hr.float() + 1) / 2).clamp(0, 1)
    return {
        "psnr": peak_signal_noise_ratio(up, ref, data_range=1.0, reduction="none", dim=(1, 2, 3)),
        "ssim": structural_similarity_index_measure(up, ref, data_range=1.0, reduction="none"),
        "grad": mean_gradient(up),
        "grad_hr": mean_gradient(ref),
    }


def comparison_picture(lr: Tensor, bicubic: Tensor, sr: Tensor, hr: Tensor) -> Tensor:
    """A grid (3, H', W') with one row per crop: LR (nearest-neighbour upsampled) | bicubic | SR | HR."""
    nearest = F.interpolate(lr.float(), size=hr.shape[-2:], mode="nearest")
    rows = torch.stack([nearest, bicubic.float(), sr.float(), hr.float()], 1).flatten(0, 1)  # (4B, C, H, W)
    return make_grid(rows.cpu(), nrow=4, padding=2, normalize=True, value_range=(-1, 1))


class SuperResolutionQuality(ScheduledEvaluation):
    """PSNR, SSIM and sharpness of the model's SR output on the held-out crops, beside bicubic upsampling.

    Logs ``val/psnr``, ``val/ssim``, ``val/sharpness`` (the mean gradient magnitude of SR over that of HR), with
    ``lpips_net`` also ``val/lpips``, and the same with the suffix ``_bicubic`` (``test/...`` on the test split),
    and writes
    ``<run dir>/superres/<stage>-gen_step=N.png`` (LR nearest | bicubic | SR | HR on the first ``num_pictures``
    crops of the split), also sent to W&B or TensorBoard. Every rank measures the whole split (it is small), so
    all ranks log the same values.

    The model needs ``condition(batch) -> (hr, lr)`` and ``upscale(lr)`` (:class:`~src.models.SuperResolutionWGAN`).

    Args:
        every_n_epochs: Evaluate every this many epochs during fit.
        num_pictures: Crops in the picture (0: no picture).
        max_batches: Validation batches measured (``None``: the whole split); the test split is always measured whole.
        lpips_net: LPIPS's backbone, ``"alex"``, ``"vgg"`` or ``"squeeze"``; ``None``: no LPIPS.
        lpips_weights_path: A local copy of torchvision's ImageNet weights of that backbone (for ``alex``,
            ``alexnet-owt-7be5be79.pth``) for machines without internet; ``None`` downloads them once into the
            torch hub cache.
    """

    prog_bar_metric = "psnr"

    def __init__(
        self,
        every_n_epochs: int = 1,
        num_pictures: int = 6,
        max_batches: int | None = None,
        lpips_net: str | None = None,
        lpips_weights_path: str | None = None,
    ) -> None:
        super().__init__(every_n_epochs)
        if num_pictures < 0:
            raise ValueError(
                f"SuperResolutionQuality num_pictures must be >= 0, got num_pictures={num_pictures}"
            )
        if max_batches is not None and max_batches < 1:
            raise ValueError(
                f"SuperResolutionQuality max_batches must be >= 1 or null, got max_batches={max_batches}"
            )
        self.num_pictures, self.max_batches = num_pictures, max_batches
        if lpips_net is None and lpips_weights_path is not None:
            raise ValueError(
                f"SuperResolutionQuality lpips_weights_path={lpips_weights_path!r} needs lpips_net "
                "(alex, vgg or squeeze: the backbone those weights belong to)"
            )
        self.lpips = None if lpips_net is None else build_lpips(lpips_net, lpips_weights_path)
        self.last_picture: Path | None = None

    @override
    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        self._log_dir = (
            trainer.log_dir
        )  # a broadcast under DDP: read on every rank, not in the rank-zero write

    def _picks(self, loader: Any, limit: int | None) -> list[int]:
        """Indices of the pictured crops: ``num_pictures`` spread evenly over the crops measured."""
        total = len(loader.dataset) if hasattr(loader, "dataset") else self.num_pictures
        if limit is not None and getattr(loader, "batch_size", None):
            total = min(total, limit * loader.batch_size)
        if self.num_pictures == 0 or total == 0:
            return []
        return sorted({round(float(i)) for i in torch.linspace(0, total - 1, min(self.num_pictures, total))})

    def _loader(self, trainer: pl.Trainer, stage: str) -> Any:
        datamodule = trainer.datamodule
        if datamodule is None:
            raise ValueError("SuperResolutionQuality needs a datamodule with val and test loaders")
        return datamodule.val_dataloader() if stage == "val" else datamodule.test_dataloader()

    @override
    def measure(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> dict[str, float]:
        start = time.perf_counter()
        sums: dict[str, float] = {}
        count, shown = 0, []
        loader = self._loader(trainer, stage)
        limit = self.max_batches if stage == "val" else None
        picks = self._picks(loader, limit)  # crop indices spread evenly over the measured crops
        for index, batch in enumerate(loader):
            if limit is not None and index >= limit:
                break
            batch = pl_module.transfer_batch_to_device(batch, pl_module.device, 0)
            hr, lr = pl_module.condition(batch)
            sr, bicubic = pl_module.upscale(lr), bicubic_upsample(lr, tuple(hr.shape[-2:]))
            for name, images in (("", sr), ("_bicubic", bicubic)):
                values = sr_metrics(images, hr)
                if self.lpips is not None:
                    values["lpips"] = lpips_sum(self.lpips, images, hr)
                for key, value in values.items():
                    sums[key + name] = sums.get(key + name, 0.0) + float(value.sum())
            rows = [i - count for i in picks if count <= i < count + hr.shape[0]]
            if rows:
                shown.append(tuple(t[rows] for t in (lr, bicubic, sr, hr)))
            count += hr.shape[0]
        if count == 0:
            raise ValueError(f"SuperResolutionQuality: the {stage} split has no crops")
        result = {}
        for name in ("", "_bicubic"):
            result[f"psnr{name}"] = sums[f"psnr{name}"] / count
            result[f"ssim{name}"] = sums[f"ssim{name}"] / count
            result[f"sharpness{name}"] = sums[f"grad{name}"] / max(sums[f"grad_hr{name}"], 1e-12)
            if self.lpips is not None:
                result[f"lpips{name}"] = sums[f"lpips{name}"] / count
        if shown and trainer.is_global_zero:
            parts = [torch.cat(p) for p in zip(*shown)]
            self.write_picture(trainer, pl_module, stage, comparison_picture(*parts))
        self.last_duration_s = time.perf_counter() - start
        return result

    def write_picture(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str, grid: Tensor
    ) -> Path:
        """Save the picture under ``<run dir>/superres/`` and send it to the loggers that take images."""
        step = int(getattr(pl_module, "generator_steps", trainer.global_step))
        folder = Path(getattr(self, "_log_dir", None) or trainer.default_root_dir) / "superres"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{stage}-gen_step={step:06d}.png"
        save_image(grid, path)
        for logger in trainer.loggers:
            if hasattr(logger, "log_image"):  # WandbLogger
                logger.log_image(key=f"{stage}/superres", images=[grid], step=trainer.global_step)
            elif hasattr(getattr(logger, "experiment", None), "add_image"):  # TensorBoard
                logger.experiment.add_image(f"{stage}/superres", grid, global_step=step)
        self.last_picture = path
        return path
