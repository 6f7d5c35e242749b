"""Training data read as it is used (`--streaming`): a `datasets.IterableDataset` split across processes,
shuffled, decoded batch by batch, with each process's place saved in every checkpoint.

For data that does not fit in memory or on disk, such as a Hub dataset too large to download whole. Each
process reads its own part (`datasets.distributed.split_dataset_by_node`: whole shards when their number
divides by the processes, else every n-th record), in a shard order reshuffled each epoch
(`IterableDataset.set_epoch`) and in shuffled blocks of `--shuffle_buffer_size` records. A process that
reaches the end of its part starts its next epoch at once, so every process always has a full batch even
when the parts differ in length.

Resume: the place is the epoch, the stream's own `IterableDataset.state_dict()` at the start of the current
block, and how far into the block training has read. A resumed run reads that block again (at most
`--shuffle_buffer_size` records) and goes on with exactly the records an uninterrupted run would read
(tests/test_streaming.py checks it on 200,000 records, and that the weights come out the same).
"""

from __future__ import annotations

import itertools

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

    Records are shuffled twice: datasets shuffles the shard order each epoch, and the records are read in blocks
    of `shuffle_buffer_size`, each put in an order drawn from (seed, epoch, block). datasets' own rolling buffer
    is not used because a checkpoint cannot hold its content: its state resumes after the records waiting in
    the buffer, which would be lost. A block is replayed from its start instead, so a resumed run reads exactly
    the records, in the order, that an uninterrupted one would.

    Args:
        stream (`datasets.IterableDataset`): the training split.
        image_column (`str`), label_column (`str`, *optional*): the columns to read.
        resolution (`int`), channels (`int`), center_crop (`bool`): how images are decoded (`training.data`).
        batch_size (`int`): images per batch of this process.
        seed (`int`): seed of the shard order and the block orders.
        shuffle_buffer_size (`int`): records per shuffled block.
        num_replicas (`int`), rank (`int`): the processes and this one's index.
    """

    def __init__(self, stream: datasets.IterableDataset, image_column: str, label_column: str | None, resolution: int,
                 channels: int, center_crop: bool, batch_size: int, seed: int, shuffle_buffer_size: int,
                 num_replicas: int = 1, rank: int = 0):
        columns = [column for column in (image_column, label_column) if column]
        part = split_dataset_by_node(stream.select_columns(columns), rank=rank, world_size=num_replicas)
        # A buffer of one record shuffles the shard order only, and holds nothing when a state is taken.
        self.stream = part.shuffle(seed=seed, buffer_size=1)
        self.decode = (image_column, label_column, resolution, channels, center_crop)
        self.batch_size, self.block_size, self.seed, self.rank = batch_size, shuffle_buffer_size, seed, rank
        # Where the next record comes from: the epoch, the stream's state at the start of the current block
        # (None: the epoch's start), the block's number in the epoch and the records of it already used.
        self.place = {"epoch": 0, "block_start": None, "block": 0, "offset": 0}

    def _blocks(self):
        """Yield (epoch, block start state, block number, shuffled records) from `place` on, without end."""
        place = dict(self.place)
        while True:
            self.stream.set_epoch(place["epoch"])
            if place["block_start"] is not None:
                self.stream.load_state_dict(place["block_start"])  # applies to this epoch only
            records, start, block = iter(self.stream), place["block_start"], place["block"]
            empty = start is None and block == 0
            while rows := list(itertools.islice(records, self.block_size)):
                order = np.random.default_rng((self.seed, place["epoch"], block)).permutation(len(rows))
                yield place["epoch"], start, block, [rows[i] for i in order]
                start, block, empty = self.stream.state_dict(), block + 1, False
            if empty:
                raise DataError(f"process {self.rank}'s part of the training stream is empty: the data has fewer "
                                "records (or shards) than there are processes")
            place = {"epoch": place["epoch"] + 1, "block_start": None, "block": 0, "offset": 0}

    def from_step(self, micro_step: int):
        """Yield (images, labels) batches without end, from the place restored by `load_state_dict` (or the
        start). `micro_step` is not used: a stream's place is its own state, not a batch count."""
        batch, skip = [], self.place["offset"]
        for epoch, start, block, rows in self._blocks():
            for offset in range(skip, len(rows)):
                batch.append(rows[offset])
                if len(batch) == self.batch_size:
                    self.place = {"epoch": epoch, "block_start": start, "block": block, "offset": offset + 1}
                    yield _collate(batch, *self.decode)
                    batch = []
            skip = 0

    @property
    def epoch(self) -> int:
        """The epoch of the next record."""
        return self.place["epoch"]

    def state_dict(self) -> dict:
        """This process's place after the last batch handed out (JSON-serialisable)."""
        return dict(self.place)

    def load_state_dict(self, state: dict) -> None:
        self.place = {"epoch": int(state["epoch"]), "block_start": state["block_start"], "block": int(state["block"]),
                      "offset": int(state["offset"])}
