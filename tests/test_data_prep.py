"""data_prep on tiny files written by tests/data_writers.py: formats, label spaces, splits, card."""

import datasets
import numpy as np
import pytest
from huggingface_hub import DatasetCard

from data_prep import prepare
from data_prep.classes import HODA_LETTER_CLASSES, PERSIAN_CLASSES, PERSIAN_DIGITS
from data_prep.hoda_cdb import decode_rle
from data_prep.normalize import fit_and_center
from tests.data_writers import (
    encode_rle,
    glyph_png,
    random_glyphs,
    write_hoda_cdb5,
    write_hoda_digits_cdb,
    write_image_folder,
    write_mnist_pair,
    zip_folder,
)


def _all_labels(dataset_dict):
    return np.concatenate([dataset_dict["train"]["label"], dataset_dict["test"]["label"]])


def _check_format(dataset_dict, image_size=28):
    assert set(dataset_dict) == {"train", "test"}
    features = dataset_dict["train"].features
    assert isinstance(features["image"], datasets.Image)
    assert isinstance(features["label"], datasets.ClassLabel)
    for split in ("train", "test"):
        image = dataset_dict[split][0]["image"]
        assert image.mode == "L" and image.size == (image_size, image_size)


def test_rle_roundtrip_with_long_and_zero_runs():
    rng = np.random.default_rng(0)
    images = [rng.random((7, 300)) < 0.5, np.zeros((3, 600), bool), np.ones((2, 5), bool)] + random_glyphs(5)
    for ink in images:
        runs = np.frombuffer(encode_rle(ink), dtype=np.uint8)
        np.testing.assert_array_equal(decode_rle(runs, ink.shape[1], ink.shape[0]), ink)


def test_rle_rejects_runs_that_overshoot_a_row():
    with pytest.raises(ValueError):
        decode_rle(np.array([2, 3, 3], dtype=np.uint8), 4, 2)  # row 1 sums to 5 with width 4


def test_fit_and_center_keeps_aspect_and_centres_mass():
    ink = np.zeros((40, 10), bool)
    ink[:, 2:9] = True  # a 40x7 bar
    image = np.asarray(fit_and_center(ink, 28)).astype(float)
    rows, cols = np.flatnonzero(image.any(axis=1)), np.flatnonzero(image.any(axis=0))
    assert rows[-1] - rows[0] + 1 == 20  # the long side fills the 20/28 box
    assert 2 <= cols[-1] - cols[0] + 1 <= 5  # aspect 7/40 kept (about 3.5 px)
    com = [(image.sum(axis=1 - a) * (np.arange(28) + 0.5)).sum() / image.sum() for a in (0, 1)]
    assert abs(com[0] - 14) <= 0.5 and abs(com[1] - 14) <= 0.5
    yy, xx = np.mgrid[:33, :33]
    disk = np.asarray(fit_and_center((yy - 16) ** 2 + (xx - 16) ** 2 <= 16**2, 28))
    assert np.unique(disk).size > 2  # antialiased: grey levels on the edge, not just 0/255


def test_mnist_single_pair_is_split_stratified_and_pixel_identical(tmp_path):
    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, size=(60, 28, 28), dtype=np.uint8)
    labels = np.repeat(np.arange(10), 6).astype(np.uint8)
    write_mnist_pair(tmp_path / "idx", images, labels, prefix="t10k", gz=True)
    ds = prepare("mnist", output_dir=tmp_path / "out", source=str(tmp_path / "idx"), test_fraction=0.5)
    _check_format(ds)
    assert ds["train"].features["label"].names == [str(d) for d in range(10)]
    assert len(ds["train"]) == len(ds["test"]) == 30
    assert np.bincount(ds["test"]["label"]).tolist() == [3] * 10  # stratified
    by_bytes = {images[i].tobytes(): labels[i] for i in range(len(images))}
    for split in ("train", "test"):
        for row in ds[split]:
            assert by_bytes[np.asarray(row["image"]).tobytes()] == row["label"]
    card = DatasetCard.load(tmp_path / "out" / "README.md")
    assert card.data.license == "cc-by-sa-3.0"
    assert "does not come split" in card.text


