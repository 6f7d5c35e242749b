"""`--streaming`: a `datasets.IterableDataset` split across processes, resumed at its place, trained on from
parquet files (200,000 records), killed and resumed, and read from the loopback Hub."""

import io
import json
import os
import signal
import time
from pathlib import Path

import datasets
import numpy as np
import PIL.Image
import pytest
import torch

from data_prep.resolve import DataError, resolve_dataset
from tests.hub_client import run_client
from tests.train_helpers import FAST_ARGS, launch, weights_of
from training.checkpointing import check_resume_layout, data_layout
from training.config import ConfigError
from training.streaming import StreamedBatches, first_images

RECORDS = 200_000


def write_parquet_set(folder, train: int, test: int = 64, shards: int = 8, size: int = 8):
    """`train-0000k.parquet` shards and a `test` file of `size` px grey images with an `idx` column (the record's
    number) and a ClassLabel: the files `Dataset.to_parquet` writes, with the features in their metadata."""
    pngs = []
    for level in range(256):  # 256 distinct images are enough; `idx` tells the records apart
        buffer = io.BytesIO()
        PIL.Image.fromarray(np.full((size, size), level, dtype=np.uint8), mode="L").save(buffer, format="PNG")
        pngs.append(buffer.getvalue())
    features = datasets.Features({"image": datasets.Image(), "label": datasets.ClassLabel(names=["even", "odd"]),
                                  "idx": datasets.Value("int64")})
    folder.mkdir(parents=True)
    for split, count in (("train", train), ("test", test)):
        rows = datasets.Dataset.from_dict({"image": [{"bytes": pngs[i % 256], "path": None} for i in range(count)],
                                           "label": [i % 2 for i in range(count)], "idx": list(range(count))},
                                          features=features)
        parts = shards if split == "train" else 1
        for shard in range(parts):
            rows.shard(parts, shard, contiguous=True).to_parquet(str(folder / f"{split}-{shard:05d}.parquet"))
    return folder


@pytest.fixture(scope="module")
def parquet_set(tmp_path_factory):
    return write_parquet_set(tmp_path_factory.mktemp("stream") / "parquet", RECORDS)


def batches(data, rank=0, replicas=1, batch_size=64, buffer=1000, state=None):
    """A StreamedBatches over the set's train split whose labels are the record numbers."""
    source = StreamedBatches(data.splits["train"], "image", "idx", 8, 1, False, batch_size, seed=3,
                             shuffle_buffer_size=buffer, num_replicas=replicas, rank=rank)
    if state is not None:
        source.load_state_dict(state)
    return source


def take(source, count):
    stream = source.from_step(0)
    return [next(stream)[1].tolist() for _ in range(count)]


def test_a_parquet_folder_streams_with_its_splits_and_features(parquet_set):
    data = resolve_dataset(str(parquet_set), streaming=True)
    assert data.streaming and isinstance(data.splits["train"], datasets.IterableDataset)
    assert data.image_column == "image" and data.label_column == "label" and data.class_names == ["even", "odd"]
    images, labels = first_images(data.splits["test"], "image", "label", 10, 8, 1)
    assert images.shape == (10, 1, 8, 8) and images.dtype == torch.uint8 and labels.tolist() == [0, 1] * 5
    assert images[3, 0, 0, 0].item() == 3  # record 3 is the grey level 3 image, decoded


