"""The domain classifier: a small transformers ResNet trained from scratch, used as a feature extractor.

The usual FID runs Inception-v3 (ImageNet weights from the internet) on 299-px RGB images; for 28-px
grayscale glyphs the accepted practice is a classifier trained on the domain itself, whose pooled
features carry what distinguishes one character from another.
"""

from collections.abc import Sequence
from pathlib import Path

import torch
from transformers import ResNetConfig, ResNetForImageClassification

from evaluation.data import resize
from evaluation.errors import EvaluationError
from sharing import first_line


def build_classifier(
    class_names: Sequence[str],
    image_size: int,
    embedding_size: int = 32,
    hidden_sizes: Sequence[int] = (32, 64, 128),
    depths: Sequence[int] = (1, 1, 1),
) -> ResNetForImageClassification:
    """A randomly initialised 1-channel ResNet (basic blocks) for `len(class_names)` classes.

    Args:
        class_names (`Sequence[str]`): the class names, by label index (saved as `id2label`).
        image_size (`int`): the input size (saved in the config as `image_size`; inputs of other sizes
            are resized by the feature extractor).
        embedding_size (`int`): channels of the stem (a 7x7 stride-2 conv and a max pool: 28 px -> 7 px).
        hidden_sizes (`Sequence[int]`): channels of each stage; the last one is the feature dimension.
        depths (`Sequence[int]`): basic blocks per stage.

    Returns:
        `ResNetForImageClassification`: about 0.3M parameters with the defaults.
    """
    config = ResNetConfig(
        num_channels=1,
        embedding_size=embedding_size,
        hidden_sizes=list(hidden_sizes),
        depths=list(depths),
        layer_type="basic",
        num_labels=len(class_names),
        id2label=dict(enumerate(class_names)),
        label2id={name: index for index, name in enumerate(class_names)},
        image_size=image_size,
    )
    return ResNetForImageClassification(config)


def to_model_input(images: torch.Tensor, value_range: tuple[float, float], image_size: int) -> torch.Tensor:
    """Images (B, 1, H, W) with values in `value_range` -> the classifier's input (B, 1, S, S) in [-1, 1]."""
    if images.ndim != 4 or images.shape[1] != 1:
        raise ValueError(f"expected grayscale images of shape (batch, 1, height, width), got {tuple(images.shape)}")
    low, high = value_range
    unit = (images.float() - low) / (high - low)  # (B, 1, H, W) in [0, 1]
    return resize(unit, image_size) * 2.0 - 1.0


class DomainFeatureExtractor:
    """Maps image batches to the classifier's pooled features and its logits.

    Args:
        model (`ResNetForImageClassification`): a classifier from `build_classifier` (trained).
        batch_size (`int`, *optional*, defaults to 512): images per forward pass (bounds memory).

    Example:

    ```py
    >>> extractor = load_feature_extractor("classifiers/mnist")
    >>> features, logits = extractor(images)  # images (B, 1, H, W) in [0, 1]
    >>> features.shape, logits.shape  # (B, 128), (B, 10)
    ```
    """

    def __init__(self, model: ResNetForImageClassification, batch_size: int = 512):
        self.model = model.eval()
        self.batch_size = batch_size

    @property
    def image_size(self) -> int:
        return self.model.config.image_size

    @property
    def class_names(self) -> list[str]:
        return [self.model.config.id2label[index] for index in range(self.model.config.num_labels)]

    @property
    def feature_dim(self) -> int:
        return self.model.config.hidden_sizes[-1]

    @torch.no_grad()
    def __call__(
        self, images: torch.Tensor, value_range: tuple[float, float] = (0.0, 1.0)
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Features and logits of a batch of images.

        Args:
            images (`torch.Tensor`): grayscale images (B, 1, H, W); resized to `image_size` if needed.
            value_range (`tuple[float, float]`, defaults to (0, 1)): the black and white values of `images`,
                e.g. (0, 1) for pipeline outputs or (-1, 1) for the diffusion model's space.

        Returns:
            `tuple[torch.Tensor, torch.Tensor]`: features (B, D) and logits (B, K), float32 on the CPU.
        """
        device = self.model.device
        features, logits = [], []
        for batch in images.split(self.batch_size):
            pixel_values = to_model_input(batch, value_range, self.image_size).to(device)
            pooled = self.model.resnet(pixel_values).pooler_output  # (b, D, 1, 1)
            features.append(pooled.flatten(1).float().cpu())  # (b, D)
            logits.append(self.model.classifier(pooled).float().cpu())  # (b, K)
        return torch.cat(features), torch.cat(logits)


def load_feature_extractor(classifier_dir: str | Path, device: str | torch.device = "cpu") -> DomainFeatureExtractor:
    """Loads a classifier saved by `python -m evaluation.train_classifier` as a feature extractor.

    Args:
        classifier_dir (`str` or `Path`): the classifier's folder (or a Hub repo id).
        device (`str` or `torch.device`, defaults to "cpu"): where the model runs.

    Returns:
        `DomainFeatureExtractor`: callable `images -> (features (B, D), logits (B, K))`.
    """
    try:
        model = ResNetForImageClassification.from_pretrained(str(classifier_dir))
    except (OSError, ValueError) as error:
        raise EvaluationError(
            f"--classifier {classifier_dir}: not a classifier saved by `python -m evaluation.train_classifier` "
            f"({first_line(error)})"
        ) from None
    if getattr(model.config, "image_size", None) is None or model.config.num_channels != 1:
        raise EvaluationError(
            f"--classifier {classifier_dir}: expected a 1-channel classifier with `image_size` in its config; "
            "train one with `python -m evaluation.train_classifier`"
        )
    return DomainFeatureExtractor(model.to(device))
