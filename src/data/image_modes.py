"""16-bit and floating-point images as 8-bit grayscale, scaled by their mode's range; LAB and HSV images as RGB.

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

    One range per mode, never per image, so every image of a dataset is scaled alike and a dim image stays dim:

    - ``I;16*`` (16-bit PNG and TIFF) and ``I`` (32-bit integers; Pillow reads some 16-bit PNGs as ``I``):
      [0, 65535], ``x / 257``, so 65535 is 255.
    - ``F`` (32-bit floats): [0, 1], ``x * 255``.

    Values outside the mode's range are clipped to it, and the second return value says so, for a warning
    (convert such files to the mode's range, e.g. floats divided by their dataset's maximum). NaN pixels become
    0 (black); :func:`nan_pixels` counts them, and an image whose every pixel is NaN is refused.
    ``LAB`` and ``HSV`` images become ``RGB``, which PIL can then turn into grayscale too.

    Args:
        image: A decoded PIL image.

    Returns:
        ``(image, note)``: the 8-bit image, and ``None`` or a note saying values were clipped.

    Raises:
        ValueError: Every pixel is NaN: there is no picture to train on.
    """
    if image.mode in VIA_RGB_MODES:
        return image.convert("RGB"), None
    if image.mode not in HIGH_DEPTH_MODES:
        return image, None
    values = np.asarray(image, dtype=np.float64)  # (H, W)
    high, scale = (1.0, 255.0) if image.mode == "F" else (65535.0, 1 / 257.0)
    finite = values[np.isfinite(values)]
    if values.size and np.isnan(values).all():
        raise ValueError(f"every pixel is NaN (a mode-{image.mode} image): there is no picture in it")
    note = None
    if finite.size and (finite.min() < 0 or finite.max() > high):
        note = (
            f"mode {image.mode} with values in [{finite.min():g}, {finite.max():g}], outside the mode's range "
            f"[0, {high:g}]: clipped to it"
        )
    scaled = np.clip(np.nan_to_num(values, nan=0.0), 0, high) * scale
    return Image.fromarray(np.clip(scaled, 0, 255).round().astype(np.uint8)), note


def nan_pixels(image: Image.Image) -> int:
    """How many pixels of a float (mode ``F``) image are NaN; 0 for any other mode."""
    if image.mode != "F":
        return 0
    return int(np.isnan(np.asarray(image, dtype=np.float32)).sum())
