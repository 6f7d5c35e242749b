"""Training data: turn a split resolved by `data_prep.resolve.resolve_dataset` into one uint8 tensor, and
serve seeded, per-epoch shuffled batches.

The hot path does no PIL work: each split is decoded once into a (N, C, H, W) uint8 tensor, cached on
disk under the dataset's fingerprint, and a batch is one fancy-index into it. Only a dataset larger than
`--max_in_memory_gb` is decoded per batch (in `--dataloader_num_workers` worker processes).

This module knows nothing about processes: `EpochBatchSampler` takes the number of replicas and the
replica's rank as plain integers, like torch's `DistributedSampler`.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import datasets
import numpy as np
import PIL.Image
import torch


def first_image(split: datasets.Dataset | datasets.IterableDataset, image_column: str) -> PIL.Image.Image:
    """The first image of a split, or of a stream (read without loading the rest; datasets then waits a few
    seconds as it closes a parquet stream, so read it once)."""
    if isinstance(split, datasets.IterableDataset):
        return next(iter(split.take(1)))[image_column]
    return split[0][image_column]


def image_channels(image: PIL.Image.Image) -> int:
    """1 for grayscale data, 3 for colour, judged by an image's (the first one's) PIL mode."""
    return 1 if image.mode in ("1", "L", "LA", "I", "I;16", "F") else 3


def native_resolution(image: PIL.Image.Image) -> int:
    """The larger side of an image (the first one): the default `--resolution`."""
    return max(image.size)


def to_pixels(image: PIL.Image.Image, resolution: int, channels: int, center_crop: bool) -> np.ndarray:
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
            pixels[start + offset] = to_pixels(image, resolution, channels, center_crop).reshape(
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
        pixels = np.stack([to_pixels(im, self.resolution, self.channels, self.center_crop).reshape(
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


class IndexedBatches:
    """The batches of a map-style dataset in `EpochBatchSampler`'s order, from any micro-step on, epoch after epoch.

    Args:
        loader: from `make_loader`, over `sampler`.
        sampler: the loader's batch sampler.
    """

    def __init__(self, loader: torch.utils.data.DataLoader, sampler: EpochBatchSampler):
        self.loader, self.sampler = loader, sampler

    def from_step(self, micro_step: int):
        """Yield (images, labels) batches without end, starting with micro-batch `micro_step` of the run."""
        while True:
            epoch, start = divmod(micro_step, self.sampler.batches_per_epoch)
            self.sampler.set_position(epoch, start)
            for batch in self.loader:
                micro_step += 1
                yield batch


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


def random_hflip(images: torch.Tensor, uniform: torch.Tensor) -> torch.Tensor:
    """Flip each image (B, C, H, W) left-right with probability 1/2: where its U[0, 1) number `uniform` (B,) is
    below 1/2."""
    flip = uniform.to(images.device) < 0.5
    return torch.where(flip[:, None, None, None], images.flip(-1), images)
