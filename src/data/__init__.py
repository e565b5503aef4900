"""LightningDataModules. Every one exposes ``data_shape`` and ``num_classes`` for ``link_arguments``."""

from src.data.celeba import CelebADataModule
from src.data.cifar10 import CIFAR10DataModule
from src.data.digits import DigitsDataModule
from src.data.folder import ImageFolderDataModule
from src.data.image_base import DatasetNotFoundError, ImageDataModule
from src.data.mnist import MNISTDataModule
from src.data.toy import Toy2DDataModule

__all__ = [
    "CIFAR10DataModule",
    "CelebADataModule",
    "DatasetNotFoundError",
    "DigitsDataModule",
    "ImageDataModule",
    "ImageFolderDataModule",
    "MNISTDataModule",
    "Toy2DDataModule",
]