def test_mnist_both_pairs_keep_their_splits(tmp_path):
    rng = np.random.default_rng(2)
    train = rng.integers(0, 256, size=(12, 28, 28), dtype=np.uint8)
    test = rng.integers(0, 256, size=(5, 28, 28), dtype=np.uint8)
    write_mnist_pair(tmp_path / "idx", train, np.arange(12) % 10, prefix="train", gz=False)
    write_mnist_pair(tmp_path / "idx", test, np.arange(5), prefix="t10k", gz=True)
    ds = prepare("mnist", output_dir=tmp_path / "out", source=str(tmp_path / "idx"), image_size=32)
    _check_format(ds, image_size=32)
    assert (len(ds["train"]), len(ds["test"])) == (12, 5)
    assert ds["test"]["label"] == [0, 1, 2, 3, 4]


def test_both_cdb_layouts_merge_digits_first(tmp_path):
    digits = write_hoda_digits_cdb(tmp_path / "digits.cdb", random_glyphs(20, seed=3), [3, 7] * 10)
    letters = write_hoda_cdb5(tmp_path / "letters.cdb", random_glyphs(30, seed=4), [0, 35, 12] * 10)
    ds = prepare("persian", output_dir=tmp_path / "out", source=[str(letters), str(digits)], test_fraction=0.2)
    _check_format(ds)
    names = ds["train"].features["label"].names
    assert names == [PERSIAN_DIGITS[3], PERSIAN_DIGITS[7], HODA_LETTER_CLASSES[0], HODA_LETTER_CLASSES[12], "ـه"]
    assert np.bincount(_all_labels(ds)).tolist() == [10, 10, 10, 10, 10]
    assert np.bincount(ds["test"]["label"]).tolist() == [2] * 5
    image = np.asarray(ds["train"][0]["image"])
    assert image[:2].max() == 0 and image[-2:].max() == 0  # margins stay black, ink is white
    assert image.max() == 255


def test_cdb_pixels_survive_normalisation(tmp_path):
    ink = np.zeros((20, 20), bool)
    ink[2:18, 9:11] = True  # a vertical stroke, like the digit ۱
    path = write_hoda_digits_cdb(tmp_path / "one.cdb", [ink, ink], [1, 1])
    ds = prepare("persian", output_dir=tmp_path / "out", source=[str(path)], test_fraction=0.5)
    image = np.asarray(ds["train"][0]["image"])
    np.testing.assert_array_equal(image, np.asarray(fit_and_center(ink, 28)))
    assert image[:, :10].max() == 0 and image[:, 18:].max() == 0 and image[14, 14] == 255


@pytest.mark.parametrize("layout", ["per_sample", "classes", "csv"])
@pytest.mark.parametrize("zipped", [False, True])
def test_image_folder_layouts_are_detected(tmp_path, layout, zipped):
    labels = ["2", "10", "ب", "pe"] * 3  # numbers (persian table), a character, a Latin name
    items = [(glyph_png(ink), label) for ink, label in zip(random_glyphs(len(labels), seed=5), labels)]
    source = write_image_folder(tmp_path / "images", layout, items)
    if zipped:
        source = zip_folder(source, tmp_path / "images.zip")
    ds = prepare("persian", output_dir=tmp_path / "out", source=[str(source)], test_fraction=0.34)
    _check_format(ds)
    assert ds["train"].features["label"].names == ["۲", "ا", "ب", "پ"]  # 10 = first letter, after the digits
    assert np.bincount(_all_labels(ds)).tolist() == [3, 3, 3, 3]
    card = DatasetCard.load(tmp_path / "out" / "README.md")
    assert f"layout: {layout}" in card.text


