"""Training data: resolve `--dataset` to a `datasets.DatasetDict`, turn a split into one uint8 tensor,
and serve seeded, per-epoch shuffled batches.

The hot path does no PIL work: each split is decoded once into a (N, C, H, W) uint8 tensor, cached on
disk under the dataset's fingerprint, and a batch is one fancy-index into it. Only a dataset larger than
`--max_in_memory_gb` is decoded per batch (in `--dataloader_num_workers` worker processes).

This module knows nothing about processes: `EpochBatchSampler` takes the number of replicas and the
replica's rank as plain integers, like torch's `DistributedSampler`.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

import datasets
import numpy as np
import PIL.Image
import torch

NAMED_DATASETS = ("mnist", "persian", "glyphs")
# Share of an unsplit dataset held out as the test split (for the validation loss).
TEST_SHARE = 0.05


class DataError(ValueError):
    """A dataset that cannot be found or used, reported as one sentence at start-up."""


@dataclass
class GlyphData:
    """A resolved dataset with the columns training needs.

    Args:
        splits: the `train` and `test` splits.
        image_column: name of the `datasets.Image` column.
        label_column: name of the `datasets.ClassLabel` column, or None when the data has no labels.
        class_names: the label names in class-index order, or None.
        description: where the data came from, for the model card.
    """

    splits: datasets.DatasetDict
    image_column: str
    label_column: str | None
    class_names: list[str] | None
    description: str


def _prepare_command(name: str, data_dir: str) -> str:
    # MNIST from the Hub id (or a folder of LeCun's IDX files); Persian from Hoda's digit and character .cdb files.
    source = {"mnist": " --source ylecun/mnist",
              "persian": " --source HODA_DIGITS.cdb HODA_LETTERS.cdb"}.get(name, "")
    return f"python -m data_prep {name}{source} --output_dir {Path(data_dir) / name}"


def _load_named(name: str, data_dir: str) -> datasets.DatasetDict:
    """`mnist` / `persian` / `glyphs` from `data_dir/<name>`; `glyphs` is rendered there on first use."""
    path = Path(data_dir) / name
    if (path / "dataset_dict.json").is_file():
        return datasets.load_from_disk(str(path))
    if name == "glyphs":
        import data_prep

        try:
            return data_prep.prepare("glyphs", output_dir=str(path))
        except data_prep.DataPrepError as err:
            raise DataError(f"--dataset glyphs: could not build {path} ({err}).") from err
    raise DataError(f"--dataset {name}: {path} is not prepared; run `{_prepare_command(name, data_dir)}` first.")


def _load_any(dataset: str, data_dir: str) -> datasets.DatasetDict:
    """Load whatever `--dataset` names, as a DatasetDict."""
    if dataset in NAMED_DATASETS:
        return _load_named(dataset, data_dir)
    path = Path(dataset)
    if path.is_dir():
        if (path / "dataset_dict.json").is_file() or (path / "dataset_info.json").is_file():
            loaded = datasets.load_from_disk(str(path))
        else:
            loaded = datasets.load_dataset("imagefolder", data_dir=str(path))
    elif path.exists():
        raise DataError(f"--dataset {dataset}: a file, not a dataset folder; pass a save_to_disk or image folder.")
    else:
        try:
            loaded = datasets.load_dataset(dataset)
        except Exception as err:  # the Hub client raises many types; all mean "cannot get this dataset"
            raise DataError(
                f"--dataset {dataset}: not a named dataset ({', '.join(NAMED_DATASETS)}), not a local folder, "
                f"and not loadable from the Hub ({type(err).__name__})."
            ) from err
    if isinstance(loaded, datasets.Dataset):
        loaded = datasets.DatasetDict({"train": loaded})
    return loaded


def load_glyph_data(dataset: str, data_dir: str = "data", seed: int = 0) -> GlyphData:
    """Resolve `--dataset` into train/test splits with an image column and, if any, a label column.

    Args:
        dataset: `mnist`, `persian`, `glyphs`, a `save_to_disk` folder, an image folder or a Hub id.
        data_dir: where the named datasets live.
        seed: seed of the train/test split made when the data has no `test` split.

    Returns:
        The resolved `GlyphData`.

    Raises:
        DataError: the data cannot be found, has no image column or no `train` split.
    """
    loaded = _load_any(dataset, data_dir)
    if "train" not in loaded:
        raise DataError(f"--dataset {dataset}: no `train` split (found {', '.join(loaded) or 'none'}).")
    features = loaded["train"].features
    image_column = next((k for k, v in features.items() if isinstance(v, datasets.Image)), None)
    if image_column is None:
        raise DataError(f"--dataset {dataset}: no image column (features: {', '.join(features)}).")
    label_column = next((k for k, v in features.items() if isinstance(v, datasets.ClassLabel)), None)
    if "test" not in loaded:
        held_out = loaded["train"].train_test_split(test_size=TEST_SHARE, seed=seed)
        loaded = datasets.DatasetDict({"train": held_out["train"], "test": held_out["test"]})
    class_names = list(features[label_column].names) if label_column else None
    return GlyphData(datasets.DatasetDict({"train": loaded["train"], "test": loaded["test"]}),
                     image_column, label_column, class_names, dataset)


def image_channels(split: datasets.Dataset, image_column: str) -> int:
    """1 for grayscale data, 3 for colour, judged by the first image's PIL mode."""
    mode = split[0][image_column].mode
    return 1 if mode in ("1", "L", "LA", "I", "I;16", "F") else 3


