"""Dataset resolution, the tensor cache and the resumable, sharded batch order."""

import datasets
import numpy as np
import pytest
import torch

from data_prep.resolve import DataError, resolve_dataset
from tests.train_helpers import make_dataset_dict, make_image_folder
from training.data import (
    EpochBatchSampler,
    cached_images,
    decode_images,
    first_image,
    image_channels,
    native_resolution,
    random_hflip,
    to_model_range,
)


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    return make_dataset_dict(tmp_path_factory.mktemp("data") / "blobs")


def test_save_to_disk_folder(saved):
    data = resolve_dataset(str(saved))
    assert set(data.splits) == {"train", "test"}
    assert (data.image_column, data.label_column) == ("image", "label")
    assert data.class_names == ["□", "|"]
    first = first_image(data.splits["train"], "image")
    assert image_channels(first) == 1 and native_resolution(first) == 16
    assert image_channels(first.convert("RGB")) == 3
    streamed = first_image(resolve_dataset(str(saved), streaming=True).splits["train"], "image")
    assert np.array_equal(np.asarray(streamed), np.asarray(first))


def test_named_dataset_is_read_from_data_dir(saved, tmp_path):
    (tmp_path / "mnist").symlink_to(saved, target_is_directory=True)
    data = resolve_dataset("mnist", data_dir=str(tmp_path))
    assert len(data.splits["train"]) == 64


def test_unprepared_named_dataset_prints_the_data_prep_command(tmp_path):
    with pytest.raises(DataError, match=r"run `python -m data_prep persian --source .*--output_dir"):
        resolve_dataset("persian", data_dir=str(tmp_path))


def test_image_folder_gets_a_held_out_test_split(tmp_path):
    data = resolve_dataset(str(make_image_folder(tmp_path / "folder", per_class=20)))
    assert sorted(data.class_names) == ["bar", "square"]
    assert len(data.splits["train"]) + len(data.splits["test"]) == 40
    assert len(data.splits["test"]) >= 1


def test_unknown_dataset_is_one_sentence(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    with pytest.raises(DataError, match="not a named dataset"):
        resolve_dataset("someone/no-such-dataset-here")


def test_missing_folder_is_not_looked_up_on_the_hub(tmp_path):
    with pytest.raises(DataError, match=f"--dataset {tmp_path / 'nope'}: no such folder: {tmp_path / 'nope'}.$"):
        resolve_dataset(str(tmp_path / "nope"))


def test_a_mistyped_local_folder_names_the_nearest_one_before_going_online(tmp_path, monkeypatch):
    """`data/mnits` beside a `data/` folder is a typo of a path, not a Hub id: said at once, with no Hub request."""
    (tmp_path / "data" / "mnist").mkdir(parents=True)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(datasets, "load_dataset", lambda *a, **k: pytest.fail("the Hub was asked"))
    with pytest.raises(DataError, match=r"--dataset data/mnits: no such folder: data/mnits \(did you mean "
                                        r"data/mnist\?\)"):
        resolve_dataset("data/mnits")
    with pytest.raises(DataError, match=r"no such folder: \./elsewhere/x\.$"):
        resolve_dataset("./elsewhere/x")


def test_folder_without_images_is_one_sentence(tmp_path):
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "notes.txt").write_text("hello")
    with pytest.raises(DataError, match="junk: no image column"):  # datasets reads the .txt as a text dataset
        resolve_dataset(str(tmp_path / "junk"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="empty: neither a save_to_disk folder nor a folder of images"):
        resolve_dataset(str(tmp_path / "empty"))


def test_unlabelled_data_has_no_class_names(tmp_path):
    data = resolve_dataset(str(make_dataset_dict(tmp_path / "plain", labelled=False)))
    assert data.label_column is None and data.class_names is None


def test_decoded_tensor_matches_the_images(saved):
    split = datasets.load_from_disk(str(saved))["train"]
    images = decode_images(split, "image", resolution=16, channels=1)
    assert images.shape == (64, 1, 16, 16) and images.dtype == torch.uint8
    assert torch.equal(images[3, 0], torch.as_tensor(list(split[3]["image"].getdata()), dtype=torch.uint8).view(16, 16))
    resized = decode_images(split, "image", resolution=8, channels=3)
    assert resized.shape == (64, 3, 8, 8)


def test_tensor_cache_is_keyed_by_fingerprint(saved, tmp_path):
    split = datasets.load_from_disk(str(saved))["train"]
    first = cached_images(split, "image", 16, 1, cache_dir=tmp_path)
    files = list((tmp_path / "persian_ddpm_tensors").glob("*.pt"))
    assert len(files) == 1 and split._fingerprint in files[0].name
    again = cached_images(split, "image", 16, 1, cache_dir=tmp_path)
    assert torch.equal(first, again)
    other = cached_images(split.select(range(10)), "image", 16, 1, cache_dir=tmp_path)  # another fingerprint
    assert other.shape[0] == 10
    assert len(list((tmp_path / "persian_ddpm_tensors").glob("*.pt"))) == 2


def test_replicas_split_each_epoch_without_overlap():
    samplers = [EpochBatchSampler(50, batch_size=4, seed=3, num_replicas=3, rank=r) for r in range(3)]
    batches = [list(s) for s in samplers]
    assert all(len(b) == samplers[0].batches_per_epoch == 5 for b in batches)  # ceil(50 / 12)
    seen = [i for per_rank in zip(*batches) for batch in per_rank for i in batch]
    assert set(seen) == set(range(50))  # every image in the epoch; 10 padded repeats fill the last batch
    first_global_batch = [i for b in batches for i in b[0]]
    assert len(set(first_global_batch)) == 12


def test_order_depends_on_epoch_and_resumes_mid_epoch():
    sampler = EpochBatchSampler(40, batch_size=8, seed=0)
    epoch0, epoch1 = list(sampler), None
    sampler.set_position(1)
    epoch1 = list(sampler)
    assert epoch0 != epoch1
    sampler.set_position(1, start_batch=2)
    assert list(sampler) == epoch1[2:]


def test_model_range_and_flip():
    images = torch.tensor([[[[0, 255]]]], dtype=torch.uint8)  # (1, 1, 1, 2)
    assert to_model_range(images).tolist() == [[[[-1.0, 1.0]]]]
    uniform = torch.rand(64, generator=torch.Generator().manual_seed(0))
    flipped = random_hflip(to_model_range(images.repeat(64, 1, 1, 1)), uniform)
    assert torch.equal(flipped[:, 0, 0, 0] == 1.0, uniform < 0.5)  # flipped exactly where the number is below 1/2
    share = (flipped[:, 0, 0, 0] == 1.0).float().mean().item()
    assert 0.2 < share < 0.8
