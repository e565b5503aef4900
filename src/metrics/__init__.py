"""Metrics torchmetrics lacks: toy-data mode coverage and W1, and a digits feature network."""

from src.metrics.digits_classifier import (
    DigitsClassifier,
    DigitsFeatureExtractor,
    class_coverage,
    digits_split,
    digits_to_tensor,
    load_digits_classifier,
)
from src.metrics.toy import exact_w1, mode_coverage, sliced_wasserstein, toy_mode_centers, toy_mode_std

__all__ = [
    "DigitsClassifier",
    "DigitsFeatureExtractor",
    "class_coverage",
    "digits_split",
    "digits_to_tensor",
    "exact_w1",
    "load_digits_classifier",
    "mode_coverage",
    "sliced_wasserstein",
    "toy_mode_centers",
    "toy_mode_std",
]
