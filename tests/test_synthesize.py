"""Synthetic handwritten strings and characters (`python -m pipelines.synthesize`): the layout is deterministic
for a seed and its boxes are where the ink is; the set loads with `load_from_disk` and from the loopback Hub,
resumes after a stop and is the same for the same settings."""

import json

import datasets
import numpy as np
import pytest
import torch
from diffusers import DDPMScheduler
from pipeline_helpers import CLASS_NAMES, tiny_unet

from pipelines import save_pipeline
from pipelines.sampling import draw, load_pipeline
from pipelines.synthesize import GUIDANCE_INTERVAL
from pipelines.synthesize import main as synthesize
from synthesis import generated
from synthesis.compose import FORMATS, INK_THRESHOLD, PERSIAN_DIGITS, TO_ASCII, Jitter, compose, separator_glyph
from tests.hub_client import run_client

DIGITS = list(PERSIAN_DIGITS)


def bar(width: int, height: int) -> np.ndarray:
    """A 28 x 28 glyph: a solid bar of ink, centred."""
    glyph = np.zeros((28, 28), dtype=np.uint8)
    top, left = (28 - height) // 2, (28 - width) // 2
    glyph[top: top + height, left: left + width] = 255
    return glyph


@pytest.fixture(scope="module")
def digit_model(tmp_path_factory) -> str:
    folder = tmp_path_factory.mktemp("digits") / "model"
    save_pipeline(folder, tiny_unet(len(DIGITS) + 1), DDPMScheduler(num_train_timesteps=50), class_names=DIGITS)
    return str(folder)


def test_composition_is_deterministic_and_each_box_is_its_glyphs_ink():
    glyphs = [bar(4, 20), separator_glyph("/", np.random.default_rng(0)), bar(12, 16), bar(8, 8)]
    one = compose(glyphs, np.random.default_rng(7))
    two = compose(glyphs, np.random.default_rng(7))
    assert np.array_equal(one[0], two[0]) and one[1] == two[1]
    assert not np.array_equal(one[0], compose(glyphs, np.random.default_rng(8))[0])

    for seed in range(20):
        image, boxes = compose(glyphs, np.random.default_rng(seed), Jitter(gap=(2, 5)))
        assert image.shape[0] == Jitter().height and len(boxes) == len(glyphs)
        assert [box[0] for box in boxes] == sorted(box[0] for box in boxes)  # left to right
        covered = np.zeros_like(image, dtype=bool)
        for x0, y0, x1, y1 in boxes:
            assert 0 <= x0 < x1 <= image.shape[1] and 0 <= y0 < y1 <= image.shape[0]
            ink = image[y0:y1, x0:x1] > INK_THRESHOLD
            # tight: ink on every edge of the box
            assert ink[0].any() and ink[-1].any() and ink[:, 0].any() and ink[:, -1].any()
            covered[y0:y1, x0:x1] = True
        assert not (image[~covered] > INK_THRESHOLD).any()  # no ink outside the boxes
        # the bars keep their proportions: the wide one's box is the widest of the three
        widths = [x1 - x0 for x0, _, x1, _ in boxes]
        assert widths[2] > widths[0] and widths[2] > widths[3]


def test_every_format_is_digits_and_separators():
    rng = np.random.default_rng(0)
    for name, make in FORMATS.items():
        for _ in range(20):
            text = make(rng)
            assert set(text) <= set(PERSIAN_DIGITS + "/-"), (name, text)
    assert "۰۹۱۲".translate(TO_ASCII) == "0912"


def test_strings_load_from_disk_with_a_box_per_character_and_repeat_for_a_seed(digit_model, tmp_path):
    args = ["--kind", "strings", "--count", "25", "--shard_size", "10", "--num_inference_steps", "2"]
    synthesize([digit_model, "--output_dir", str(tmp_path / "a"), *args])
    train = datasets.load_from_disk(str(tmp_path / "a"))["train"]
    assert train.num_rows == 25 and set(train.column_names) == {"image", "text", "text_ascii", "boxes"}
    for row in train:
        assert len(row["boxes"]) == len(row["text"]) and row["text_ascii"] == row["text"].translate(TO_ASCII)
        assert row["image"].mode == "L" and row["image"].height == Jitter().height
        assert all(box[2] <= row["image"].width for box in row["boxes"])
    card = (tmp_path / "a" / "README.md").read_text()
    assert "synthetic" in card.lower() and digit_model in card
    synthesize([digit_model, "--output_dir", str(tmp_path / "b"), *args])
    again = datasets.load_from_disk(str(tmp_path / "b"))["train"]
    assert list(again["text"]) == list(train["text"]) and list(again["boxes"]) == list(train["boxes"])
    assert all(np.array_equal(np.asarray(a), np.asarray(b)) for a, b in zip(again["image"], train["image"]))


