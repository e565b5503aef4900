"""LightningDataModules. Every one exposes ``data_shape`` and ``num_classes`` for ``link_arguments``."""

from src.data.base import ImageDataModule
from src.data.celeba import CelebADataModule
from src.data.cifar10 import CIFAR10DataModule
from src.data.digits import DigitsDataModule
from src.data.errors import DatasetNotFoundError
from src.data.folder import ImageFolderDataModule
from src.data.mnist import MNISTDataModule
from src.data.sample_photos import SamplePhotosDataModule
from src.data.text import TextDataModule
from src.data.toy import Toy2DDataModule
from src.data.vocabulary import Vocabulary

__all__ = [
    "CIFAR10DataModule",
    "CelebADataModule",
    "DatasetNotFoundError",
    "DigitsDataModule",
    "ImageDataModule",
    "ImageFolderDataModule",
    "MNISTDataModule",
    "SamplePhotosDataModule",
    "TextDataModule",
    "Toy2DDataModule",
    "Vocabulary",
]
