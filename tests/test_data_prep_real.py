"""data_prep on the real files in ../shared/data (skipped when absent)."""

import gzip

import numpy as np
import pytest

from data_prep import prepare
from data_prep.classes import PERSIAN_CLASSES
from data_prep.hoda_cdb import decode_rle, index_cdb

HODA_DIGITS = "hoda/Test 20000.cdb"
HODA_LETTERS = "hoda_letters/Persian-Character-DB-Test.cdb"
MNIST_TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


def _labels(dataset_dict):
    return np.concatenate([dataset_dict["train"]["label"], dataset_dict["test"]["label"]])


def test_real_cdb_files_parse_exactly_and_every_record_decodes(shared_data):
    for relative, layout, total, counts in [
        (HODA_DIGITS, "digits", 20_000, [2000] * 10),
        (HODA_LETTERS, "characters", 17_706, None),
    ]:
        data = (shared_data / relative).read_bytes()
        index = index_cdb(shared_data / relative, data)
        assert index.layout == layout and len(index.labels) == total
        if counts:
            assert np.bincount(index.labels).tolist() == counts
        buffer = np.frombuffer(data, dtype=np.uint8)
        for start, n, w, h in zip(index.offsets, index.lengths, index.widths, index.heights):
            decode_rle(buffer[start : start + n], int(w), int(h))  # raises unless rows tile exactly
    letters = index_cdb(shared_data / HODA_LETTERS, (shared_data / HODA_LETTERS).read_bytes())
    assert np.bincount(letters.labels)[[0, 33, 35]].tolist() == [520, 161, 114]  # classes.csv test counts


def test_real_mnist_test_pair(shared_data, tmp_path):
    ds = prepare("mnist", output_dir=tmp_path / "m", source=str(shared_data / "mnist"))
    assert (len(ds["train"]), len(ds["test"])) == (9000, 1000)
    assert np.bincount(_labels(ds)).tolist() == MNIST_TEST_COUNTS
    raw = gzip.decompress((shared_data / "mnist" / "t10k-images-idx3-ubyte.gz").read_bytes())
    originals = {image.tobytes() for image in np.frombuffer(raw, np.uint8, offset=16).reshape(-1, 28, 28)}
    for row in ds["test"]:
        assert row["image"].mode == "L" and np.asarray(row["image"]).tobytes() in originals


def test_real_persian_subset(shared_data, tmp_path):
    sources = [str(shared_data / HODA_DIGITS), str(shared_data / HODA_LETTERS)]
    ds = prepare("persian", output_dir=tmp_path / "p", source=sources, max_samples=1500, seed=0)
    assert ds["train"].features["label"].names == list(PERSIAN_CLASSES)
    assert len(ds["train"]) + len(ds["test"]) == 1500
    image = np.asarray(ds["train"][0]["image"])
    assert image.shape == (28, 28) and image[0].max() == 0 and image.max() > 200


@pytest.mark.slow
def test_real_persian_full(shared_data, tmp_path):
    sources = [str(shared_data / HODA_DIGITS), str(shared_data / HODA_LETTERS)]
    ds = prepare("persian", output_dir=tmp_path / "p", source=sources)
    labels = _labels(ds)
    assert len(labels) == 37_706
    assert np.bincount(labels, minlength=46)[:10].tolist() == [2000] * 10
    assert len(ds["train"].features["label"].names) == 46
