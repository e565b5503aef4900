"""16-bit and floating-point images as 8-bit grayscale, scaled to their range; LAB and HSV images as RGB.

PIL's own conversion of the modes ``I;16``, ``I`` and ``F`` to ``L`` or ``RGB`` clips the values to [0, 255]:
a 16-bit PNG turns all white and a float TIFF in [0, 1] all black. The other modes that PNG, JPEG and TIFF
carry (``1``, ``L``, ``LA``, ``P``, ``PA``, ``RGB``, ``RGBA``, ``CMYK``, ``YCbCr``) convert correctly and are left
as they are; ``LAB`` becomes ``RGB`` first, as PIL cannot turn it into grayscale.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

UINT16_MODES = ("I;16", "I;16L", "I;16B", "I;16N")
HIGH_DEPTH_MODES = (*UINT16_MODES, "I", "F")
VIA_RGB_MODES = ("LAB", "HSV")  # PIL converts them to RGB, but not to L (grayscale)


def to_8bit(image: Image.Image) -> tuple[Image.Image, str | None]:
    """An 8-bit version of a 16-bit or float image (mode ``L``); any other image unchanged.

    - ``I;16*`` (16-bit PNG and TIFF): ``x / 257``, so 65535 is 255.
    - ``I`` (32-bit integers): values in [0, 255] are kept, values in [0, 65535] are 16-bit (``x / 257``).
    - ``F`` (32-bit floats): values in [0, 1] are scaled by 255, values in [0, 255] are kept.
    - anything else (negative values, a larger range): stretched from its own minimum and maximum to
      [0, 255]; the second return value then says so, for a warning.
    - NaN pixels become 0 (black); :func:`nan_pixels` counts them, and an image whose every pixel is NaN is
      refused.

    ``LAB`` and ``HSV`` images become ``RGB``, which PIL can then turn into grayscale too.

    Args:
        image: A decoded PIL image.

    Returns:
        ``(image, note)``: the 8-bit image, and ``None`` or a note saying the range was stretched.

    Raises:
        ValueError: Every pixel is NaN: there is no picture to train on.
    """
    if image.mode in VIA_RGB_MODES:
        return image.convert("RGB"), None
    if image.mode not in HIGH_DEPTH_MODES:
        return image, None
    values = np.asarray(image, dtype=np.float64)  # (H, W)
    finite = values[np.isfinite(values)]
    if values.size and np.isnan(values).all():
        raise ValueError(f"every pixel is NaN (a mode-{image.mode} image): there is no picture in it")
    low, high = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 0.0)
    note = None
    if image.mode in UINT16_MODES or (image.mode == "I" and low >= 0 and 255 < high <= 65535):
        scaled = values / 257.0
    elif image.mode == "F" and low >= 0 and high <= 1:
        scaled = values * 255.0
    elif low >= 0 and high <= 255:
        scaled = values
    else:
        scaled = (values - low) * (255.0 / (high - low)) if high > low else np.zeros_like(values)
        note = f"mode {image.mode} with values in [{low:g}, {high:g}], stretched to [0, 255]"
    pixels = np.clip(np.nan_to_num(scaled, nan=0.0), 0, 255).round().astype(np.uint8)
    return Image.fromarray(pixels), note


def nan_pixels(image: Image.Image) -> int:
    """How many pixels of a float (mode ``F``) image are NaN; 0 for any other mode."""
    if image.mode != "F":
        return 0
    return int(np.isnan(np.asarray(image, dtype=np.float32)).sum())
