"""Evaluation callbacks: FID/IS/KID of images and the toy metrics, on one schedule (``--quality``).

Depends on ``src.data``, ``src.metrics`` and ``src.utils`` only; never on ``src.models`` or ``src.callbacks``.
"""

from src.evaluation.image_quality import ImageQuality
from src.evaluation.schedule import ScheduledEvaluation
from src.evaluation.superres_quality import SuperResolutionQuality
from src.evaluation.text_quality import TextQuality
from src.evaluation.toy_metrics import ToyMetrics

__all__ = ["ImageQuality", "ScheduledEvaluation", "SuperResolutionQuality", "TextQuality", "ToyMetrics"]