def native_resolution(split: datasets.Dataset, image_column: str) -> int:
    """The larger side of the first image: the default `--resolution`."""
    return max(split[0][image_column].size)


def _to_pixels(image: PIL.Image.Image, resolution: int, channels: int, center_crop: bool) -> np.ndarray:
    """One PIL image -> (H, W) or (H, W, 3) uint8 at `resolution` (resize the short side, then crop)."""
    image = image.convert("L" if channels == 1 else "RGB")
    if image.size != (resolution, resolution):
        width, height = image.size
        if center_crop:
            side = min(width, height)
            left, top = (width - side) // 2, (height - side) // 2
            image = image.crop((left, top, left + side, top + side))
        image = image.resize((resolution, resolution), PIL.Image.BICUBIC)
    return np.asarray(image, dtype=np.uint8)


def decode_images(split: datasets.Dataset, image_column: str, resolution: int, channels: int,
                  center_crop: bool = False) -> torch.Tensor:
    """Decode a whole split into one tensor.

    Returns:
        uint8 tensor (N, C, H, W), H = W = resolution.
    """
    pixels = np.empty((len(split), resolution, resolution, channels), dtype=np.uint8)  # (N, H, W, C)
    start = 0
    for batch in split.select_columns([image_column]).iter(batch_size=1024):
        for offset, image in enumerate(batch[image_column]):
            pixels[start + offset] = _to_pixels(image, resolution, channels, center_crop).reshape(
                resolution, resolution, channels)
        start += len(batch[image_column])
    return torch.from_numpy(pixels).permute(0, 3, 1, 2).contiguous()  # (N, C, H, W)


def cached_images(split: datasets.Dataset, image_column: str, resolution: int, channels: int,
                  center_crop: bool = False, cache_dir: str | os.PathLike | None = None) -> torch.Tensor:
    """`decode_images`, cached on disk under the split's fingerprint (so a second run skips decoding).

    Args:
        cache_dir: folder for the cache files; defaults to datasets' cache (`HF_DATASETS_CACHE`).

    Returns:
        uint8 tensor (N, C, H, W).
    """
    cache_dir = Path(cache_dir or datasets.config.HF_DATASETS_CACHE) / "persian_ddpm_tensors"
    key = f"{split._fingerprint}-{image_column}-{resolution}px-{channels}ch-{'crop' if center_crop else 'resize'}"
    path = cache_dir / f"{key}.pt"
    if path.is_file():
        try:
            images = torch.load(path, weights_only=True)
            if images.shape[0] == len(split):
                return images
        except (RuntimeError, EOFError, OSError):
            pass  # a damaged cache file is rebuilt below
    images = decode_images(split, image_column, resolution, channels, center_crop)
    cache_dir.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    torch.save(images, partial)
    os.replace(partial, path)
    return images


