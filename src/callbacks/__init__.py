"""Callbacks: critic regularizers, sample grids, image-quality metrics."""

from src.callbacks.gradient_penalty import GradientPenalty
from src.callbacks.image_quality import ImageQuality
from src.callbacks.penalties import DRAGANPenalty, DriftPenalty, OneSidedPenalty, R1Penalty, R2Penalty
from src.callbacks.preemption import PreemptionCheckpoint
from src.callbacks.regularizer import CriticRegularizer
from src.callbacks.sample_grid import SampleGrid
from src.callbacks.toy_metrics import ToyMetrics
from src.callbacks.weight_clipping import WeightClipping

__all__ = [
    "CriticRegularizer",
    "DRAGANPenalty",
    "DriftPenalty",
    "GradientPenalty",
    "ImageQuality",
    "OneSidedPenalty",
    "PreemptionCheckpoint",
    "R1Penalty",
    "R2Penalty",
    "SampleGrid",
    "ToyMetrics",
    "WeightClipping",
]
