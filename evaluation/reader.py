"""The independent reader: a classifier that never saw the images the generator learned from.

The domain classifier (`classifiers/<dataset>`) learns from the train split, the same images a generator
learns from, so it flatters samples that look like them. The reader learns from one half of the *test* split
(`evaluation.data.reader_split`, `python -m evaluation.train_classifier --independent`) and reads both the
samples and the other half, real images that neither model saw. Its readable share of samples, as a ratio to
its readable share of those real images, says how close to real handwriting the samples read.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from evaluation.classifier import DomainFeatureExtractor, load_feature_extractor
from evaluation.data import reader_split, split_to_tensors
from evaluation.errors import EvaluationError

# Optimizer steps of a reader trained on first use (`evaluation.evaluate_model.default_classifier`): its half of
# a small test split (500 MNIST images) would get
# only 24 steps from the classifier's 8 epochs.
READER_MIN_TRAIN_STEPS = 600
# The classifier's top-class probability from which an image counts as readable (as `recognisable`).
READABLE_CONFIDENCE = 0.9


def readable(logits: torch.Tensor) -> torch.Tensor:
    """Whether each image is read as some class with probability >= READABLE_CONFIDENCE, (N,) bool."""
    return logits.float().softmax(dim=1).amax(dim=1) >= READABLE_CONFIDENCE


def load_reader(folder: str, class_names: list[str], device) -> tuple[DomainFeatureExtractor, int]:
    """The reader at `folder` and the seed of its cut of the test split.

    Raises:
        EvaluationError: not a reader trained with `--independent`, or for other classes.
    """
    results_file = Path(folder, "classifier_results.json")
    results = json.loads(results_file.read_text(encoding="utf-8")) if results_file.is_file() else {}
    if not results.get("independent"):
        raise EvaluationError(f"--reader {folder}: not an independent reader (no classifier_results.json saying it "
                              "learned from half of the test split); train one with `python -m "
                              "evaluation.train_classifier --independent`")
    if results["class_names"] != class_names:
        raise EvaluationError(f"--reader {folder} was trained on other classes than --dataset")
    return load_feature_extractor(folder, device=device), results["config"]["seed"]


def independent_scores(reader: DomainFeatureExtractor, seed: int, test_split, image_column: str, label_column: str,
                       samples: torch.Tensor, requested: torch.Tensor | None, num_classes: int) -> dict:
    """What the reader reads in the samples and in the real half of the test split it never saw.

    Args:
        reader: from `load_reader`; seed: its cut of the test split.
        test_split: the dataset's test split.
        samples: (N, 1, H, W) in [0, 1]; requested: their requested classes (N,), or None.
        num_classes: K.

    Returns:
        `dict`: "samples_readable", "real_readable" and their ratio "readable_ratio"; the reader's accuracy on
        the real images; for class-conditional samples "requested_accuracy" (read as the requested class) and
        its ratio to the real accuracy, and per class "per_class_requested" and "per_class_real" (None where a
        class has no image).
    """
    images, labels = split_to_tensors(test_split, image_column, label_column)
    held_out = reader_split(labels, seed)[1]
    real_images, real_labels = images[held_out], labels[held_out]
    _, real_logits = reader(real_images)
    _, sample_logits = reader(samples)
    real_correct = real_logits.argmax(1) == real_labels
    scores = {
        "num_real_held_out": len(real_labels),
        "samples_readable": readable(sample_logits).float().mean().item(),
        "real_readable": readable(real_logits).float().mean().item(),
        "real_accuracy": real_correct.float().mean().item(),
    }
    scores["readable_ratio"] = scores["samples_readable"] / max(scores["real_readable"], 1e-12)
    if requested is not None:
        correct = sample_logits.argmax(1) == requested
        scores["requested_accuracy"] = correct.float().mean().item()
        scores["requested_ratio"] = scores["requested_accuracy"] / max(scores["real_accuracy"], 1e-12)

        def by_class(hits: torch.Tensor, classes: torch.Tensor) -> list[float | None]:
            return [hits[classes == k].float().mean().item() if (classes == k).any() else None
                    for k in range(num_classes)]

        scores["per_class_requested"] = by_class(correct, requested)
        scores["per_class_real"] = by_class(real_correct, real_labels)
    return scores
