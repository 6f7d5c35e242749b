"""Handwritten strings from isolated characters: placed left to right with the jitter of real handwriting.

No library composes glyph images into handwriting-like lines with per-character boxes (OCR generators such as
TextRecognitionDataGenerator render fonts), so this is written here: each glyph is cropped to its ink, scaled,
slanted with an affine shear (PIL), put on a common baseline with a small vertical wobble, and spaced by a
random gap; the ink of neighbours is merged with a maximum. Images are white ink on black, like MNIST and the
prepared Hoda sets.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import PIL.Image
import PIL.ImageDraw

PERSIAN_DIGITS = "۰۱۲۳۴۵۶۷۸۹"
ASCII_DIGITS = "0123456789"
TO_ASCII = str.maketrans(PERSIAN_DIGITS, ASCII_DIGITS)
# Separators the formats need, drawn as strokes (the models know digits and letters, not punctuation).
SEPARATORS = "/-"
# Pixel values above this are ink (the images are 0..255).
INK_THRESHOLD = 40
# Heights relative to the other digits, where handwriting differs from the size-normalised training images
# (Hoda, like MNIST, scales every character to fill its box): the Persian zero is a small dot at mid-height.
RELATIVE_HEIGHT = {"۰": 0.35}


def _digits(rng: np.random.Generator, count: int, leading_zero: bool = True) -> str:
    first = rng.integers(0 if leading_zero else 1, 10)
    return "".join(PERSIAN_DIGITS[d] for d in [first, *rng.integers(0, 10, count - 1)])


def _date(rng: np.random.Generator) -> str:
    """A Solar Hijri date as forms write it, year/month/day."""
    year, month, day = rng.integers(1300, 1411), rng.integers(1, 13), rng.integers(1, 31)
    return f"{year}/{month:02d}/{day:02d}".translate(str.maketrans(ASCII_DIGITS, PERSIAN_DIGITS))


# What forms and receipts carry: ten-digit postal codes (written 5-5), mobile numbers (09 and nine digits),
# ten-digit national ids, dates, and amounts.
FORMATS: dict[str, Callable[[np.random.Generator], str]] = {
    "postal_code": lambda rng: _digits(rng, 5, leading_zero=False) + "-" + _digits(rng, 5),
    "mobile": lambda rng: "۰۹" + _digits(rng, 9),
    "national_id": lambda rng: _digits(rng, 10),
    "date": _date,
    "amount": lambda rng: _digits(rng, int(rng.integers(1, 10)), leading_zero=False),
}


@dataclass(frozen=True)
class Jitter:
    """How much each string varies (each drawn uniformly from +-the value, per string or per glyph)."""

    height: int = 40  # canvas height in pixels
    size: float = 0.15  # one scale per string: 28 px glyphs at 0.85-1.15
    glyph_size: float = 0.06  # and per glyph on top
    slant: float = 0.25  # horizontal shear per unit of height, one per string (a writer's slant)
    glyph_slant: float = 0.05
    baseline: float = 1.5  # vertical wobble of each glyph, pixels
    gap: tuple[int, int] = (-1, 5)  # pixels between neighbouring glyphs' ink (negative: they touch)
    margin: int = 3


def ink_box(image: np.ndarray) -> tuple[int, int, int, int] | None:
    """[x0, y0, x1, y1) of the pixels above `INK_THRESHOLD`, or None for a blank image."""
    rows, cols = np.nonzero(image > INK_THRESHOLD)
    if len(rows) == 0:
        return None
    return int(cols.min()), int(rows.min()), int(cols.max()) + 1, int(rows.max()) + 1


def separator_glyph(character: str, rng: np.random.Generator, size: int = 28) -> np.ndarray:
    """A pen stroke for `character` ("/" or "-"), (size, size) uint8, white on black."""
    image = PIL.Image.new("L", (size, size), 0)
    draw = PIL.ImageDraw.Draw(image)
    width = int(rng.integers(2, 4))
    wobble = lambda: float(rng.uniform(-1.5, 1.5))  # noqa: E731
    if character == "/":
        draw.line([(size * 0.3 + wobble(), size * 0.85), (size * 0.7 + wobble(), size * 0.15)], fill=255, width=width)
    elif character == "-":
        y = size * 0.55 + wobble()
        draw.line([(size * 0.3, y), (size * 0.7, y + wobble() / 2)], fill=255, width=width)
    else:
        raise ValueError(f"no stroke for separator {character!r}; separators are {SEPARATORS!r}")
    return np.asarray(image)


def _transform(glyph: np.ndarray, scale: float, shear: float) -> np.ndarray:
    """The glyph cropped to its ink, scaled, then sheared (x' = x + shear * (h - y)) on a widened canvas."""
    box = ink_box(glyph)
    if box is None:  # a blank sample still takes its place in the string, as a narrow space
        return np.zeros((max(1, round(10 * scale)), max(1, round(6 * scale))), dtype=np.uint8)
    x0, y0, x1, y1 = box
    image = PIL.Image.fromarray(glyph[y0:y1, x0:x1])
    width, height = max(1, round(image.width * scale)), max(1, round(image.height * scale))
    image = image.resize((width, height), PIL.Image.BILINEAR)
    extra = round(abs(shear) * height)
    # x_out = x_in + shear * (h - y) slants the tops; PIL's affine maps an output (x, y) back to the input
    # (a x + b y + c, d x + e y + f), so c = -shear * h, less `extra` for a backward slant to stay on the canvas
    offset = -shear * height - (extra if shear < 0 else 0)
    image = image.transform((width + extra, height), PIL.Image.AFFINE, (1, shear, offset, 0, 1, 0),
                            resample=PIL.Image.BILINEAR)
    return np.asarray(image)


def compose(glyphs: Sequence[np.ndarray], rng: np.random.Generator, jitter: Jitter = Jitter(),
            sizes: Sequence[float] | None = None) -> tuple[np.ndarray, list[list[int]]]:
    """Lay `glyphs` (each (h, w) uint8, white on black) out left to right as one handwritten line, each scaled by
    its entry of `sizes` (default 1; `RELATIVE_HEIGHT` of its character, for size-normalised glyphs).

    Returns:
        The line, (jitter.height, W) uint8, and one [x0, y0, x1, y1] box per glyph (the ink it put down, in
        pixels, x1 and y1 exclusive), in the glyphs' order.
    """
    scale = 1 + rng.uniform(-jitter.size, jitter.size)
    slant = rng.uniform(-jitter.slant, jitter.slant)
    centre = jitter.height / 2
    placed, x = [], jitter.margin
    for glyph, size in zip(glyphs, sizes or [1.0] * len(glyphs), strict=True):
        piece = _transform(glyph, size * scale * (1 + rng.uniform(-jitter.glyph_size, jitter.glyph_size)),
                           slant + rng.uniform(-jitter.glyph_slant, jitter.glyph_slant))
        top = int(round(centre - piece.shape[0] / 2 + rng.uniform(-jitter.baseline, jitter.baseline)))
        top = min(max(top, 0), max(0, jitter.height - piece.shape[0]))
        placed.append((x, top, piece[: jitter.height]))
        x += piece.shape[1] + int(rng.integers(jitter.gap[0], jitter.gap[1] + 1))
    width = max(x, max(left + piece.shape[1] for left, _, piece in placed)) + jitter.margin
    canvas = np.zeros((jitter.height, width), dtype=np.uint8)
    boxes = []
    for left, top, piece in placed:
        region = canvas[top: top + piece.shape[0], left: left + piece.shape[1]]
        np.maximum(region, piece, out=region)
        box = ink_box(piece)
        if box is None:  # no ink: the box is the place it took
            box = (0, 0, piece.shape[1], piece.shape[0])
        boxes.append([left + box[0], top + box[1], left + box[2], top + box[3]])
    return canvas, boxes


def random_text(rng: np.random.Generator, formats: Sequence[str]) -> str:
    """A string of one of `formats` (keys of `FORMATS`), in Persian digits and separators."""
    return FORMATS[formats[int(rng.integers(len(formats)))]](rng)
