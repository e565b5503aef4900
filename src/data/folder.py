"""Your own images: every image file under a folder (recursively), optionally labelled by class subfolder."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal

from lightning.pytorch.utilities import rank_zero_warn
from PIL import Image
from torch.utils.data import Dataset
from torchvision.datasets.folder import IMG_EXTENSIONS
from torchvision.transforms import v2

from src.data.base import ImageDataModule
from src.data.errors import DatasetNotFoundError
from src.data.image_modes import nan_pixels, to_8bit

SHOWN_BAD_FILES = 10  # how many unreadable files a warning names before summarising the rest
MAX_IMAGE_PIXELS = 50_000_000  # data.max_image_pixels: larger images are refused (phone photos are 12-50 MP)


class ImageTooLargeError(ValueError):
    """An image has more pixels than ``data.max_image_pixels`` allows."""


def list_images(root: Path) -> list[Path]:
    """All files under ``root`` (recursively, sorted) whose extension is one of torchvision's image types."""
    return sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in IMG_EXTENSIONS)


def too_large(image: Image.Image, max_pixels: int | None) -> str | None:
    """Why an opened (not yet decoded) image is refused for its size, or ``None``."""
    width, height = image.size
    if max_pixels is None or width * height <= max_pixels:
        return None
    return f"{width} x {height} = {width * height / 1e6:.0f} megapixels, above data.max_image_pixels={max_pixels}"


def inspect_file(path: Path, max_pixels: int | None = None) -> tuple[str | None, str | None, int]:
    """Check one image file with PIL: its structure (``verify()``), its size, and NaN pixels of a float image.

    Only a float (mode ``F``) image is decoded; the others are read as far as their header and ``verify()``.

    Returns:
        ``(why it is unreadable or None, why it is too large or None, how many pixels are NaN)``; an image whose
        every pixel is NaN is unreadable: it holds no picture.
    """
    try:
        with Image.open(path) as image:
            mode, (width, height) = image.mode, image.size
            large = too_large(image, max_pixels)
            image.verify()
        nan = 0
        if mode == "F" and large is None:
            with Image.open(path) as image:
                nan = nan_pixels(image)
            if nan == width * height:
                return "every pixel is NaN: there is no picture in it", None, nan
    except Exception as error:  # PIL raises many types (OSError, SyntaxError, ValueError, ...)
        return f"{type(error).__name__}: {error}", None, 0
    return None, large, nan


def unreadable(path: Path) -> str | None:
    """Why PIL cannot read ``path`` (:func:`inspect_file`), or ``None`` when it can."""
    return inspect_file(path)[0]


def _listed(items: list[str]) -> str:
    more = f"; and {len(items) - SHOWN_BAD_FILES} more" if len(items) > SHOWN_BAD_FILES else ""
    return "; ".join(items[:SHOWN_BAD_FILES]) + more


def drop_unreadable(paths: Sequence[Path], where: Path, max_pixels: int | None = None) -> list[Path]:
    """Keep the readable files; warn once, naming the others (the first few) and how many there were.

    Float images with NaN pixels are kept (NaN shows as black) with one warning naming them; an all-NaN image is
    unreadable.

    Raises:
        ImageTooLargeError: Images above ``max_pixels`` (listed, with the option that allows them).
    """
    bad, nans, large, unusable = [], [], [], set()
    for path in paths:
        why, size, nan = inspect_file(path, max_pixels)
        if why is not None:
            bad.append(f"{path} ({why})")
            unusable.add(path)
        elif size is not None:
            large.append(f"{path} ({size})")
        elif nan:
            nans.append(f"{path} ({nan} NaN pixels)")
    if large:
        raise ImageTooLargeError(
            f"image folder: {len(large)} image(s) under {where} are too large to decode at every epoch: "
            f"{_listed(large)}. Resize them once (e.g. `mogrify -resize '2048x2048>' FILE`), or allow them with "
            "--data.max_image_pixels=N (null: no limit of this template; PIL still refuses images above "
            f"{2 * (Image.MAX_IMAGE_PIXELS or 0) / 1e6:.0f} megapixels as decompression bombs)."
        )
    if nans:
        rank_zero_warn(
            f"{len(nans)} float image file(s) under {where} hold NaN pixels, which become black (0): {_listed(nans)}"
        )
    if bad:
        rank_zero_warn(
            f"Skipped {len(bad)} unreadable image file(s) of {len(paths)} under {where}: {_listed(bad)}"
        )
    return [p for p in paths if p not in unusable]


