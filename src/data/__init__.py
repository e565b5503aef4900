"""LightningDataModules. Every one exposes ``data_shape`` and ``num_classes`` for ``link_arguments``."""

from src.data.digits import DigitsDataModule
from src.data.toy import Toy2DDataModule

__all__ = ["DigitsDataModule", "Toy2DDataModule"]
