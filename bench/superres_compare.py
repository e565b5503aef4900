"""Super-resolution side by side on the held-out test crops: bicubic, content only, content + WGAN-GP.

Loads two checkpoints of ``configs/superres.yaml`` runs (one trained with ``--model.adversarial_weight=0``),
measures PSNR, SSIM and sharpness (:mod:`src.evaluation.superres_quality`) of each and of bicubic upsampling on the
same test crops of the run's datamodule, prints a Markdown table and writes a picture with the columns
LR (nearest) | bicubic | content only | content + WGAN-GP | HR. Quality only, no timing: any load. With
``--lpips-weights`` (a local copy of torchvision's ImageNet weights of ``--lpips-net``) the table adds LPIPS.

    python -m bench.superres_compare CONTENT_CKPT WGAN_CKPT [--out docs/superres.png] [--pictures 6]
        [--lpips-net alex --lpips-weights alexnet-owt-7be5be79.pth]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
import torch.nn.functional as F
from torchvision.utils import make_grid, save_image

from src.evaluation.superres_quality import sr_metrics
from src.load_run import load_run
from src.metrics.lpips import build_lpips, lpips_sum
from src.utils.degradation import bicubic_upsample


@torch.no_grad()
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("content_ckpt", type=Path)
    parser.add_argument("wgan_ckpt", type=Path)
    parser.add_argument("--out", type=Path, default=Path("docs/superres.png"))
    parser.add_argument("--pictures", type=int, default=6)
    parser.add_argument("--lpips-net", default="alex", choices=("alex", "vgg", "squeeze"))
    parser.add_argument("--lpips-weights", type=Path, help="local torchvision weights of --lpips-net")
    args = parser.parse_args()
    lpips = build_lpips(args.lpips_net, str(args.lpips_weights)) if args.lpips_weights else None
    runs = {
        name: load_run(path)
        for name, path in (("content only", args.content_ckpt), ("content + WGAN-GP", args.wgan_ckpt))
    }
    data = next(iter(runs.values())).datamodule
    data.setup("test")
    sums: dict[str, dict[str, float]] = {}
    columns: list[list[torch.Tensor]] = [[] for _ in range(len(runs) + 3)]
    count = 0
    for batch in data.test_dataloader():
        first = next(iter(runs.values())).model
        hr, lr = first.condition(batch)
        outputs = {"bicubic": bicubic_upsample(lr, tuple(hr.shape[-2:]))}
        outputs.update({name: run.model.upscale(lr) for name, run in runs.items()})
        for name, images in outputs.items():
            values = sr_metrics(images, hr)
            if lpips is not None:
                values["lpips"] = lpips_sum(lpips, images, hr)
            for key, value in values.items():
                sums.setdefault(name, {}).setdefault(key, 0.0)
                sums[name][key] += float(value.sum())
        count += hr.shape[0]
        for column, images in zip(
            columns, [F.interpolate(lr, size=hr.shape[-2:], mode="nearest"), *outputs.values(), hr]
        ):
            column.append(images)
    total = torch.cat(columns[0]).shape[0]
    picks = torch.linspace(0, total - 1, min(args.pictures, total)).round().long()
    rows = torch.stack([torch.cat(c)[picks] for c in columns], 1).flatten(0, 1)  # (P * columns, C, H, W)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    save_image(make_grid(rows, nrow=len(columns), padding=2, normalize=True, value_range=(-1, 1)), args.out)
    print(
        f"{count} test crops; picture: {args.out} (LR nearest | bicubic | content only | content + WGAN-GP | HR)"
    )
    extra = (" LPIPS |", "---|") if lpips is not None else ("", "")
    print(f"| model | PSNR (dB) | SSIM | sharpness (1 = HR) |{extra[0]}\n|---|---|---|---|{extra[1]}")
    for name, s in sums.items():
        cells = (
            f"| {name} | {s['psnr'] / count:.2f} | {s['ssim'] / count:.4f} | {s['grad'] / s['grad_hr']:.3f} |"
        )
        print(cells + (f" {s['lpips'] / count:.4f} |" if lpips is not None else ""))


if __name__ == "__main__":
    main()
