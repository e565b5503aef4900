"""Every PIL mode that PNG, JPEG and TIFF carry trains as the picture it holds, not as a blank image.

PIL's own conversion clips 16-bit (``I;16``, ``I``) and float (``F``) images to [0, 255]: a 16-bit PNG became
all white and a float TIFF all black (issue 14). Each file here is a dark-to-light ramp from left to right.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from src.data import ImageFolderDataModule
from src.data.image_modes import to_8bit

RAMP = np.tile(np.linspace(0.0, 1.0, 32), (32, 1))  # (H, W): black on the left, white on the right
FORMATS = {"png": "PNG", "jpg": "JPEG", "tif": "TIFF"}
# (extension, mode) for every mode each format writes and reads back (Pillow's writers).
CASES = [
    *(("png", m) for m in ("1", "L", "LA", "P", "RGB", "RGBA", "I;16", "I;16B")),
    *(("jpg", m) for m in ("1", "L", "RGB", "RGBX", "CMYK", "YCbCr")),
    *(
        ("tif", m)
        for m in (
            "1",
            "L",
            "LA",
            "P",
            "PA",
            "RGB",
            "RGBA",
            "RGBX",
            "CMYK",
            "YCbCr",
            "LAB",
            "I",
            "I;16",
            "I;16B",
        )
    ),
    ("tif", "F"),
]


def ramp_image(mode: str) -> Image.Image:
    """The ramp in ``mode``, at that mode's full range (65535 for 16 bits, 1.0 for floats)."""
    if mode == "I;16":
        return Image.fromarray((RAMP * 65535).astype(np.uint16))
    if mode == "I;16B":
        return Image.frombytes("I;16B", (32, 32), (RAMP * 65535).astype(">u2").tobytes())
    if mode == "I":
        return Image.fromarray((RAMP * 65535).astype(np.int32))
    if mode == "F":
        return Image.fromarray(RAMP.astype(np.float32))
    return Image.fromarray((RAMP * 255).astype(np.uint8)).convert("RGB").convert(mode)


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize(("ext", "mode"), CASES, ids=[f"{e}-{m}" for e, m in CASES])
def test_every_mode_keeps_its_picture(tmp_path: Path, ext: str, mode: str, channels: int) -> None:
    ramp_image(mode).save(tmp_path / f"ramp.{ext}", FORMATS[ext])
    dm = ImageFolderDataModule(
        data_dir=str(tmp_path),
        image_size=32,
        channels=channels,
        batch_size=1,
        val_fraction=0.0,
        num_workers=0,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no image of a known range is "stretched"
        dm.setup("fit")
        x, _ = dm.datasets["train"][0]  # (C, 32, 32) in [-1, 1]
    assert x.shape == (channels, 32, 32)
    left, right = x[..., :8].mean().item(), x[..., -8:].mean().item()
    assert left < -0.6 and right > 0.6, f"{mode} in .{ext}: left {left:.2f}, right {right:.2f} (blank?)"


def test_16_bit_scales_by_257_and_float_by_255() -> None:
    image16, note16 = to_8bit(Image.fromarray(np.array([[0, 257, 65535]], dtype=np.uint16)))
    image_f, note_f = to_8bit(Image.fromarray(np.array([[0.0, 0.5, 1.0]], dtype=np.float32)))
    assert image16.mode == image_f.mode == "L" and note16 is None and note_f is None
    assert np.asarray(image16).tolist() == [[0, 1, 255]]
    assert np.asarray(image_f).tolist() == [[0, 128, 255]]


def test_values_outside_the_modes_range_are_clipped_with_a_warning_naming_the_file(tmp_path: Path) -> None:
    values = np.linspace(-3.0, 5.0, 32 * 32, dtype=np.float32).reshape(32, 32)
    Image.fromarray(values).save(tmp_path / "depth.tif", "TIFF")
    dm = ImageFolderDataModule(
        data_dir=str(tmp_path), image_size=32, batch_size=1, val_fraction=0.0, num_workers=0
    )
    dm.setup("fit")
    with pytest.warns(UserWarning, match=r"depth\.tif .*mode F with values in \[-3, 5\].*\[0, 1\]: clipped"):
        x, _ = dm.datasets["train"][0]
    assert x.min().item() == -1.0 and x.max().item() == 1.0
    clipped = np.asarray(to_8bit(Image.fromarray(values))[0]).astype(float)
    want = np.clip(values, 0, 1) * 255
    assert np.abs(clipped - want).max() <= 0.5


@pytest.mark.parametrize(
    ("dtype", "bright", "dim"),
    [(np.uint16, 65535, 1000), (np.int32, 65535, 200), (np.float32, 1.0, 0.25)],
    ids=["I;16", "I", "F"],
)
def test_one_range_per_mode_keeps_a_dim_image_dim(dtype: type, bright: float, dim: float) -> None:
    """Not a min-max stretch per image: two images of one dataset keep their relative brightness."""
    ramp = np.linspace(0.0, 1.0, 16).reshape(1, 16)
    full = to_8bit(Image.fromarray((ramp * bright).astype(dtype)))[0]
    faint = to_8bit(Image.fromarray((ramp * dim).astype(dtype)))[0]
    assert np.asarray(full).max() == 255
    assert np.asarray(faint).max() == round(dim / bright * 255)  # 4, 1 and 64: not stretched to 255
