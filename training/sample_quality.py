"""Sample quality during training: the Fréchet distance of samples to the test split (`--eval_steps`).

The distance is measured in the feature space of a domain classifier from `python -m evaluation.train_classifier`
(see `evaluation`, which computes it; this module only wires it into the loop): the classifier is loaded and
the test split's features are computed once, then every check samples the same seeded noise, so values logged
at different steps differ only by what the model learned.
"""

from __future__ import annotations

from pathlib import Path

import torch
from diffusers import DDPMScheduler, UNet2DModel

from evaluation import DomainFeatureExtractor, EvaluationError, fid_for_pipeline, load_feature_extractor
from training.config import ConfigError, TrainConfig
from training.validation import sampling_pipeline


def load_eval_classifier(cfg: TrainConfig, class_names: list[str] | None,
                         device: torch.device | str = "cpu") -> DomainFeatureExtractor:
    """Load `--eval_classifier` and check that it fits the dataset.

    Args:
        cfg: the run's config (`eval_classifier`, `dataset`).
        class_names: the dataset's class names, or None for unlabelled data (then nothing can be compared).
        device: where the classifier runs.

    Returns:
        The feature extractor.

    Raises:
        ConfigError: the folder is missing, is not a classifier, or was trained on other classes.
    """
    folder = cfg.eval_classifier
    train_hint = f"`python -m evaluation.train_classifier --dataset {cfg.dataset} --output_dir DIR`"
    if not Path(folder).is_dir():
        raise ConfigError(f"--eval_classifier {folder}: no such folder; train a classifier with {train_hint}.")
    try:
        extractor = load_feature_extractor(folder, device=device)
    except EvaluationError as err:
        reason = str(err).removeprefix(f"--classifier {folder}: ")
        raise ConfigError(f"--eval_classifier {folder}: {reason}.") from None
    if class_names is not None and extractor.class_names != list(class_names):
        raise ConfigError(f"--eval_classifier {folder} was trained on other classes than --dataset {cfg.dataset} "
                          f"({len(extractor.class_names)} vs {len(class_names)} classes); train one with {train_hint}.")
    return extractor


class FidCheck:
    """The Fréchet distance of a model's samples to fixed reference images, in a classifier's feature space.

    Args:
        extractor: from `load_eval_classifier`.
        reference_images: uint8 (N, C, H, W) real images (the test split at the training resolution); colour
            images are scored in grayscale, as the samples are.
        num_samples: samples per check.
        batch_size: images per pipeline call.
        num_inference_steps: sampler steps.
        seed: the samples' seed (the same at every check).
    """

    def __init__(self, extractor: DomainFeatureExtractor, reference_images: torch.Tensor, num_samples: int,
                 batch_size: int, num_inference_steps: int, seed: int):
        self.extractor = extractor
        gray = reference_images.float().mean(dim=1, keepdim=True)  # (N, 1, H, W) in [0, 255]
        self.reference_features = extractor(gray, value_range=(0.0, 255.0))[0]  # (N, D)
        self.num_samples, self.batch_size = num_samples, batch_size
        self.num_inference_steps, self.seed = num_inference_steps, seed

    @torch.no_grad()
    def __call__(self, unet: UNet2DModel, scheduler: DDPMScheduler, class_names: list[str] | None = None) -> float:
        """Sample from `unet` with the fast sampler (equal numbers per class when class-conditional) and score.

        Args:
            unet: the (EMA) model; evaluated in eval mode, its mode restored afterwards.
            scheduler: the training noise scheduler.
            class_names: for a class-conditional model.

        Returns:
            The Fréchet distance (lower is better).
        """
        was_training = unet.training
        unet.eval()
        pipeline = sampling_pipeline(unet, scheduler, class_names)
        fid = fid_for_pipeline(pipeline, self.extractor, self.reference_features, self.num_samples,
                               batch_size=self.batch_size, seed=self.seed,
                               num_inference_steps=self.num_inference_steps)
        unet.train(was_training)
        return float(fid)
