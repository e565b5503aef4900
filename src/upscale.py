"""Upscale your own images with a super-resolution checkpoint.

``python -m src.upscale --ckpt CKPT --input IMAGE_OR_FOLDER --output PATH [--tile 128] [--overlap 32]
[--device cpu]`` upscales every image by the checkpoint's scale and writes PNGs:

- an image file as input: ``--output`` is the PNG to write (a path ending in ``.png``) or a folder, which gets
  ``<name>_x<scale>.png``;
- a folder as input: every image under it (recursively, torchvision's extensions) is written to the folder
  ``--output`` as ``<relative path>_x<scale>.png``.

Images of any size are cut into overlapping tiles of ``--tile`` LR pixels (:mod:`src.models.tiling`), so memory
stays bounded. The model keeps the channel count it was trained on: a 3-channel model takes RGB (and palette)
images, a 1-channel model grayscale ones; anything else (an alpha channel, RGB for a grayscale model) is refused
with the conversion to make. 16-bit and float images are scaled to 8 bits first (:mod:`src.data.image_modes`).
The EMA generator is used when the run kept one.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from src.data.folder import list_images
from src.data.image_modes import to_8bit
from src.models import SuperResolutionWGAN
from src.models.tiling import upscale_tiled
from src.utils.checkpoint import load_checkpoint

#: PIL modes by the channel count they carry, and how a user fixes a mismatch.
_CHANNELS = {"1": 1, "L": 1, "P": 3, "RGB": 3, "YCbCr": 3, "LA": 2, "PA": 4, "RGBA": 4, "CMYK": 4}


def load_sr_model(ckpt: str | Path, device: str | torch.device = "cpu") -> SuperResolutionWGAN:
    """The super-resolution model of a checkpoint written by ``python -m src.train``, in eval mode.

    Raises:
        FileNotFoundError: ``ckpt`` is not a file.
        ValueError: The checkpoint is not a super-resolution run's, or lacks its networks' configuration.
    """
    if not Path(ckpt).is_file():
        raise FileNotFoundError(f"--ckpt {str(ckpt)!r} is not a file")
    hparams = load_checkpoint(ckpt, mmap=True).get("hyper_parameters", {})
    if not isinstance(hparams.get("generator"), dict) or "adversarial_weight" not in hparams:
        raise ValueError(
            f"--ckpt {ckpt} is not a super-resolution checkpoint written by `python -m src.train` (e.g. "
            "--config configs/superres.yaml): it lacks model.adversarial_weight or the generator's class_path"
        )
    model = SuperResolutionWGAN.load_from_checkpoint(ckpt, map_location=device, weights_only=True)
    return model.eval()


def read_image(path: Path, channels: int) -> Tensor:
    """An image file as a tensor (1, channels, H, W) in [-1, 1].

    Raises:
        ValueError: When the image has another channel count than ``channels`` (naming the conversion).
    """
    with Image.open(path) as image:
        image.load()
        image, _ = to_8bit(image)
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    found = _CHANNELS.get(image.mode)
    if found is None:
        raise ValueError(f"{path}: PIL mode {image.mode!r} is not supported; save it as RGB or grayscale PNG")
    if found != channels:
        want = "RGB" if channels == 3 else "grayscale (mode L)"
        raise ValueError(
            f"{path} has {found} channel(s) (PIL mode {image.mode}) but the model was trained on {channels} "
            f"({want}); convert the image to {want} first"
            + (", dropping its alpha channel" if image.mode in ("RGBA", "LA", "PA") else "")
        )
    image = image.convert("RGB" if channels == 3 else "L")
    array = np.asarray(image, dtype=np.float32).reshape(image.height, image.width, channels)
    return torch.from_numpy(array).permute(2, 0, 1)[None] / 127.5 - 1  # (1, C, H, W)


def write_png(image: Tensor, path: Path) -> None:
    """Save an image (1, C, H, W) in [-1, 1] as an 8-bit PNG."""
    pixels = ((image[0].float().clamp(-1, 1) + 1) * 127.5).round().byte().permute(1, 2, 0).cpu().numpy()
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels[..., 0] if pixels.shape[-1] == 1 else pixels).save(path, format="PNG")


def plan(source: Path, output: Path, scale: int) -> list[tuple[Path, Path]]:
    """The ``(input, output)`` pairs to process.

    Raises:
        FileNotFoundError: ``source`` does not exist, or a folder holds no image files.
        ValueError: A folder as input with a ``.png`` file as output.
    """
    suffix = f"_x{scale}.png"
    if source.is_file():
        target = output if output.suffix.lower() == ".png" else output / (source.stem + suffix)
        return [(source, target)]
    if not source.is_dir():
        raise FileNotFoundError(f"--input {source} does not exist")
    if output.suffix.lower() == ".png":
        raise ValueError(f"--input {source} is a folder, so --output must be a folder, not the file {output}")
    files = list_images(source)
    if not files:
        raise FileNotFoundError(
            f"--input {source} contains no image files (searched recursively for .jpg, .jpeg, .png, .ppm, .bmp, "
            ".pgm, .tif, .tiff, .webp)"
        )
    return [(f, output / f.relative_to(source).with_name(f.stem + suffix)) for f in files]


def upscale_files(
    model: SuperResolutionWGAN, source: Path, output: Path, tile: int = 128, overlap: int = 32
) -> list[Path]:
    """Upscale every image of ``source`` (a file or a folder) into ``output``; returns the PNGs written."""
    channels = int(
        getattr(model.generator, "channels", model.hparams.get("generator", {}).get("channels", 3))
    )
    written = []
    for src, dst in plan(source, output, model.scale):
        lr = read_image(src, int(channels)).to(model.device)
        write_png(upscale_tiled(model.upscale, lr, model.scale, tile, overlap), dst)
        written.append(dst)
    return written


def main(argv: list[str] | None = None) -> list[Path]:
    """Command-line entry point; returns the PNGs written."""
    parser = argparse.ArgumentParser(description="Upscale images with a super-resolution checkpoint.")
    parser.add_argument("--ckpt", type=Path, required=True, help="checkpoint of a super-resolution run")
    parser.add_argument("--input", type=Path, required=True, help="an image file or a folder of images")
    parser.add_argument("--output", type=Path, required=True, help="a .png file (for one image) or a folder")
    parser.add_argument("--tile", type=int, default=128, help="tile side in input pixels (bounds memory)")
    parser.add_argument("--overlap", type=int, default=32, help="input pixels shared by neighbouring tiles")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args(argv)
    if args.tile < 1 or not 0 <= args.overlap < args.tile:
        parser.error(
            f"--tile must be >= 1 and 0 <= --overlap < --tile, got --tile {args.tile} --overlap {args.overlap}"
        )
    try:
        model = load_sr_model(args.ckpt, args.device)
        written = upscale_files(model, args.input, args.output, args.tile, args.overlap)
    except (FileNotFoundError, ValueError) as error:
        parser.error(str(error))
    for path in written:
        print(path)
    return written


if __name__ == "__main__":
    main()