class ImageFiles(Dataset):
    """``(PIL image, label)`` from a list of files; a file that fails to decode is skipped with a warning.

    16-bit and float images (PIL modes ``I;16``, ``I``, ``F``) are scaled to 8 bits by
    :func:`~src.data.image_modes.to_8bit`; PIL's own conversion would clip them to white or black. NaN pixels
    become black, with a warning naming the file (unless :func:`drop_unreadable` named it up front).

    Files are checked up front (:func:`drop_unreadable`), but a file can still fail to decode (e.g. a truncated
    JPEG passes ``verify()``). Such a file, an all-NaN float image and an image above ``max_pixels`` are replaced
    by the next readable one, with a warning naming them, so an epoch never crashes halfway.

    Args:
        paths: Image files.
        labels: One integer label per file.
        max_pixels: Refuse images with more pixels (read from the header, before decoding); ``None``: no limit.
        warn_nan: Warn about each float image with NaN pixels when it is first read.
    """

    def __init__(
        self,
        paths: Sequence[Path],
        labels: Sequence[int],
        max_pixels: int | None = None,
        warn_nan: bool = True,
    ) -> None:
        if len(paths) != len(labels):
            raise ValueError(f"{len(paths)} paths but {len(labels)} labels")
        self.paths, self.labels = list(paths), list(labels)
        self.max_pixels, self.warn_nan = max_pixels, warn_nan
        self._bad: set[int] = set()
        self._stretched: set[str] = set()  # modes already warned about
        self._nan_warned: set[int] = set()

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> tuple[Image.Image, int]:
        for offset in range(len(self.paths)):
            i = (index + offset) % len(self.paths)
            if i in self._bad:
                continue
            try:
                with Image.open(self.paths[i]) as image:
                    if (size := too_large(image, self.max_pixels)) is not None:
                        raise ImageTooLargeError(size)
                    image.load()
                    mode = image.mode
                    nan = nan_pixels(image)
                    converted, note = to_8bit(image.copy())  # 16-bit and float images, scaled
            except Exception as error:  # see unreadable()
                self._bad.add(i)
                warnings.warn(
                    f"Skipped unreadable image {self.paths[i]} ({type(error).__name__}: {error}); "
                    f"using the next image instead",
                    stacklevel=2,
                )
                continue
            if note is not None and mode not in self._stretched:
                self._stretched.add(mode)
                warnings.warn(f"Image {self.paths[i]} (and others of its mode) has {note}", stacklevel=2)
            if nan and self.warn_nan and i not in self._nan_warned:
                self._nan_warned.add(i)
                warnings.warn(
                    f"Image {self.paths[i]} has {nan} NaN pixel(s), which become black (0)", stacklevel=2
                )
            return converted, self.labels[i]
        raise RuntimeError(f"none of the {len(self.paths)} image files could be read")


def color_transform(channels: int) -> Callable:
    """PIL transform to RGB (3 channels) or grayscale (1 channel)."""
    if channels == 3:
        return v2.RGB()
    if channels == 1:
        return v2.Grayscale(num_output_channels=1)
    raise ValueError(f"data.channels must be 1 or 3, got channels={channels}")


