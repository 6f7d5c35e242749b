"""Labelled data for the evaluation tools: `--dataset` resolved as training resolves it, splits as whole tensors."""

import datasets
import numpy as np
import torch
import torch.nn.functional as F

from data_prep.resolve import DataError, ResolvedDataset, resolve_dataset
from evaluation.errors import EvaluationError


def resolve_labelled(dataset: str, data_dir: str = "data", seed: int = 0) -> ResolvedDataset:
    """`data_prep.resolve.resolve_dataset`, for tools that need labels, with its errors as `EvaluationError`.

    Args:
        dataset (`str`): any `train_ddpm.py --dataset` value: a named set, a `save_to_disk` folder, an image
            folder (one sub-folder per class) or a Hub dataset id.
        data_dir (`str`, defaults to `"data"`): where the named sets live.
        seed (`int`, defaults to 0): seed of the held-out test split of data that comes without one.

    Returns:
        `ResolvedDataset`: splits "train" and "test", with a label column and class names.

    Raises:
        `EvaluationError`: the data cannot be found or used, or has no labels.
    """
    try:
        data = resolve_dataset(dataset, data_dir, seed)
    except DataError as error:
        raise EvaluationError(str(error)) from None
    if data.label_column is None:
        raise EvaluationError(
            f"--dataset {dataset}: no label column (a ClassLabel, or one sub-folder per class in an image folder); "
            "the domain classifier and the per-class scores need labelled images"
        )
    return data


def split_to_tensors(
    split: datasets.Dataset, image_column: str, label_column: str, image_size: int | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Decodes a whole split into tensors once, so that no PIL work happens per batch.

    Args:
        split (`datasets.Dataset`): a split with an image column and a class-label column.
        image_column (`str`): the `datasets.Image` column; colour images are converted to grayscale.
        label_column (`str`): the `datasets.ClassLabel` column.
        image_size (`int`, *optional*): resize (antialiased) to this size; by default to the larger side of
            the first image, so that images of mixed sizes (as image folders hold) fit one tensor.

    Returns:
        `tuple[torch.Tensor, torch.Tensor]`: images (N, 1, S, S) float32 in [0, 1] and labels (N,) int64.
    """
    pixels = [torch.from_numpy(np.array(image.convert("L"))) for image in split[image_column]]  # (H, W) uint8 each
    side = image_size or max(pixels[0].shape)
    images = torch.cat([resize(p[None, None].float(), side) for p in pixels]).div_(255.0)  # (N, 1, S, S)
    labels = torch.tensor(split[label_column], dtype=torch.long)  # (N,)
    return images, labels


def resize(images: torch.Tensor, image_size: int | None) -> torch.Tensor:
    """Resizes images (B, C, H, W) to image_size x image_size (antialiased bilinear); unchanged if already so."""
    if image_size is None or images.shape[-2:] == (image_size, image_size):
        return images
    return F.interpolate(images, size=(image_size, image_size), mode="bilinear", antialias=True, align_corners=False)


def reader_split(labels: torch.Tensor, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """The test split cut in two halves, class by class: the independent reader learns from the first and the
    second stays held out from it (and from a generator, which learns from the train split).

    `python -m evaluation.train_classifier --independent` trains on the first half; `python -m evaluation`
    reads the second with that reader, so that a sample's readable share is compared with that of real
    images neither model saw.

    Args:
        labels (`torch.Tensor`): the test split's labels (N,).
        seed (`int`, defaults to 0): the seed of the cut; the reader records it.

    Returns:
        `tuple`: sorted indices (into the split) of the reader's half and of the held-out half; of each class's
        images the reader gets the larger half when the count is odd.
    """
    generator = torch.Generator().manual_seed(seed)
    reader, held_out = [], []
    for label in labels.unique(sorted=True).tolist():
        members = torch.nonzero(labels == label).flatten()
        members = members[torch.randperm(len(members), generator=generator)]
        cut = (len(members) + 1) // 2
        reader.append(members[:cut])
        held_out.append(members[cut:])
    return torch.cat(reader).sort().values, torch.cat(held_out).sort().values
