"""Critic regularizers: Lightning callbacks whose term the model adds to its single critic backward."""

from src.regularizers.base import Critic, CriticRegularizer, gradient_norm
from src.regularizers.gradient_penalty import GradientPenalty
from src.regularizers.penalties import DRAGANPenalty, DriftPenalty, OneSidedPenalty, R1Penalty, R2Penalty
from src.regularizers.weight_clipping import WeightClipping

__all__ = [
    "Critic",
    "CriticRegularizer",
    "DRAGANPenalty",
    "DriftPenalty",
    "GradientPenalty",
    "OneSidedPenalty",
    "R1Penalty",
    "R2Penalty",
    "WeightClipping",
    "gradient_norm",
]