class ImageFolderDataModule(ImageDataModule):
    """Any folder of images: resized to ``image_size`` (shorter side) and center-cropped square, in [-1, 1].

    All files with a common image extension (torchvision's list: jpg, jpeg, png, ppm, bmp, pgm, tif, tiff,
    webp) are found recursively. Unreadable files are skipped with one warning naming them (checked in
    ``setup``); an empty folder is an error. With ``class_subfolders``, the first folder level names the
    class (sorted, as torchvision's ``ImageFolder``) and labels are its index; otherwise labels are 0.

    Val and test splits are seeded random shares of the files; with a fraction of 0 that split falls back to
    the other held-out split, then to the training images.

    Args:
        data_dir: The folder of images.
        image_size: Side of the square images.
        channels: 3 (RGB) or 1 (grayscale).
        resize: ``crop``: resize the shorter side, then center-crop (keeps the aspect); ``stretch``: resize
            both sides (distorts non-square images).
        class_subfolders: Label images by their top-level subfolder.
        verify: Check every file with PIL in ``setup`` and skip unreadable ones up front (float images are
            decoded: NaN pixels are reported, an all-NaN image is skipped).
        max_image_pixels: Refuse images with more pixels than this (``setup`` fails listing them; read from
            the file headers): each is decoded again at every epoch to make one small image. ``null``: no limit
            (PIL still refuses decompression bombs above about 179 megapixels).
        test_fraction: Share of the images held out for testing (0: test on the val split).
        **kwargs: The options of :class:`~src.data.base.ImageDataModule` (``batch_size``, ``val_fraction``,
            ``seed``, ``flip``, ...). The images are always decoded on the fly (no ``in_memory``).
    """

    dataset_name = "image folder"

    def __init__(
        self,
        data_dir: str = "data/images",
        image_size: int = 64,
        channels: int = 3,
        resize: Literal["crop", "stretch"] = "crop",
        class_subfolders: bool = False,
        verify: bool = True,
        test_fraction: float = 0.0,
        max_image_pixels: int | None = MAX_IMAGE_PIXELS,
        **kwargs: Any,
    ) -> None:
        # Large or unknown size: decoded on the fly.
        super().__init__(data_dir=data_dir, in_memory=False, **kwargs)
        if image_size < 1:
            raise ValueError(f"data.image_size must be >= 1, got image_size={image_size}")
        if resize not in ("crop", "stretch"):
            raise ValueError(f"data.resize must be 'crop' or 'stretch', got resize={resize!r}")
        if not 0 <= test_fraction < 1 or self.val_fraction + test_fraction >= 1:
            raise ValueError(
                f"data.test_fraction must be in [0, 1) with val_fraction + test_fraction < 1, got "
                f"test_fraction={test_fraction}, val_fraction={self.val_fraction}"
            )
        if max_image_pixels is not None and max_image_pixels < 1:
            raise ValueError(
                f"data.max_image_pixels must be >= 1 or null, got max_image_pixels={max_image_pixels}"
            )
        color_transform(channels)  # validates channels
        self.image_size, self.channels, self.resize = image_size, channels, resize
        self.class_subfolders, self.verify, self.test_fraction = class_subfolders, verify, test_fraction
        self.max_image_pixels = max_image_pixels

    @property
    def data_shape(self) -> tuple[int, int, int]:
        """Shape of one image (C, S, S)."""
        return (self.channels, self.image_size, self.image_size)

    @property
    def classes(self) -> list[str]:
        """Class names (sorted top-level subfolders) with ``class_subfolders``, else empty."""
        if not self.class_subfolders or not self.data_dir.is_dir():
            return []
        return sorted(p.name for p in self.data_dir.iterdir() if p.is_dir() and not p.name.startswith("."))

    @property
    def num_classes(self) -> int:  # type: ignore[override]
        """Number of classes (0 without ``class_subfolders``)."""
        return len(self.classes)

    def geometry(self) -> list[Callable]:
        """Color mode, then resize-and-center-crop (or stretch) to ``image_size``."""
        size = self.image_size
        if self.resize == "crop":
            return [color_transform(self.channels), v2.Resize(size), v2.CenterCrop(size)]
        return [color_transform(self.channels), v2.Resize((size, size))]

    def _files(self) -> tuple[list[Path], list[int]]:
        if not self.data_dir.is_dir():
            raise DatasetNotFoundError(
                f"image folder: {self.data_dir} does not exist; point --data.data_dir at a folder of images"
            )
        paths = list_images(self.data_dir)
        if not paths:
            raise DatasetNotFoundError(
                f"image folder: {self.data_dir} contains no image files (searched recursively for "
                f"{', '.join(IMG_EXTENSIONS)}); point --data.data_dir at a folder of images"
            )
        if self.verify:
            paths = drop_unreadable(paths, self.data_dir, self.max_image_pixels)
            if not paths:
                raise DatasetNotFoundError(
                    f"image folder: none of the image files under {self.data_dir} is readable"
                )
        if not self.class_subfolders:
            return paths, [0] * len(paths)
        index = {name: i for i, name in enumerate(self.classes)}
        loose = [
            p
            for p in paths
            if p.parent == self.data_dir or p.relative_to(self.data_dir).parts[0] not in index
        ]
        if loose:
            raise ValueError(
                f"data.class_subfolders=true but {len(loose)} image(s) lie outside a class subfolder of "
                f"{self.data_dir} (e.g. {loose[0]}); move them into a subfolder or set --data.class_subfolders=false"
            )
        return paths, [index[p.relative_to(self.data_dir).parts[0]] for p in paths]

    def load_splits(self) -> dict[str, Dataset]:
        """Seeded train/val/test shares of the readable files."""
        paths, labels = self._files()
        files = ImageFiles(paths, labels, self.max_image_pixels, warn_nan=not self.verify)
        train, val, test = self.holdout(files, self.val_fraction, self.test_fraction)
        return {"train": train, "val": val, "test": test}
