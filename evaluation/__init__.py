"""Sample-quality evaluation: a domain classifier as feature extractor, and `evaluate` metrics.

- `python -m evaluation.train_classifier --dataset D --output_dir DIR` trains the classifier;
- `load_feature_extractor(DIR)` maps images to its features and logits;
- `load_metric(name)` loads a metric of `evaluation/metrics` (Fréchet distance, KID, precision/recall,
  class accuracy) with `evaluate`, offline.
"""

from evaluation.classifier import DomainFeatureExtractor, build_classifier, load_feature_extractor
from evaluation.errors import EvaluationError
from evaluation.metrics import METRIC_NAMES, load_metric

__all__ = [
    "METRIC_NAMES",
    "DomainFeatureExtractor",
    "EvaluationError",
    "build_classifier",
    "load_feature_extractor",
    "load_metric",
]
