"""Callbacks: sample grids, preemption checkpoints (the metrics live in ``src.evaluation``)."""

from src.callbacks.preemption import PreemptionCheckpoint
from src.callbacks.sample_grid import SampleGrid

__all__ = [
    "PreemptionCheckpoint",
    "SampleGrid",
]
