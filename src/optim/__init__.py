"""Optimizers that torch lacks: normalized SGD (nSGDA) and competitive gradient descent (CGD)."""

from src.optim.cgd import CGD
from src.optim.nsgda import NormalizedSGD

__all__ = ["CGD", "NormalizedSGD"]
