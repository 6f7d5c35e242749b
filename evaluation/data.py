"""Prepared datasets (from `python -m data_prep`) as whole tensors, for classifiers and reference sets."""

from pathlib import Path

import datasets
import numpy as np
import torch
import torch.nn.functional as F

from evaluation.errors import EvaluationError

# The built-in names resolve to `data/<name>`, where `python -m data_prep <name> --output_dir data/<name>` writes.
DATASET_NAMES = ("mnist", "persian", "glyphs")
_PREPARE_HINT = {
    # MNIST from the Hub (ylecun/mnist), or `--source` a folder of LeCun's IDX files.
    "mnist": "python -m data_prep mnist --source ylecun/mnist --output_dir data/mnist",
    # Hoda's digit and character .cdb files, as published with the Hoda datasets.
    "persian": "python -m data_prep persian --source HODA_DIGITS.cdb HODA_LETTERS.cdb --output_dir data/persian",
    "glyphs": "python -m data_prep glyphs --output_dir data/glyphs",
}


def load_prepared_dataset(dataset: str) -> datasets.DatasetDict:
    """Loads a dataset prepared by `data_prep`: a built-in name or a `save_to_disk` folder.

    Args:
        dataset (`str`): `mnist`, `persian` or `glyphs` (read from `data/<name>`), or the path of a
            `DatasetDict` saved with `save_to_disk`, with splits `train` and `test` and columns `image`
            and `label` (a `ClassLabel`).

    Returns:
        `datasets.DatasetDict`: the dataset.

    Raises:
        `EvaluationError`: the folder is missing or not in that format.
    """
    path = Path("data") / dataset if dataset in DATASET_NAMES else Path(dataset)
    if not path.is_dir():
        hint = f"; prepare it with `{_PREPARE_HINT[dataset]}`" if dataset in DATASET_NAMES else ""
        raise EvaluationError(f"--dataset {dataset}: no prepared dataset folder at {path}{hint}")
    try:
        dataset_dict = datasets.load_from_disk(str(path))
    except (FileNotFoundError, ValueError) as error:
        raise EvaluationError(
            f"--dataset {dataset}: {path} is not a dataset saved with save_to_disk ({error}); "
            "make it with `python -m data_prep`"
        ) from None
    if not isinstance(dataset_dict, datasets.DatasetDict) or not {"train", "test"} <= set(dataset_dict):
        raise EvaluationError(f"--dataset {dataset}: {path} needs the splits 'train' and 'test'")
    features = dataset_dict["train"].features
    if not isinstance(features.get("image"), datasets.Image) or not isinstance(
        features.get("label"), datasets.ClassLabel
    ):
        raise EvaluationError(
            f"--dataset {dataset}: {path} needs an 'image' column (Image) and a 'label' column (ClassLabel)"
        )
    return dataset_dict


def class_names(dataset_dict: datasets.DatasetDict) -> list[str]:
    """The class names of a prepared dataset, by label index."""
    return list(dataset_dict["train"].features["label"].names)


def split_to_tensors(split: datasets.Dataset, image_size: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Decodes a whole split into tensors once, so that no PIL work happens per batch.

    Args:
        split (`datasets.Dataset`): a split with a grayscale `image` column and a `label` column.
        image_size (`int`, *optional*): resize (antialiased) to this size when it differs.

    Returns:
        `tuple[torch.Tensor, torch.Tensor]`: images (N, 1, H, W) float32 in [0, 1] and labels (N,) int64.
    """
    pixels = np.stack([np.asarray(image.convert("L")) for image in split["image"]])  # (N, H, W) uint8
    images = torch.from_numpy(pixels).unsqueeze(1).float().div_(255.0)  # (N, 1, H, W)
    labels = torch.tensor(split["label"], dtype=torch.long)  # (N,)
    return resize(images, image_size), labels


def resize(images: torch.Tensor, image_size: int | None) -> torch.Tensor:
    """Resizes images (B, C, H, W) to image_size x image_size (antialiased bilinear); unchanged if already so."""
    if image_size is None or images.shape[-2:] == (image_size, image_size):
        return images
    return F.interpolate(images, size=(image_size, image_size), mode="bilinear", antialias=True, align_corners=False)
