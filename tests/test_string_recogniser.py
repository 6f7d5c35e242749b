"""The CRNN + CTC string recogniser: it learns a tiny seeded set of composed strings, which a broken CTC (wrong
blank, lengths or decoding) would not, and its scores count what they should."""

import numpy as np
import PIL.Image
import PIL.ImageDraw

from evaluation.string_recogniser import (
    RecogniserConfig,
    edit_distance,
    greedy_decode,
    read,
    string_scores,
    train_recogniser,
)
from synthesis.compose import Jitter, compose


def font_digits() -> dict[str, np.ndarray]:
    """ASCII digits drawn with PIL's built-in font, 28 x 28, white on black: ten distinct shapes."""
    glyphs = {}
    for digit in "0123456789":
        image = PIL.Image.new("L", (14, 14), 0)
        PIL.ImageDraw.Draw(image).text((3, 1), digit, fill=255)
        glyphs[digit] = np.asarray(image.resize((28, 28), PIL.Image.NEAREST))
    return glyphs


def composed(count: int, seed: int) -> tuple[list[np.ndarray], list[str]]:
    glyphs, rng = font_digits(), np.random.default_rng(seed)
    images, texts = [], []
    for _ in range(count):
        text = "".join(rng.choice(list("0123456789"), size=int(rng.integers(2, 5))))
        image, _ = compose([glyphs[c] for c in text], rng, Jitter(size=0.05, slant=0.1, gap=(2, 4)))
        images.append(image)
        texts.append(text)
    return images, texts


def test_the_recogniser_learns_a_tiny_set_of_strings():
    train_images, train_texts = composed(320, seed=0)
    test_images, test_texts = composed(100, seed=1)
    model, _ = train_recogniser(train_images, train_texts, RecogniserConfig(epochs=12, seed=0))
    scores = string_scores(read(model, test_images), test_texts)
    assert scores["character_error_rate"] < 0.1 and scores["string_accuracy"] > 0.7, scores


def test_decoding_and_scores():
    import torch

    # columns: 1 1 blank 1 2 2 -> "0 0 1" (a blank separates the repeated 0)
    best = torch.tensor([1, 1, 0, 1, 2, 2])
    scores = torch.full((6, 1, 13), -10.0)
    scores[torch.arange(6), 0, best] = 0.0
    assert greedy_decode(scores, torch.tensor([6])) == ["001"]
    assert greedy_decode(scores, torch.tensor([2])) == ["0"]  # only the first two columns are the image's
    assert edit_distance("0912", "0921") == 2 and edit_distance("", "123") == 3 and edit_distance("12", "12") == 0
    assert string_scores(["12", "34"], ["12", "35"]) == {"string_accuracy": 0.5, "character_error_rate": 0.25}
