"""Callbacks: critic regularizers, sample grids, image-quality metrics."""

from src.callbacks.gradient_penalty import GradientPenalty
from src.callbacks.regularizer import CriticRegularizer
from src.callbacks.sample_grid import SampleGrid

__all__ = ["CriticRegularizer", "GradientPenalty", "SampleGrid"]