class TensorImages(torch.utils.data.Dataset):
    """Images held as one uint8 tensor (N, C, H, W); a batch is one index operation."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor | None):
        self.images, self.labels = images, labels

    def __len__(self) -> int:
        return self.images.shape[0]

    def __getitems__(self, indices: list[int]) -> tuple[torch.Tensor, torch.Tensor | None]:
        index = torch.as_tensor(indices, device=self.images.device)
        return self.images[index], None if self.labels is None else self.labels[index]


class DecodedImages(torch.utils.data.Dataset):
    """Images decoded from the `datasets` split per batch: for data too large to hold in memory."""

    def __init__(self, split: datasets.Dataset, image_column: str, label_column: str | None, resolution: int,
                 channels: int, center_crop: bool):
        self.split, self.image_column, self.label_column = split, image_column, label_column
        self.resolution, self.channels, self.center_crop = resolution, channels, center_crop

    def __len__(self) -> int:
        return len(self.split)

    def __getitems__(self, indices: list[int]) -> tuple[torch.Tensor, torch.Tensor | None]:
        rows = self.split[indices]
        pixels = np.stack([_to_pixels(im, self.resolution, self.channels, self.center_crop).reshape(
            self.resolution, self.resolution, self.channels) for im in rows[self.image_column]])
        images = torch.from_numpy(pixels).permute(0, 3, 1, 2)  # (B, C, H, W)
        labels = torch.as_tensor(rows[self.label_column]) if self.label_column else None
        return images, labels


class EpochBatchSampler(torch.utils.data.Sampler):
    """Batches of one replica from a seeded permutation per epoch, resumable mid-epoch.

    Epoch e uses the permutation drawn from seed (seed, e), padded by wrapping around so that every
    replica gets `batches_per_epoch` full batches; global batch b is split into `num_replicas`
    consecutive slices and replica `rank` takes its own. The order depends only on (seed, epoch), so a
    resumed run sees exactly the batches an uninterrupted one would.

    Args:
        num_items: the dataset size.
        batch_size: images per replica per batch.
        seed: the run's seed.
        num_replicas: how many replicas share each global batch.
        rank: this replica's index in [0, num_replicas).
    """

    def __init__(self, num_items: int, batch_size: int, seed: int, num_replicas: int = 1, rank: int = 0):
        self.num_items, self.batch_size, self.seed = num_items, batch_size, seed
        self.num_replicas, self.rank = num_replicas, rank
        self.batches_per_epoch = math.ceil(num_items / (batch_size * num_replicas))
        self.epoch, self.start_batch = 0, 0

    def set_position(self, epoch: int, start_batch: int = 0) -> None:
        """Make the next iteration yield epoch `epoch` from its batch `start_batch` on."""
        self.epoch, self.start_batch = epoch, start_batch

    def __len__(self) -> int:
        return self.batches_per_epoch - self.start_batch

    def __iter__(self):
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        order = torch.randperm(self.num_items, generator=generator)
        needed = self.batches_per_epoch * self.batch_size * self.num_replicas
        order = order.repeat(math.ceil(needed / self.num_items))[:needed]
        # (batches, replicas, batch) -> this replica's (batches, batch)
        mine = order.view(self.batches_per_epoch, self.num_replicas, self.batch_size)[:, self.rank]
        for batch in mine[self.start_batch:]:
            yield batch.tolist()


def _keep_batch(batch):
    return batch


def make_loader(dataset: torch.utils.data.Dataset, sampler: EpochBatchSampler, num_workers: int = 0,
                generator: torch.Generator | None = None) -> torch.utils.data.DataLoader:
    """A DataLoader yielding (uint8 images (B, C, H, W), labels (B,) or None) batches from `sampler`.

    Args:
        generator: seeds the worker processes; pass one so that starting an epoch does not draw from
            the global torch RNG.
    """
    return torch.utils.data.DataLoader(dataset, batch_sampler=sampler, collate_fn=_keep_batch,
                                       num_workers=num_workers, persistent_workers=num_workers > 0,
                                       generator=generator)


def to_model_range(images: torch.Tensor) -> torch.Tensor:
    """uint8 [0, 255] -> float [-1, 1], the range the DDPM is trained in (Ho et al. 2020, sec. 3.3)."""
    return images.float().div_(127.5).sub_(1.0)


def random_hflip(images: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Flip each image (B, C, H, W) left-right with probability 1/2."""
    flip = torch.rand(images.shape[0], device=images.device, generator=generator) < 0.5
    return torch.where(flip[:, None, None, None], images.flip(-1), images)
