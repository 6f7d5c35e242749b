"""The CRNN + CTC string recogniser: decoding and scores, and that it learns a tiny seeded set of composed
strings in seconds (a broken CTC, with wrong lengths, targets or blank, reads blanks or garbage and fails)."""

import numpy as np
import PIL.Image
import PIL.ImageDraw
import PIL.ImageFont
import torch

from evaluation.string_recogniser import (
    RecogniserConfig,
    edit_distance,
    greedy_decode,
    read,
    string_scores,
    train_recogniser,
)
from synthesis.compose import Jitter, compose

FONT = PIL.ImageFont.load_default(size=24)  # Pillow's own font: ASCII digits, no files needed


def printed_digit(digit: str, rng: np.random.Generator) -> np.ndarray:
    """A 28 x 28 white-on-black digit, shifted by up to 2 px."""
    image = PIL.Image.new("L", (28, 28))
    centre = (14 + int(rng.integers(-2, 3)), 14 + int(rng.integers(-2, 3)))
    PIL.ImageDraw.Draw(image).text(centre, digit, fill=255, font=FONT, anchor="mm")
    return np.asarray(image)


def composed_strings(count: int, seed: int) -> tuple[list[np.ndarray], list[str]]:
    """`count` lines of 3 to 5 digits, laid out with the synthesis jitter (scale, slant, baseline, gaps)."""
    rng = np.random.default_rng(seed)
    images, texts = [], []
    for _ in range(count):
        text = "".join(rng.choice(list("0123456789"), size=int(rng.integers(3, 6))))
        images.append(compose([printed_digit(c, rng) for c in text], rng, Jitter())[0])
        texts.append(text)
    return images, texts


def test_decoding_and_scores():
    # columns: 1 1 blank 1 2 2 -> "0 0 1" (a blank separates the repeated 0)
    best = torch.tensor([1, 1, 0, 1, 2, 2])
    scores = torch.full((6, 1, 13), -10.0)
    scores[torch.arange(6), 0, best] = 0.0
    assert greedy_decode(scores, torch.tensor([6])) == ["001"]
    assert greedy_decode(scores, torch.tensor([2])) == ["0"]  # only the first two columns are the image's
    assert edit_distance("0912", "0921") == 2 and edit_distance("", "123") == 3 and edit_distance("12", "12") == 0
    assert string_scores(["12", "34"], ["12", "35"]) == {"string_accuracy": 0.5, "character_error_rate": 0.25}


def test_the_recogniser_learns_a_tiny_seeded_set():
    # 640 steps of a narrow CRNN: measured, 320 steps still read blanks (CTC's early plateau), 640 read every test
    # string right
    train, test = composed_strings(256, seed=0), composed_strings(100, seed=1)  # test: strings it never saw
    config = RecogniserConfig(epochs=40, batch_size=16, learning_rate=3e-3, seed=0, channels=(8, 16, 24, 32),
                              hidden=32)
    model, _ = train_recogniser(*train, config)
    scores = string_scores(read(model, test[0]), test[1])
    assert scores["character_error_rate"] < 0.10 and scores["string_accuracy"] > 0.6, scores
