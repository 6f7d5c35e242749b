"""Scores of a set of images in the domain classifier's feature space, and the training-time hook."""

from pathlib import Path

import datasets
import numpy as np
import torch
from diffusers import DiffusionPipeline

from evaluation.classifier import DomainFeatureExtractor, load_feature_extractor
from evaluation.data import split_to_tensors
from evaluation.metrics import load_metric
from pipelines.sampling import draw


def split_features(
    extractor: DomainFeatureExtractor, split: datasets.Dataset, image_column: str = "image", label_column: str = "label"
) -> tuple[torch.Tensor, ...]:
    """Features (N, D), logits (N, K) and labels (N,) of every image of a dataset split.

    The column names default to those of `data_prep`'s datasets; pass a `ResolvedDataset`'s for any other.
    """
    images, labels = split_to_tensors(split, image_column, label_column)  # (N, 1, H, W) in [0, 1]
    features, logits = extractor(images)
    return features, logits, labels


def metric_inputs(reference: torch.Tensor | np.ndarray, evaluated: torch.Tensor | np.ndarray) -> dict:
    """The input columns of the distribution metrics for reference features (N, D) and evaluated ones (M, D)."""
    reference, evaluated = np.asarray(reference, dtype=np.float32), np.asarray(evaluated, dtype=np.float32)
    return {
        "features": np.concatenate([reference, evaluated]),  # (N + M, D)
        "is_reference": [True] * len(reference) + [False] * len(evaluated),
    }


def distribution_scores(
    reference: torch.Tensor | np.ndarray,
    evaluated: torch.Tensor | np.ndarray,
    *,
    kid_subset_size: int = 1000,
    kid_num_subsets: int = 100,
    nearest_k: int = 3,
    seed: int = 0,
) -> dict[str, float]:
    """Fréchet distance, KID and precision/recall of `evaluated` features (M, D) against `reference` (N, D).

    Args:
        reference (`torch.Tensor` or `np.ndarray`): features of the real images, (N, D).
        evaluated (`torch.Tensor` or `np.ndarray`): features of the images scored, (M, D).
        kid_subset_size (`int`), kid_num_subsets (`int`): subsets of the kernel distance.
        nearest_k (`int`): the k of the k-NN manifolds of precision and recall.
        seed (`int`): seed of the KID subsets.

    Returns:
        `dict[str, float]`: "frechet_distance", "kernel_distance", "kernel_distance_std", "precision", "recall".
    """
    inputs = metric_inputs(reference, evaluated)
    kid = load_metric("kernel_distance").compute(
        **inputs, subset_size=kid_subset_size, num_subsets=kid_num_subsets, seed=seed
    )
    precision_recall = load_metric("precision_recall").compute(**inputs, k=nearest_k)
    return {
        "frechet_distance": load_metric("frechet_distance").compute(**inputs)["frechet_distance"],
        "kernel_distance": kid["kernel_distance"],
        "kernel_distance_std": kid["kernel_distance_std"],
        "precision": precision_recall["precision"],
        "recall": precision_recall["recall"],
    }


def fid_for_pipeline(
    pipeline: DiffusionPipeline,
    classifier: str | Path | DomainFeatureExtractor,
    reference_features: torch.Tensor | np.ndarray,
    num_samples: int = 256,
    *,
    batch_size: int = 64,
    seed: int = 0,
    num_inference_steps: int | None = None,
    guidance_scale: float = 1.0,
    autocast: bool = True,
) -> float:
    """Fréchet distance of `num_samples` pipeline samples to reference features: the training-time check.

    The same seeds every call, so values logged during training differ only by what the model learned.

    Args:
        pipeline (`DiffusionPipeline`): e.g. `CharacterDDPMPipeline(ema_unet, scheduler, id2label)`; its progress
            bar is turned off. Class-conditional pipelines draw equal numbers per class.
        classifier (`str`, `Path` or `DomainFeatureExtractor`): a classifier folder from
            `python -m evaluation.train_classifier`, or one already loaded (load it once when calling often).
        reference_features (`torch.Tensor` or `np.ndarray`): features of real images (N, D), e.g.
            `split_features(extractor, dataset_dict["test"])[0]`, computed once.
        num_samples (`int`, defaults to 256): samples drawn (a few hundred: enough to rank checkpoints; the
            absolute value is biased upwards at small sizes).
        batch_size (`int`), seed (`int`), num_inference_steps (`int`), guidance_scale (`float`), autocast
            (`bool`): as in `pipelines.sampling.draw`.

    Returns:
        `float`: the Fréchet distance in the classifier's feature space (lower is better).
    """
    extractor = classifier if isinstance(classifier, DomainFeatureExtractor) else load_feature_extractor(classifier)
    images = draw(pipeline, num_samples, batch_size=batch_size, seed=seed, num_inference_steps=num_inference_steps,
                  guidance_scale=guidance_scale, autocast=autocast).grayscale
    features, _ = extractor(images)  # (num_samples, D)
    inputs = metric_inputs(reference_features, features)
    return load_metric("frechet_distance").compute(**inputs)["frechet_distance"]
