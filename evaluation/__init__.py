"""Sample-quality evaluation: a domain classifier as feature extractor, and `evaluate` metrics.

- `python -m evaluation.train_classifier --dataset D --output_dir DIR` trains the classifier;
- `load_feature_extractor(DIR)` maps images to its features and logits;
- `load_metric(name)` loads a metric of `evaluation/metrics` (Fréchet distance, KID, precision/recall,
  class accuracy) with `evaluate`, offline;
- `python -m evaluation MODEL --dataset D --output_dir OUT` scores a trained model against real data;
- `fid_for_pipeline(pipeline, classifier, reference_features)` is the check to run during training.
"""

from evaluation.classifier import DomainFeatureExtractor, build_classifier, load_feature_extractor
from evaluation.errors import EvaluationError
from evaluation.metrics import METRIC_NAMES, load_metric
from evaluation.scores import distribution_scores, fid_for_pipeline, split_features

__all__ = [
    "METRIC_NAMES",
    "DomainFeatureExtractor",
    "EvaluationError",
    "build_classifier",
    "distribution_scores",
    "fid_for_pipeline",
    "load_feature_extractor",
    "load_metric",
    "split_features",
]
