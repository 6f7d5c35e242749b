"""Synthetic sets drawn from a class-conditional model: handwritten digit strings, or isolated characters.

Each shard is seeded by (seed, shard index), its texts by a numpy generator of that seed and its images by
`pipelines.sampling.draw` from seeds that no other shard uses, so a re-run with the same settings gives the same
set, shard by shard. Characters are drawn as one `draw` call would draw them (character i from seed + i), so the
set does not depend on the shard size.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import datasets
import numpy as np
import PIL.Image
import torch

from pipelines.sampling import draw
from synthesis.compose import (
    PERSIAN_DIGITS,
    RELATIVE_HEIGHT,
    SEPARATORS,
    TO_ASCII,
    Jitter,
    compose,
    random_text,
    separator_glyph,
)

STRING_FEATURES = datasets.Features({
    "image": datasets.Image(),
    "text": datasets.Value("string"),
    "text_ascii": datasets.Value("string"),
    "boxes": datasets.Sequence(datasets.Sequence(datasets.Value("int32"), length=4)),
})
# Seeds of shard i's images start at seed + i * SEED_STRIDE (a shard of 1,000 strings draws about 10,000 images).
SEED_STRIDE = 10_000_000


# How the model is sampled: the keyword arguments of `pipelines.sampling.draw` (`SamplingArguments.draw_options()`
# and a batch size); "seed" is the set's first seed.
Sampling = dict


def _draw(pipeline, labels: Sequence[int | str], sampling: Sampling, first_seed: int) -> np.ndarray:
    """Images of `labels`, (N, H, W) uint8 white on black, image i from seed first_seed + i."""
    options = {**sampling, "seed": first_seed}
    drawing = draw(pipeline, len(labels), class_labels=list(labels), **options)
    return (drawing.grayscale[:, 0] * 255).round().to(torch.uint8).numpy()


# Where a string's digits come from: (the digits, in order; the shard index) -> (N, H, W) uint8 images.
GlyphSource = Callable[[list[str], int], np.ndarray]


def model_glyphs(pipeline, sampling: Sampling) -> GlyphSource:
    """Digits drawn by a class-conditional model whose class names include the Persian digits."""
    return lambda digits, shard: _draw(pipeline, digits, sampling, sampling.get("seed", 0) + shard * SEED_STRIDE)


def real_glyphs(images: np.ndarray, labels: np.ndarray, class_names: Sequence[str], seed: int) -> GlyphSource:
    """Digits picked at random (seeded by the shard) from real images (N, H, W) uint8 with class indices (N,):
    the same composition from real handwriting, to compare with."""
    members = {digit: np.flatnonzero(labels == class_names.index(digit)) for digit in PERSIAN_DIGITS}

    def pick(digits: list[str], shard: int) -> np.ndarray:
        rng = np.random.default_rng([seed, shard, 1])
        return images[[int(rng.choice(members[digit])) for digit in digits]]

    return pick


def missing_digits(class_names: Sequence[str] | None) -> list[str]:
    """The Persian digits a model cannot draw (all of them for an unconditional one)."""
    return [digit for digit in PERSIAN_DIGITS if class_names is None or digit not in class_names]


def string_shard(glyphs: GlyphSource, formats: Sequence[str], seed: int, shard: int, size: int,
                 jitter: Jitter = Jitter()) -> datasets.Dataset:
    """`size` handwritten strings of `formats`: image, text, text_ascii and one box per character of text."""
    rng = np.random.default_rng([seed, shard])
    texts = [random_text(rng, formats) for _ in range(size)]
    digits = iter(glyphs([character for text in texts for character in text if character in PERSIAN_DIGITS], shard))
    images, boxes = [], []
    for text in texts:
        pieces = [separator_glyph(c, rng) if c in SEPARATORS else next(digits) for c in text]
        image, text_boxes = compose(pieces, rng, jitter, [RELATIVE_HEIGHT.get(c, 1.0) for c in text])
        images.append(PIL.Image.fromarray(image, mode="L"))
        boxes.append(text_boxes)
    ascii_texts = [text.translate(TO_ASCII) for text in texts]
    return datasets.Dataset.from_dict({"image": images, "text": texts, "text_ascii": ascii_texts, "boxes": boxes},
                                      features=STRING_FEATURES)


def character_shard(pipeline, sampling: Sampling, shard: int, size: int, shard_size: int) -> datasets.Dataset:
    """`size` isolated characters, example i of the set of class i mod K (equal numbers per class) and from seed
    seed + i, as `pipelines.sampling.draw` gives them in one call (and `evaluation.usefulness` measures them):
    image, label."""
    names = pipeline.class_names
    first = shard * shard_size
    labels = [(first + i) % len(names) for i in range(size)]
    images = _draw(pipeline, labels, sampling, sampling.get("seed", 0) + first)
    features = datasets.Features({"image": datasets.Image(), "label": datasets.ClassLabel(names=names)})
    return datasets.Dataset.from_dict({"image": [PIL.Image.fromarray(image, mode="L") for image in images],
                                       "label": labels}, features=features)