def test_forced_layout_and_letters_numeric_table(tmp_path):
    # One image per folder, folders named like classes: auto would read "per_sample"; force "classes".
    items = [(glyph_png(ink), label) for ink, label in zip(random_glyphs(4, seed=6), ["0", "1", "34", "35"])]
    folder = write_image_folder(tmp_path / "images", "classes", items)
    ds = prepare(
        "persian", output_dir=tmp_path / "out", source=[str(folder)], layout="classes", numeric_labels="letters"
    )
    assert ds["train"].features["label"].names == ["ا", "ب", "هـ", "ـه"]


def test_white_on_black_and_dark_on_light_images_agree(tmp_path):
    ink = random_glyphs(1, seed=7)[0]
    items = [(glyph_png(ink, dark_on_light=True), "۵"), (glyph_png(ink, dark_on_light=False), "۵")]
    folder = write_image_folder(tmp_path / "images", "per_sample", items)
    ds = prepare("persian", output_dir=tmp_path / "out", source=[str(folder)], test_fraction=0.5)
    np.testing.assert_array_equal(np.asarray(ds["train"][0]["image"]), np.asarray(ds["test"][0]["image"]))


def test_max_samples_takes_a_seeded_subset(tmp_path):
    path = write_hoda_digits_cdb(tmp_path / "d.cdb", random_glyphs(40, seed=8), list(range(10)) * 4)
    kwargs = dict(source=[str(path)], max_samples=12, seed=3)
    first = prepare("persian", output_dir=tmp_path / "a", **kwargs)
    second = prepare("persian", output_dir=tmp_path / "b", **kwargs)
    assert len(first["train"]) + len(first["test"]) == 12
    assert first["train"]["label"] == second["train"]["label"]


def test_glyphs_are_deterministic_per_seed(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    a = prepare("glyphs", output_dir=tmp_path / "a", per_class=3, seed=0, image_size=32)
    b = prepare("glyphs", output_dir=tmp_path / "b", per_class=3, seed=0, image_size=32)
    c = prepare("glyphs", output_dir=tmp_path / "c", per_class=3, seed=1, image_size=32)
    _check_format(a, image_size=32)
    names = a["train"].features["label"].names
    assert names == list(PERSIAN_CLASSES[:42])
    assert np.bincount(_all_labels(a)).tolist() == [3] * 42
    pixels = [np.stack([np.asarray(img) for img in d["train"]["image"]]) for d in (a, b, c)]
    np.testing.assert_array_equal(pixels[0], pixels[1])
    assert a["train"]["label"] == c["train"]["label"] and not np.array_equal(pixels[0], pixels[2])
    assert pixels[0].max() == 255 and pixels[0][:, 0].mean() < 8  # white glyphs, a mostly black margin


def test_glyph_extra_forms_give_the_hoda_label_space(tmp_path):
    ds = prepare("glyphs", output_dir=tmp_path / "g", per_class=2, extra_forms=True)
    assert ds["train"].features["label"].names == list(PERSIAN_CLASSES)


def test_card_metadata_and_command(tmp_path):
    from data_prep.cli import main

    out = tmp_path / "g"
    assert main(["glyphs", "--output_dir", str(out), "--per_class", "2", "--seed", "5"]) == 0
    card = DatasetCard.load(out / "README.md")
    assert set(card.data.task_categories) == {"image-classification", "unconditional-image-generation"}
    assert card.data.size_categories == ["n<1K"] and card.data.license == "other"
    assert "python -m data_prep glyphs --output_dir" in card.text and "--seed 5" in card.text
    assert "| 10 | ا |" in card.text  # the class table
    assert datasets.load_from_disk(str(out))["train"].features["label"].names[10] == "ا"


def test_overwrite_replaces_an_existing_dataset(tmp_path):
    out = tmp_path / "g"
    prepare("glyphs", output_dir=out, per_class=2)
    ds = prepare("glyphs", output_dir=out, per_class=3, overwrite=True)
    assert len(ds["train"]) + len(ds["test"]) == 3 * 42
    assert sorted(p.name for p in tmp_path.iterdir()) == ["g"]