def test_a_stopped_run_keeps_its_shards_and_the_rerun_gives_the_same_set(digit_model, tmp_path, monkeypatch):
    args = ["--kind", "strings", "--count", "30", "--shard_size", "10", "--num_inference_steps", "2"]
    synthesize([digit_model, "--output_dir", str(tmp_path / "whole"), *args])
    made = generated.string_shard

    def stop_at_the_third(glyphs, formats, seed, shard, size, **kwargs):
        if shard == 2:
            raise KeyboardInterrupt
        return made(glyphs, formats, seed, shard, size, **kwargs)

    monkeypatch.setattr("pipelines.synthesize.string_shard", stop_at_the_third)
    with pytest.raises(KeyboardInterrupt):
        synthesize([digit_model, "--output_dir", str(tmp_path / "resumed"), *args])
    assert not (tmp_path / "resumed").exists()  # nothing that looks finished
    shards = tmp_path / ".resumed.shards"
    kept = {path.name: path.stat().st_mtime_ns for path in shards.glob("shard-*")}
    assert sorted(kept) == ["shard-00000", "shard-00001"]
    monkeypatch.setattr("pipelines.synthesize.string_shard", made)
    synthesize([digit_model, "--output_dir", str(tmp_path / "resumed"), *args])
    whole = datasets.load_from_disk(str(tmp_path / "whole"))["train"]
    resumed = datasets.load_from_disk(str(tmp_path / "resumed"))["train"]
    assert list(resumed["text"]) == list(whole["text"]) and list(resumed["boxes"]) == list(whole["boxes"])
    assert not shards.exists()


def test_characters_come_in_equal_numbers_per_class(digit_model, tmp_path):
    synthesize([digit_model, "--kind", "characters", "--count", "30", "--shard_size", "7", "--output_dir",
                str(tmp_path / "c"), "--num_inference_steps", "2"])
    train = datasets.load_from_disk(str(tmp_path / "c"))["train"]
    assert train.features["label"].names == DIGITS
    assert np.bincount(train["label"], minlength=10).tolist() == [3] * 10


def test_characters_are_guided_in_the_interval_by_default(digit_model, tmp_path):
    pipeline = load_pipeline(digit_model, "cpu")
    options = {"num_inference_steps": 3, "guidance_scale": 2.0, "seed": 4}
    interval = draw(pipeline, 10, guidance_interval=tuple(GUIDANCE_INTERVAL), **options).grayscale
    everywhere = draw(pipeline, 10, **options).grayscale
    assert not torch.equal(interval, everywhere)  # the interval leaves some of these steps unguided
    for name, flags, expected in [("default", [], interval), ("everywhere", ["--guidance_interval", "0", "1e9"],
                                                                everywhere)]:
        synthesize([digit_model, "--kind", "characters", "--count", "10", "--output_dir", str(tmp_path / name),
                    "--num_inference_steps", "3", "--seed", "4", *flags])
        images = datasets.load_from_disk(str(tmp_path / name))["train"]["image"]
        pixels = torch.stack([torch.from_numpy(np.asarray(image)) for image in images])
        assert torch.equal(pixels, (expected[:, 0] * 255).round().byte()), name


@pytest.mark.parametrize("kind, message", [("strings", "cannot draw the Persian digits ۱ ۲"),
                                           ("characters", None)])
def test_models_that_cannot_make_the_set_are_one_line_errors(tmp_path, capsys, kind, message):
    folder = tmp_path / "model"
    save_pipeline(folder, tiny_unet(len(CLASS_NAMES) + 1), DDPMScheduler(num_train_timesteps=50),
                  class_names=CLASS_NAMES)
    argv = [str(folder), "--kind", kind, "--count", "3", "--output_dir", str(tmp_path / "out"),
            "--num_inference_steps", "2"]
    if message is None:  # characters of any class-conditional model are fine
        synthesize(argv)
        assert datasets.load_from_disk(str(tmp_path / "out"))["train"].num_rows == 3
        return
    with pytest.raises(SystemExit) as stop:
        synthesize(argv)
    err = capsys.readouterr().err.strip()
    assert stop.value.code == 2 and message in err and len(err.splitlines()) == 1
    assert not (tmp_path / "out").exists()


ROUND_TRIP = """
    import json, sys
    import datasets
    from pipelines.synthesize import main
    model, output_dir, repo_id = sys.argv[1:]
    main([model, "--count", "6", "--output_dir", output_dir, "--num_inference_steps", "2", "--push_to_hub",
          "--hub_model_id", repo_id])
    local, loaded = datasets.load_from_disk(output_dir), datasets.load_dataset(repo_id)
    print(json.dumps({"local": list(local["train"]["text"]), "loaded": list(loaded["train"]["text"]),
                      "boxes": list(loaded["train"]["boxes"]) == list(local["train"]["boxes"])}))
"""


def test_the_set_loads_from_the_loopback_hub(hub, digit_model, tmp_path):
    result = run_client(hub, ROUND_TRIP, digit_model, str(tmp_path / "strings"), "tester/strings", home=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    loaded = json.loads(result.stdout.strip().splitlines()[-1])
    assert loaded["local"] == loaded["loaded"] and len(loaded["local"]) == 6 and loaded["boxes"] is True
    card = hub.files("tester/strings", repo_type="dataset")["README.md"].decode()
    assert "synthetic" in card.lower()