def test_processes_read_disjoint_parts_and_a_resumed_stream_goes_on_where_it_stopped(parquet_set):
    data = resolve_dataset(str(parquet_set), streaming=True)
    straight = take(batches(data), 40)  # 2,560 records: past the first fill of the 1,000-record buffer
    seen = [i for batch in straight for i in batch]
    assert len(set(seen)) == len(seen) and max(seen) - min(seen) > 10_000  # shuffled across shards, no repeats

    first = batches(data)
    stream = first.from_step(0)
    for _ in range(15):
        next(stream)
    saved = first.state_dict()
    assert saved["epoch"] == 0
    resumed = batches(data, state=saved)
    assert take(resumed, 25) == straight[15:40]

    parts = [set(i for batch in take(batches(data, rank, 2), 20) for i in batch) for rank in (0, 1)]
    assert len(parts[0]) == len(parts[1]) == 20 * 64 and not parts[0] & parts[1]
    # 8 shards over 2 processes: each reads 4 whole shards (25,000 records each).
    assert {i // 25_000 for i in parts[0]}.isdisjoint({i // 25_000 for i in parts[1]})


def test_epochs_follow_each_other_and_resume_across_their_boundary(blobs):
    data = resolve_dataset(blobs, streaming=True)  # a save_to_disk folder of 64 records, read as a stream
    source = StreamedBatches(data.splits["train"], "image", "label", 16, 1, False, 24, seed=0, shuffle_buffer_size=8)
    stream = source.from_step(0)
    straight = [next(stream) for _ in range(8)]  # 192 records: three epochs
    assert source.epoch == 2
    assert all(images.shape == (24, 1, 16, 16) for images, _ in straight)

    again = StreamedBatches(data.splits["train"], "image", "label", 16, 1, False, 24, seed=0, shuffle_buffer_size=8)
    partial = again.from_step(0)
    for _ in range(3):  # 72 records: in epoch 1
        next(partial)
    state = again.state_dict()
    assert state["epoch"] == 1
    resumed = StreamedBatches(data.splits["train"], "image", "label", 16, 1, False, 24, seed=0, shuffle_buffer_size=8)
    resumed.load_state_dict(state)
    stream = resumed.from_step(0)
    for expected_images, _ in straight[3:]:
        assert torch.equal(next(stream)[0], expected_images)


def test_a_stream_without_a_test_split_or_an_empty_part_is_one_sentence(tmp_path):
    folder = write_parquet_set(tmp_path / "only_train", 16, shards=1)
    (folder / "test-00000.parquet").unlink()
    with pytest.raises(DataError, match="--streaming: no `test` split, and a stream cannot hold out"):
        resolve_dataset(str(folder), streaming=True)
    data = resolve_dataset(str(write_parquet_set(tmp_path / "one_shard", 16, shards=1)), streaming=True)
    empty = StreamedBatches(data.splits["train"], "image", "idx", 8, 1, False, 4, seed=0, shuffle_buffer_size=4,
                            num_replicas=40, rank=39)
    with pytest.raises(DataError, match="process 39's part of the training stream is empty"):
        next(empty.from_step(0))


def test_a_streaming_run_killed_after_a_checkpoint_resumes_to_the_uninterrupted_weights(blobs, tmp_path):
    """kill -9 after checkpoint-10; resumed from it, the run ends with the weights of one that was never
    stopped (atol 1e-6): it read the same records after the resume, across the epochs of the 64-record set.
    The schedule is constant so that the killed run may be given more steps than it makes."""
    args = ["--dataset", blobs, "--streaming", *FAST_ARGS, "--shuffle_buffer_size", "20",
            "--lr_scheduler", "constant_with_warmup", "--checkpointing_steps", "10", "--validation_steps", "10",
            "--save_images_steps", "1000"]
    launch(*args, "--output_dir", tmp_path / "straight", "--max_train_steps", "30")
    killed = tmp_path / "killed"
    process = launch(*args, "--output_dir", killed, "--max_train_steps", "100000", wait=False)
    deadline = time.time() + 600
    while not (killed / "checkpoint-10").is_dir():
        assert process.poll() is None and time.time() < deadline, process.stdout.read()[-3000:]
        time.sleep(0.1)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    position = json.loads((killed / "checkpoint-10" / "stream_position_0.json").read_text())
    assert position["epoch"] == 1 and position["offset"] == 16  # 80 records of 64: 16 into the second epoch
    launch(*args, "--output_dir", killed, "--max_train_steps", "30", "--resume_from_checkpoint", "checkpoint-10")
    expected, resumed = weights_of(tmp_path / "straight"), weights_of(killed)
    assert expected.keys() == resumed.keys()
    for name in expected:
        torch.testing.assert_close(resumed[name], expected[name], rtol=0, atol=1e-6, msg=name)


PUSH_GLYPHS = """
    import sys
    from data_prep.cli import main
    sys.exit(main(["glyphs", "--output_dir", sys.argv[1], "--per_class", "2", "--seed", "0", "--push_to_hub",
                   "--hub_model_id", sys.argv[2]]))
"""


def test_a_hub_dataset_streams_into_training(hub, tmp_path):
    pushed = run_client(hub, PUSH_GLYPHS, str(tmp_path / "glyphs"), "tester/glyph-stream", home=tmp_path)
    assert pushed.returncode == 0, pushed.stderr[-2000:]
    out = tmp_path / "run"
    result = launch("--dataset", "tester/glyph-stream", "--streaming", "--output_dir", out, *FAST_ARGS,
                    "--resolution", "16", "--max_train_steps", "4", "--checkpointing_steps", "4",
                    "--save_images_steps", "1000", env=hub.client_env(tmp_path / "hf_home"))
    assert "streamed training images" in result.stdout
    assert (out / "model_index.json").is_file() and (out / "checkpoint-4" / "stream_position_0.json").is_file()
    requests = [path for _, path in hub.requests]
    assert any("/datasets/tester/glyph-stream/resolve/" in path and path.endswith(".parquet") for path in requests)
    assert not (tmp_path / "hf_home" / "datasets").exists() or not list((tmp_path / "hf_home" / "datasets").rglob(
        "*.arrow"))  # read as a stream: nothing was converted into an arrow cache


def test_a_streaming_checkpoint_resumes_only_with_its_own_layout():
    two_by_four = data_layout(2, 4, 1, streaming=True)
    with pytest.raises(ConfigError, match="resume with the same processes and batch size"):
        check_resume_layout(two_by_four, data_layout(1, 8, 1, streaming=True), Path("checkpoint-6"))
    with pytest.raises(ConfigError, match="written by a streaming run; resume it with --streaming"):
        check_resume_layout(two_by_four, data_layout(2, 4, 1, streaming=False), Path("checkpoint-6"))
    check_resume_layout(two_by_four, data_layout(2, 4, 1, streaming=True), Path("checkpoint-6"))
    # A map-style run keeps its place with any split of the same global batch, and not with another batch.
    check_resume_layout(data_layout(2, 4, 1, False), data_layout(1, 8, 1, False), Path("checkpoint-6"))
    with pytest.raises(ConfigError, match="resume with a global batch of 8"):
        check_resume_layout(data_layout(2, 4, 1, False), data_layout(2, 4, 2, False), Path("checkpoint-6"))
