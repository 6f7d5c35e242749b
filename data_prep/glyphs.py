"""The offline data set: Persian digits and letters rendered from the DejaVu fonts bundled with matplotlib.

Each image draws one character with a random font, stroke width, affine jitter (rotation, shear,
anisotropic scale) and blur, from a generator seeded by `(seed, class, index)`: the same seed gives the
same images, and any subset can be rendered on its own.
"""

import math
from functools import cache
from pathlib import Path

import matplotlib
import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

from .classes import EXTRA_FORMS, PERSIAN_DIGITS, PERSIAN_LETTERS, RENDER_TEXT
from .normalize import fit_and_center
from .sources import Source

# All four cover the Persian digits, the 32 letters and the presentation forms of the extra forms.
FONT_FILES = ("DejaVuSans.ttf", "DejaVuSans-Bold.ttf", "DejaVuSansMono.ttf", "DejaVuSansMono-Bold.ttf")
CANVAS = 128  # px, rendering canvas before normalisation
FONT_SIZE = 64  # px
MAX_ROTATION_DEG = 12.0
MAX_SHEAR = 0.25
SCALE_RANGE = (0.8, 1.15)
MAX_STROKE = 2  # px at FONT_SIZE
MAX_BLUR = 1.5  # Gaussian radius in px at CANVAS size


def glyph_classes(extra_forms: bool = False) -> list[str]:
    """Persian digits and the 32 letters, plus the four extra Hoda forms when `extra_forms`."""
    return list(PERSIAN_DIGITS + PERSIAN_LETTERS + (EXTRA_FORMS if extra_forms else ()))


@cache
def _font(name: str) -> ImageFont.FreeTypeFont:
    path = Path(matplotlib.get_data_path()) / "fonts" / "ttf" / name
    # BASIC layout (no shaping) draws a single code point the same way on every machine.
    return ImageFont.truetype(str(path), FONT_SIZE, layout_engine=ImageFont.Layout.BASIC)


def render_glyph(text: str, rng: np.random.Generator, image_size: int) -> Image.Image:
    """Render one jittered character.

    Args:
        text (`str`): the character(s) to draw.
        rng (`np.random.Generator`): draws the font, stroke, affine jitter and blur.
        image_size (`int`): output side.

    Returns:
        `PIL.Image.Image`: mode "L", white ink on black, fitted and centred like MNIST.
    """
    font = _font(FONT_FILES[rng.integers(len(FONT_FILES))])
    stroke = int(rng.integers(0, MAX_STROKE + 1))
    canvas = Image.new("L", (CANVAS, CANVAS), 0)
    ImageDraw.Draw(canvas).text(
        (CANVAS / 2, CANVAS / 2), text, font=font, fill=255, anchor="mm", stroke_width=stroke, stroke_fill=255
    )

    # Affine jitter about the canvas centre: A = R(angle) @ Shear(s) @ diag(sx, sy); PIL wants the
    # inverse map (output -> input pixel), so pass A^-1.
    angle = math.radians(rng.uniform(-MAX_ROTATION_DEG, MAX_ROTATION_DEG))
    shear = rng.uniform(-MAX_SHEAR, MAX_SHEAR)
    sx, sy = rng.uniform(*SCALE_RANGE, size=2)
    rotation = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    forward = rotation @ np.array([[1.0, shear], [0.0, 1.0]]) @ np.diag([sx, sy])  # (2, 2)
    inverse = np.linalg.inv(forward)
    centre = np.array([CANVAS / 2, CANVAS / 2])
    offset = centre - inverse @ centre
    coefficients = (inverse[0, 0], inverse[0, 1], offset[0], inverse[1, 0], inverse[1, 1], offset[1])
    canvas = canvas.transform(canvas.size, Image.Transform.AFFINE, coefficients, Image.Resampling.BILINEAR)

    blur = rng.uniform(0.0, MAX_BLUR)
    if blur > 0.2:
        canvas = canvas.filter(ImageFilter.GaussianBlur(blur))
    return fit_and_center(np.asarray(canvas), image_size)


def glyph_source(per_class: int, image_size: int, seed: int, extra_forms: bool = False) -> Source:
    """`per_class` rendered images of each class, in class order.

    Args:
        per_class (`int`): images per class.
        image_size (`int`): output side.
        seed (`int`): the same seed gives the same images.
        extra_forms (`bool`, defaults to `False`): also render the four extra Hoda forms (46 classes, the
            label space of the Hoda sets) instead of 42 classes.

    Returns:
        `Source`: example `k` is image `k % per_class` of class `k // per_class`.
    """
    class_names = glyph_classes(extra_forms)
    total = per_class * len(class_names)

    def read(select=None):
        for k in range(total) if select is None else sorted(select):
            label, index = divmod(k, per_class)
            rng = np.random.default_rng([seed, label, index])
            yield {"image": render_glyph(RENDER_TEXT[class_names[label]], rng, image_size), "label": label}

    return Source(
        name="DejaVu Sans / DejaVu Sans Mono (matplotlib)",
        kind="rendered glyphs",
        class_names=class_names,
        num_examples=total,
        read=read,
        license="other",
        provenance={"fonts": ", ".join(FONT_FILES), "per_class": str(per_class), "seed": str(seed)},
    )
