"""CelebA faces through torchvision (aligned images, official partition), or from a plain folder of JPEGs."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from lightning.pytorch.utilities import rank_zero_warn
from torch.utils.data import Dataset
from torchvision.datasets import CelebA
from torchvision.transforms import v2

from src.data.base import ImageDataModule
from src.data.errors import DatasetNotFoundError, require_download
from src.data.folder import ImageFiles, drop_unreadable, list_images

CELEBA_TEXT_FILES = (
    "list_eval_partition.txt",
    "list_attr_celeba.txt",
    "identity_CelebA.txt",
    "list_bbox_celeba.txt",
    "list_landmarks_align_celeba.txt",
)
CELEBA_IMAGE_FOLDER = "img_align_celeba"
ALIGNED_SIZE = (178, 218)  # (W, H) of the aligned and cropped CelebA images
CELEBA_URL = "https://mmlab.ie.cuhk.edu.hk/projects/CelebA.html"


class _Attribute(Dataset):
    """A torchvision CelebA split whose target is one binary attribute (0/1)."""

    def __init__(self, dataset: CelebA, column: int) -> None:
        self.dataset, self.column = dataset, column

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> tuple[Any, int]:
        image, attributes = self.dataset[index]  # attributes (40,) in {0, 1}
        return image, int(attributes[self.column])


class CelebADataModule(ImageDataModule):
    """CelebA aligned faces (3, S, S) in [-1, 1]: center crop ``crop_size``, then resize to ``image_size``.

    The 64 px recipe crops the 178x218 aligned image at its center and resizes the crop. ``crop_size=108``
    (default) is the DCGAN-TensorFlow recipe that most GAN code follows: the face fills the image.
    ``crop_size=140`` keeps more hair and background.

    Where the images come from, in order:

    1. ``image_dir``, when set: a plain folder of the aligned JPEGs (e.g. unpacked from Kaggle), split at
       random (seeded) into train/val/test by ``val_fraction`` and ``test_fraction``.
    2. torchvision's layout, ``data_dir/celeba/`` with ``img_align_celeba/*.jpg`` and the five text files
       (read and md5-checked by torchvision): the official partition (162,770 / 19,867 / 19,962 images).
    3. ``data_dir/celeba/img_align_celeba/`` alone (text files missing): used as a plain folder, with a warning.

    Otherwise ``prepare_data`` tries torchvision's Google Drive download (rank zero; it needs ``gdown`` and
    often fails on its quota), and the error says which files to place where.

    Args:
        image_size: Side of the square output images.
        crop_size: Side of the center crop taken from the 178x218 aligned image before resizing.
        image_dir: A plain folder of aligned CelebA JPEGs to use instead of torchvision's layout.
        attribute: Use one of the 40 attributes (e.g. ``Male``) as a binary label (needs
            ``list_attr_celeba.txt``); ``None``: labels are 0.
        test_fraction: Test share of a plain folder.
        download: Try torchvision's download when the data is missing.
        **kwargs: The options of :class:`~src.data.base.ImageDataModule`: ``data_dir`` (the folder that holds
            or receives ``celeba/``), ``batch_size``, ``val_fraction`` (the validation share of a plain folder;
            the official partition is used otherwise), ``seed`` (of the plain-folder splits), ``flip``, ...
            The images are always decoded on the fly (no ``in_memory``).
    """

    dataset_name = "CelebA"

    def __init__(
        self,
        image_size: int = 64,
        crop_size: int = 108,
        image_dir: str | None = None,
        attribute: str | None = None,
        test_fraction: float = 0.1,
        download: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(in_memory=False, **kwargs)  # large or unknown size: decode on the fly
        if image_size < 1:
            raise ValueError(f"data.image_size must be >= 1, got image_size={image_size}")
        if not 1 <= crop_size <= min(ALIGNED_SIZE):
            raise ValueError(
                f"data.crop_size must be in [1, {min(ALIGNED_SIZE)}] (the aligned images are 178x218), "
                f"got crop_size={crop_size}; 108 (default) or 140 are usual"
            )
        if not 0 <= test_fraction < 1 or self.val_fraction + test_fraction >= 1:
            raise ValueError(
                f"data.test_fraction must be in [0, 1) with val_fraction + test_fraction < 1, got "
                f"test_fraction={test_fraction}, val_fraction={self.val_fraction}"
            )
        self.image_size, self.crop_size, self.attribute = image_size, crop_size, attribute
        self.image_dir = Path(image_dir).expanduser() if image_dir is not None else None
        self.test_fraction, self.download = test_fraction, download

    @property
    def data_shape(self) -> tuple[int, int, int]:
        """Shape of one image (3, S, S)."""
        return (3, self.image_size, self.image_size)

    @property
    def num_classes(self) -> int:  # type: ignore[override]
        """2 when an ``attribute`` is the label, else 0."""
        return 2 if self.attribute is not None else 0

    def geometry(self) -> list[Callable]:
        """RGB, center crop ``crop_size``, resize to ``image_size`` (antialiased)."""
        return [v2.RGB(), v2.CenterCrop(self.crop_size), v2.Resize(self.image_size)]

    # ------------------------------------------------------------------------------------ where the data is
    @property
    def root(self) -> Path:
        """The folder of torchvision's CelebA layout, ``data_dir/celeba``."""
        return self.data_dir / CelebA.base_folder

    def missing_files(self) -> list[Path]:
        """The files and folders of torchvision's layout that are absent."""
        wanted = [self.root / name for name in CELEBA_TEXT_FILES]
        missing = [p for p in wanted if not p.is_file()]
        folder = self.root / CELEBA_IMAGE_FOLDER
        if not folder.is_dir() or not any(folder.glob("*.jpg")):
            missing.append(folder)
        return missing

    def _plain_folder(self) -> Path | None:
        """The folder of JPEGs to use as a plain folder, or ``None`` for torchvision's layout (or nothing)."""
        if self.image_dir is not None:
            return self.image_dir
        missing = self.missing_files()
        folder = self.root / CELEBA_IMAGE_FOLDER
        if missing and folder not in missing:
            return folder
        return None

    def _how(self) -> str:
        return (
            f"Download from {CELEBA_URL} (or its Google Drive) img_align_celeba.zip and the five text files "
            f"{', '.join(CELEBA_TEXT_FILES)} (folders Anno/ and Eval/), unzip the images into "
            f"{self.root / CELEBA_IMAGE_FOLDER}/ and put the text files in {self.root}/. Or pass a plain folder "
            f"of the aligned JPEGs with --data.image_dir=FOLDER (split at random by --data.val_fraction and "
            f"--data.test_fraction)."
        )

    def _not_found(self, error: BaseException | None = None) -> Exception:
        missing = ", ".join(str(p) for p in self.missing_files())
        return require_download(
            "CelebA", self.root, error=error, download=self.download, how=f"Missing: {missing}. {self._how()}"
        )

    def prepare_data(self) -> None:
        """Try torchvision's download when nothing usable is there (Lightning calls this on rank zero)."""
        if self.image_dir is not None or not self.missing_files() or self._plain_folder() is not None:
            return
        if not self.download:
            raise self._not_found()
        try:
            CelebA(self.data_dir, split="all", target_type=[], download=True)
        except Exception as error:
            raise self._not_found(error) from error

    # ----------------------------------------------------------------------------------------- splits
    def _folder_splits(self, folder: Path) -> dict[str, Dataset]:
        if self.attribute is not None:
            raise ValueError(
                f"data.attribute={self.attribute!r} needs {self.root / 'list_attr_celeba.txt'} and torchvision's "
                f"layout; a plain folder of JPEGs has no attributes. Set --data.attribute=null or add the files."
            )
        if not folder.is_dir():
            raise DatasetNotFoundError(f"CelebA: data.image_dir={folder} does not exist. {self._how()}")
        paths = list_images(folder)
        if not paths:
            raise DatasetNotFoundError(f"CelebA: {folder} contains no image files. {self._how()}")
        paths = drop_unreadable(paths, folder)
        files = ImageFiles(paths, [0] * len(paths))
        train, val, test = self.holdout(files, self.val_fraction, self.test_fraction)
        return {"train": train, "val": val, "test": test}

    def _torchvision_splits(self) -> dict[str, Dataset]:
        target_type = "attr" if self.attribute is not None else []
        try:
            splits = {
                ours: CelebA(self.data_dir, split=theirs, target_type=target_type)
                for ours, theirs in (("train", "train"), ("val", "valid"), ("test", "test"))
            }
        except RuntimeError as error:
            raise DatasetNotFoundError(
                f"CelebA: torchvision rejected the files in {self.root} ({error}); the text files must be the "
                f"originals (torchvision checks their md5). {self._how()}"
            ) from error
        if self.attribute is None:
            return splits  # type: ignore[return-value]
        names = splits["train"].attr_names
        if self.attribute not in names:
            raise ValueError(
                f"data.attribute={self.attribute!r} is not a CelebA attribute; choose one of {names}"
            )
        column = names.index(self.attribute)
        return {name: _Attribute(ds, column) for name, ds in splits.items()}

    def load_splits(self) -> dict[str, Dataset]:
        """The official partition through torchvision, or seeded shares of a plain folder."""
        folder = self._plain_folder()
        if folder is not None:
            if self.image_dir is None:
                rank_zero_warn(
                    f"CelebA: {', '.join(p.name for p in self.missing_files())} missing in {self.root}; using "
                    f"{folder} as a plain folder with a seeded random split instead of the official partition."
                )
            return self._folder_splits(folder)
        if self.missing_files():
            raise self._not_found()
        return self._torchvision_splits()
