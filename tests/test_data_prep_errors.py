"""Bad input: one clear line naming the file, exit status 2, and nothing left behind."""

import logging
import zipfile

import numpy as np
import pytest

from data_prep.cli import main
from tests.data_writers import (
    glyph_png,
    random_glyphs,
    write_hoda_cdb5,
    write_hoda_digits_cdb,
    write_idx,
    write_image_folder,
    write_mnist_pair,
    zip_folder,
)


def _fails(tmp_path, capsys, argv: list[str], *expected: str) -> str:
    """Run the CLI into `tmp_path/out`; check status 2, one error line containing `expected`, no output left."""
    before = set(tmp_path.iterdir())
    status = main([*argv, "--output_dir", str(tmp_path / "out")])
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 2
    assert err and err[-1].startswith("error: ")
    for text in expected:
        assert text in err[-1], err[-1]
    assert set(tmp_path.iterdir()) == before  # no output directory, no temporary directory
    return err[-1]


def _folder(tmp_path, n=6, layout="classes", labels=("۱", "۲")):
    items = [(glyph_png(ink), labels[i % len(labels)]) for i, ink in enumerate(random_glyphs(n, seed=9))]
    return write_image_folder(tmp_path / "images", layout, items)


def test_missing_path(tmp_path, capsys):
    _fails(tmp_path, capsys, ["persian", "--source", str(tmp_path / "nope.cdb")], "nope.cdb", "no such file")
    _fails(tmp_path, capsys, ["mnist", "--source", str(tmp_path / "no_dir")], "no_dir", "no such directory")


