"""Training data read as it is used (`--streaming`): a `datasets.IterableDataset` split across processes,
shuffled in a buffer, decoded batch by batch, with each process's place saved in every checkpoint.

For data that does not fit in memory or on disk, such as a Hub dataset too large to download whole. Each
process reads its own part (`datasets.distributed.split_dataset_by_node`: whole shards when their number
divides by the processes, else every n-th record), shuffled by shard order and by a buffer of
`--shuffle_buffer_size` records, reshuffled each epoch (`IterableDataset.set_epoch`). A process that reaches
the end of its part starts its next epoch at once, so every process always has a full batch even when the
parts differ in length.

Resume: the place is the stream's own `IterableDataset.state_dict()` taken at the last record of the last
batch handed to training. datasets restores it by replaying the current chunk of records and the shuffle
buffer from their seeded start, so a resumed run reads exactly the records an uninterrupted one would
(tests/test_streaming.py checks it on 200,000 records).
"""

from __future__ import annotations

import datasets
import numpy as np
import torch
from datasets.distributed import split_dataset_by_node

from data_prep.resolve import DataError
from training.data import to_pixels


def _collate(rows: list[dict], image_column: str, label_column: str | None, resolution: int, channels: int,
             center_crop: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Decoded records -> (uint8 images (B, C, H, W), labels (B,) or None)."""
    pixels = np.stack([to_pixels(row[image_column], resolution, channels, center_crop).reshape(
        resolution, resolution, channels) for row in rows])  # (B, H, W, C)
    labels = torch.as_tensor([row[label_column] for row in rows]) if label_column else None
    return torch.from_numpy(pixels).permute(0, 3, 1, 2).contiguous(), labels


def first_images(stream: datasets.IterableDataset, image_column: str, label_column: str | None, count: int,
                 resolution: int, channels: int, center_crop: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The first `count` records of a stream (fewer if it is shorter), decoded: the validation images of a
    streaming run.

    Returns:
        uint8 images (N, C, H, W) and labels (N,) or None.
    """
    rows = list(stream.take(count))
    if not rows:
        raise DataError("the stream to take validation images from is empty")
    return _collate(rows, image_column, label_column, resolution, channels, center_crop)


class StreamedBatches:
    """Batches of this process's part of a stream, epoch after epoch, resumable from `state_dict`.

    Args:
        stream (`datasets.IterableDataset`): the training split.
        image_column (`str`), label_column (`str`, *optional*): the columns to read.
        resolution (`int`), channels (`int`), center_crop (`bool`): how images are decoded (`training.data`).
        batch_size (`int`): images per batch of this process.
        seed (`int`): seed of the shard order and the shuffle buffer.
        shuffle_buffer_size (`int`): records in the shuffle buffer.
        num_replicas (`int`), rank (`int`): the processes and this one's index.
    """

    def __init__(self, stream: datasets.IterableDataset, image_column: str, label_column: str | None, resolution: int,
                 channels: int, center_crop: bool, batch_size: int, seed: int, shuffle_buffer_size: int,
                 num_replicas: int = 1, rank: int = 0):
        columns = [column for column in (image_column, label_column) if column]
        part = split_dataset_by_node(stream.select_columns(columns), rank=rank, world_size=num_replicas)
        self.stream = part.shuffle(seed=seed, buffer_size=shuffle_buffer_size)
        self.decode = (image_column, label_column, resolution, channels, center_crop)
        self.batch_size, self.rank = batch_size, rank
        self.epoch = 0
        self._start: dict | None = None  # the stream state to resume from (`load_state_dict`)
        self._handed_out: dict | None = None  # the state after the last batch handed out

    def from_step(self, micro_step: int):
        """Yield (images, labels) batches without end, from the place restored by `load_state_dict` (or the
        start). `micro_step` is not used: a stream's place is its own state, not a batch count."""
        rows, resumed = [], self._start is not None
        while True:
            self.stream.set_epoch(self.epoch)
            if self._start is not None:
                self.stream.load_state_dict(self._start)  # applies to this epoch only
                self._start = None
            records = 0
            for row in self.stream:
                records += 1
                rows.append(row)
                if len(rows) == self.batch_size:
                    self._handed_out = {"epoch": self.epoch, "stream": self.stream.state_dict()}
                    yield _collate(rows, *self.decode)
                    rows = []
            if records == 0 and not resumed:
                raise DataError(f"process {self.rank}'s part of the training stream is empty: the data has fewer "
                                 "records (or shards) than there are processes")
            self.epoch, resumed = self.epoch + 1, False

    def state_dict(self) -> dict:
        """This process's place: the epoch and the stream's state after the last batch handed out."""
        if self._handed_out is None:  # nothing read yet: the start of the restored place, or of epoch 0
            return {"epoch": self.epoch, "stream": self._start}
        return dict(self._handed_out)

    def load_state_dict(self, state: dict) -> None:
        self.epoch, self._start = int(state["epoch"]), state["stream"]
        self._handed_out = None
