"""Metrics torchmetrics lacks: toy-data mode coverage and W1, and a digits feature network."""

from src.metrics.digits_classifier import (
    DigitsClassifier,
    DigitsFeatureExtractor,
    class_coverage,
    load_digits_classifier,
)
from src.metrics.ngram import js_divergence, ngram_counts, ngram_js, ngram_js_all
from src.metrics.toy import exact_w1, mode_coverage, sliced_wasserstein

__all__ = [
    "DigitsClassifier",
    "DigitsFeatureExtractor",
    "class_coverage",
    "exact_w1",
    "js_divergence",
    "load_digits_classifier",
    "mode_coverage",
    "ngram_counts",
    "ngram_js",
    "ngram_js_all",
    "sliced_wasserstein",
]