def test_unknown_format(tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("hello")
    _fails(tmp_path, capsys, ["persian", "--source", str(tmp_path / "notes.txt")], "notes.txt", "unknown format")
    (tmp_path / "fake.cdb").write_bytes(b"CDB 9.9" + bytes(2000))
    _fails(tmp_path, capsys, ["persian", "--source", str(tmp_path / "fake.cdb")], "fake.cdb", "not a Hoda .cdb")
    (tmp_path / "fake.zip").write_bytes(b"not a zip at all")
    _fails(tmp_path, capsys, ["persian", "--source", str(tmp_path / "fake.zip")], "fake.zip", "not a readable zip")


@pytest.mark.parametrize("writer", [write_hoda_digits_cdb, write_hoda_cdb5])
@pytest.mark.parametrize("cut", [1, 7, 200])
def test_truncated_cdb(tmp_path, capsys, writer, cut):
    path = writer(tmp_path / "set.cdb", random_glyphs(6, seed=10), [1, 2] * 3)
    path.write_bytes(path.read_bytes()[:-cut])
    _fails(tmp_path, capsys, ["persian", "--source", str(path)], "set.cdb", "truncated or corrupt")


@pytest.mark.parametrize("writer", [write_hoda_digits_cdb, write_hoda_cdb5])
def test_trailing_bytes_and_bad_runs_in_cdb(tmp_path, capsys, writer):
    path = writer(tmp_path / "set.cdb", random_glyphs(6, seed=11), [1, 2] * 3)
    good = path.read_bytes()
    path.write_bytes(good + b"\x00\x01")  # the file must end exactly after the last record
    _fails(tmp_path, capsys, ["persian", "--source", str(path)], "set.cdb", "truncated or corrupt")
    corrupt = bytearray(good)
    corrupt[-3:] = b"\xff\xff\xff"  # runs of the last image overshoot its size
    path.write_bytes(bytes(corrupt))
    _fails(tmp_path, capsys, ["persian", "--source", str(path)], "set.cdb", "record 5")


def test_cdb_label_outside_the_table(tmp_path, capsys):
    path = write_hoda_digits_cdb(tmp_path / "digits.cdb", random_glyphs(2, seed=12), [3, 12])
    _fails(tmp_path, capsys, ["persian", "--source", str(path)], "digits.cdb", "label 12 is not a known class")


def test_idx_counts_differ(tmp_path, capsys):
    images = np.zeros((5, 28, 28), np.uint8)
    write_mnist_pair(tmp_path / "idx", images, np.arange(4), prefix="t10k")
    _fails(
        tmp_path,
        capsys,
        ["mnist", "--source", str(tmp_path / "idx")],
        "t10k-images-idx3-ubyte.gz",
        "5 images",
        "4 labels",
    )


def test_idx_truncated_or_missing_labels(tmp_path, capsys):
    (tmp_path / "idx").mkdir()
    images = write_idx(tmp_path / "idx" / "train-images-idx3-ubyte", np.zeros((3, 28, 28)))
    _fails(tmp_path, capsys, ["mnist", "--source", str(tmp_path / "idx")], "train-images-idx3-ubyte", "labels")
    write_idx(tmp_path / "idx" / "train-labels-idx1-ubyte", np.zeros(3))
    images.write_bytes(images.read_bytes()[:-10])
    _fails(tmp_path, capsys, ["mnist", "--source", str(tmp_path / "idx")], "train-images-idx3-ubyte", "truncated")


def test_unreadable_image_in_folder_and_zip(tmp_path, capsys, caplog):
    folder = _folder(tmp_path)
    (folder / "۱" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    _fails(tmp_path, capsys, ["persian", "--source", str(folder)], "broken.png", "--skip_bad_images")
    archive = zip_folder(folder, tmp_path / "images.zip")
    _fails(tmp_path, capsys, ["persian", "--source", str(archive)], "images.zip", "broken.png")

    with caplog.at_level(logging.WARNING):
        status = main(["persian", "--source", str(archive), "--skip_bad_images", "--output_dir", str(tmp_path / "out")])
    assert status == 0
    assert "skipped 1 unreadable image" in caplog.text
    assert "1 unreadable image(s) were skipped" in (tmp_path / "out" / "README.md").read_text(encoding="utf-8")


def test_empty_folder_and_zip(tmp_path, capsys):
    (tmp_path / "empty" / "۱").mkdir(parents=True)
    (tmp_path / "empty" / "۱" / "notes.txt").write_text("no images here")
    _fails(tmp_path, capsys, ["persian", "--source", str(tmp_path / "empty")], "empty", "no images found")
    with zipfile.ZipFile(tmp_path / "empty.zip", "w"):
        pass
    _fails(tmp_path, capsys, ["persian", "--source", str(tmp_path / "empty.zip")], "empty.zip", "no images found")


@pytest.mark.parametrize("layout", ["classes", "csv"])
def test_label_that_is_not_a_known_class(tmp_path, capsys, layout):
    folder = _folder(tmp_path, layout=layout, labels=("۱", "cat"))
    message = _fails(tmp_path, capsys, ["persian", "--source", str(folder), "--layout", layout], "'cat'")
    assert "not a known class" in message
    assert "images" in message


def test_number_outside_the_numeric_table(tmp_path, capsys):
    folder = _folder(tmp_path, layout="per_sample", labels=("3", "46"))
    _fails(
        tmp_path, capsys, ["persian", "--source", str(folder), "--layout", "per_sample"], "'46'", "not a known class"
    )


def test_existing_output_dir_without_overwrite(tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    path = write_hoda_digits_cdb(tmp_path / "d.cdb", random_glyphs(4, seed=13), [1, 2] * 2)
    status = main(["persian", "--source", str(path), "--output_dir", str(out)])
    assert status == 2 and "--overwrite" in capsys.readouterr().err
    # --overwrite never deletes a folder that is not a dataset.
    status = main(["persian", "--source", str(path), "--output_dir", str(out), "--overwrite"])
    assert status == 2 and "not a dataset saved by data_prep" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.cdb", "out"] and (out / "keep.txt").exists()


@pytest.mark.parametrize(
    "flags, text",
    [
        (["--test_fraction", "1.5"], "--test_fraction"),
        (["--image_size", "4"], "--image_size"),
        (["--max_samples", "1"], "--max_samples"),
        (["--hub_private_repo"], "--hub_private_repo only applies with --push_to_hub"),
        (["--push_to_hub"], "--push_to_hub needs --hub_model_id"),
    ],
)
def test_bad_arguments(tmp_path, capsys, flags, text):
    _fails(tmp_path, capsys, ["glyphs", "--per_class", "1", *flags], text)


def test_unreachable_hub_id(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    _fails(tmp_path, capsys, ["mnist", "--source", "nobody/no-such-mnist"], "nobody/no-such-mnist", "IDX files")
